"""A value computed from a parameter, kept until the parameter changes.

ConvNorm's V depends on the weights alone, and a discriminator runs more than one forward on some weights (the
G step's D forward and the next D step's share them), so V is worth keeping between weight updates.

A parameter counts as changed when autograd's version counter moved (every in-place write bumps it: optimizer
steps, ``copy_``, ``load_state_dict``, ``nn.init``) or its storage is another one (``.to()``, ``.data = ...``).
torch's fused optimizers (``fused=True``) write without bumping the counter, and other libraries' optimizers may
do the same, so every step of such an optimizer, seen through a global optimizer hook (installed by the first
WeightCache, not on import), drops all cached values; so
does every replay of a CUDA graph (:func:`forget_all`, called by ``gan.training.cuda_graphs``), whose kernels bump
nothing.
Writes that bypass the counter otherwise (in place through ``.data``, a collective writing into the parameter) are
not seen: call :func:`forget_all` after them.

While torch.compile traces or a CUDA graph captures, nothing is cached or reused: the value must be computed
inside the graph, or a replay would reuse a stale one. Nothing computed under ``torch.inference_mode()`` is kept.
"""

from __future__ import annotations

from collections.abc import Hashable

import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_post_hook

_untracked_writes = 0  # writes to parameters that may have left their version counters unchanged
_optimizer_hook: torch.utils.hooks.RemovableHandle | None = None


def forget_all() -> None:
    """Drop every cached value: some parameter may have been written without its version counter moving."""
    global _untracked_writes
    _untracked_writes += 1


def _after_optimizer_step(optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
    torch_builtin = type(optimizer).__module__.startswith("torch.optim")
    if not torch_builtin or any(group.get("fused") for group in optimizer.param_groups):
        forget_all()


def watch_optimizers() -> None:
    """Install, once, the global hook through which optimizer steps that bypass version counters drop the caches."""
    global _optimizer_hook
    if _optimizer_hook is None:
        _optimizer_hook = register_optimizer_step_post_hook(_after_optimizer_step)


def _tracing(param: Tensor) -> bool:
    return torch.compiler.is_compiling() or (param.is_cuda and torch.cuda.is_current_stream_capturing())


class WeightCache:
    """One value derived from a parameter (plus a hashable ``key`` of whatever else it depends on)."""

    def __init__(self) -> None:
        watch_optimizers()
        self._entry: tuple[tuple, Tensor, Tensor] | None = None

    @staticmethod
    def _state(param: Tensor, key: Hashable) -> tuple:
        # ``_version`` is autograd's in-place write counter; torch offers no public way to read it. This is its one
        # use: tests/test_weight_cache.py fails loudly if an upgrade renames it or stops bumping it.
        return param._version, param.data_ptr(), _untracked_writes, key

    def get(self, param: Tensor, key: Hashable) -> Tensor | None:
        """The value stored for ``param`` in its current state under ``key``, else None."""
        if _tracing(param) or self._entry is None or not isinstance(param, nn.Parameter):
            return None
        state, _, value = self._entry
        return value if state == self._state(param, key) else None

    def put(self, param: Tensor, key: Hashable, value: Tensor) -> None:
        """Keep ``value`` for ``param`` as it is now; computed tensors (e.g. parametrized weights) are not kept, nor
        values made under ``torch.inference_mode()``: autograd refuses to save such tensors for a later backward."""
        if _tracing(param) or not isinstance(param, nn.Parameter) or torch.is_inference_mode_enabled():
            return
        # holding the parameter's storage keeps its address from being reused by another tensor
        self._entry = (self._state(param, key), param.detach(), value)

    def clear(self) -> None:
        self._entry = None
