"""GAN losses on discriminator logits: each kind is a (D loss, G loss) pair of functions.

``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)`` return scalars to minimise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

from gan.errors import UserError


def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g(fake: Tensor) -> Tensor:
    return -fake.mean()


def ns_d(real: Tensor, fake: Tensor) -> Tensor:
    """The original GAN's D loss, -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))), written with softplus."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def ns_g(fake: Tensor) -> Tensor:
    """Non-saturating G loss -log sigmoid(D(G(z))): strong gradients while D rejects the fakes."""
    return F.softplus(-fake).mean()


def wasserstein_d(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


LOSSES: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "hinge": (hinge_d, hinge_g),
    "non-saturating": (ns_d, ns_g),
    "wasserstein": (wasserstein_d, hinge_g),  # the W-GAN G loss is also -mean D(G(z))
}


def get_loss(name: str) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]:
    if name not in LOSSES:
        raise UserError(f"loss={name!r} is unknown; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]
