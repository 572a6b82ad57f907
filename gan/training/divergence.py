"""Noticing a diverged run: non-finite losses or weights stop training and never reach a checkpoint file.

Reading a loss on the host every step would make the CPU wait for the GPU every step, so the training step only
folds its losses into a flag that stays on the device (:class:`LossWatch`); the flag is read where the host
waits anyway: at logging steps and before a checkpoint is written, which also checks every weight and buffer.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from gan.errors import UserError


class DivergedError(UserError):
    """Training produced non-finite losses or weights; the message says where and what to change."""


EXPLODING_LOSS = 1e6  # a hinge / non-saturating loss this large means D's logits have run away


class LossWatch:
    """Whether every loss seen since the start stayed finite, kept on the losses' device without a host sync:
    ``loss * 0`` is 0 for a finite loss and NaN for an infinite or NaN one, and NaN stays in the running sum."""

    def __init__(self) -> None:
        self._sum: Tensor | None = None
        self._exploded = False

    def update(self, *losses: Tensor) -> None:
        for loss in losses:
            if self._sum is None or self._sum.device != loss.device:
                self._sum = torch.zeros((), device=loss.device)
            self._sum.add_(loss.detach().float() * 0)

    def diverged(self) -> bool:
        """True once any loss was non-finite (reads the device flag: a host sync)."""
        return self._sum is not None and not bool(torch.isfinite(self._sum))

    def first_explosion(self, *losses: float) -> bool:
        """True the first time a (host) loss value exceeds EXPLODING_LOSS in size, so that is said once."""
        if self._exploded or max(map(abs, losses)) <= EXPLODING_LOSS:
            return False
        self._exploded = True
        return True


def nonfinite(tensors: Mapping[str, Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity (one host sync for all of them)."""
    floating = {name: t for name, t in tensors.items() if torch.is_tensor(t) and t.is_floating_point()}
    if not floating:
        return []
    bad = torch.stack([~torch.isfinite(t).all() for t in floating.values()]).tolist()
    return [name for name, is_bad in zip(floating, bad) if is_bad]
