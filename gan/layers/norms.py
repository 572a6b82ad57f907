"""The discriminator-normalization switch: one word turns every conv / linear of a D into its normalized form.

``apply_norm(module, kind)`` walks a module tree and replaces each ``nn.Conv2d`` (shortcuts included) and, for the
spectral kinds, wraps each ``nn.Linear`` and ``nn.Embedding`` (a projection D's class embedding, spectrally
normalized as in the projection paper). Models are built plain, initialised, then normalized, so every norm kind
starts from the same weights. ConvNorm is exactly invariant to scaling an output channel's kernel together with its
bias, and spectral norm scales the kernel only, so ``convnorm+spectral`` differs from ``convnorm`` only at the linear
layer, through the conv biases and in the affine kernel's init draw (docs/training.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan.errors import UserError
from gan.layers.convnorm import ConvNorm2d


@dataclass(frozen=True)
class NormKind:
    """What a D normalization does: ConvNorm on the convs, spectral norm on the weights, both or neither."""

    convnorm: bool
    spectral: bool


# the one list of norm kinds: a new kind is one entry here (plus its docs); everything else reads it
NORM_KINDS: dict[str, NormKind] = {
    "none": NormKind(convnorm=False, spectral=False),
    "spectral": NormKind(convnorm=False, spectral=True),
    "convnorm": NormKind(convnorm=True, spectral=False),
    "convnorm+spectral": NormKind(convnorm=True, spectral=True),
}
NORMS = tuple(NORM_KINDS)
# the ConvNorm2d arguments a model config may choose
CONVNORM_OPTIONS = ("affine_init", "bn", "backend", "algorithm")


def check_convnorm_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The ConvNorm variant a config asks for (e.g. ``{"affine_init": "identity", "bn": False}``), validated."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(CONVNORM_OPTIONS))
    if unknown:
        raise UserError(f"convnorm: unknown option(s) {', '.join(unknown)}; choose from: {', '.join(CONVNORM_OPTIONS)}")
    try:
        ConvNorm2d(1, 1, 1, **options)
    except (TypeError, ValueError) as err:
        raise UserError(f"convnorm: {err}") from err
    return options


def check_norm(kind: str) -> str:
    if kind not in NORMS:
        raise UserError(f"norm={kind!r} is not a discriminator normalization; choose one of: {', '.join(NORMS)}")
    return kind


def normalize_layer(layer: nn.Module, kind: str, convnorm: dict[str, Any] | None = None) -> nn.Module:
    """The normalized replacement of one ``nn.Conv2d`` / ``nn.Linear`` / ``nn.Embedding`` (other modules are
    returned unchanged).

    ``convnorm`` holds ConvNorm2d options (``affine_init``, ``bn``, ``backend``, ``algorithm``) for the convnorm
    kinds.
    """
    spectral = NORM_KINDS[check_norm(kind)].spectral
    if isinstance(layer, nn.Conv2d):
        if NORM_KINDS[kind].convnorm:
            layer = ConvNorm2d.from_conv(layer, **check_convnorm_options(convnorm))
        return spectral_norm(layer) if spectral else layer
    if isinstance(layer, nn.Linear | nn.Embedding):
        return spectral_norm(layer) if spectral else layer
    return layer


def apply_norm(module: nn.Module, kind: str, convnorm: dict[str, Any] | None = None) -> nn.Module:
    """Normalize every conv and linear inside ``module`` in place (returns it, or its replacement if a leaf)."""
    check_norm(kind)
    if kind == "none":
        return module
    for name, child in module.named_children():
        setattr(module, name, apply_norm(child, kind, convnorm))
    return normalize_layer(module, kind, convnorm)
