"""The discriminator-normalization switch: one word turns every conv / linear of a D into its normalized form.

``apply_norm(module, kind)`` walks a module tree and replaces each ``nn.Conv2d`` (shortcuts included) and, for the
spectral kinds, wraps each ``nn.Linear``. Models are built plain, initialised, then normalized, so every norm kind
starts from the same weights. ConvNorm is exactly invariant to per-output-channel weight scaling, so
``convnorm+spectral`` differs from ``convnorm`` only at the linear layer (and in the affine kernel's init draw).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan.errors import UserError
from gan.layers.convnorm import ConvNorm2d

NORMS = ("none", "spectral", "convnorm", "convnorm+spectral")


def check_norm(kind: str) -> str:
    if kind not in NORMS:
        raise UserError(f"norm={kind!r} is not a discriminator normalization; choose one of: {', '.join(NORMS)}")
    return kind


def normalize_layer(layer: nn.Module, kind: str) -> nn.Module:
    """The normalized replacement of one ``nn.Conv2d`` / ``nn.Linear`` (other modules are returned unchanged)."""
    check_norm(kind)
    spectral = kind in ("spectral", "convnorm+spectral")
    if isinstance(layer, nn.Conv2d):
        if kind.startswith("convnorm"):
            layer = ConvNorm2d.from_conv(layer)
        return spectral_norm(layer) if spectral else layer
    if isinstance(layer, nn.Linear):
        return spectral_norm(layer) if spectral else layer
    return layer


def apply_norm(module: nn.Module, kind: str) -> nn.Module:
    """Normalize every conv and linear inside ``module`` in place (returns it, or its replacement if a leaf)."""
    check_norm(kind)
    if kind == "none":
        return module
    for name, child in module.named_children():
        setattr(module, name, apply_norm(child, kind))
    return normalize_layer(module, kind)
