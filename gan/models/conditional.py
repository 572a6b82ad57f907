"""The two parts that make an SNGAN class-conditional (Miyato & Koyama, "cGANs with Projection Discriminator", 2018).

* :class:`ConditionalBatchNorm2d` replaces every BatchNorm of G: BatchNorm without its own affine, then a gain and a
  bias looked up per class (gain initialised to 1 and bias to 0, so an untrained conditional G is the plain one).
* :class:`Projection` is D's class term ``<embed(y), phi(x)>``, added to the usual linear output of D's features
  ``phi(x)``. The norm switch treats its embedding like D's linear layer (spectral norm for the spectral kinds).

Containers run their layers through :func:`call`, which hands ``y`` to the conditional ones only.
"""

from __future__ import annotations

from torch import Tensor, nn


class ConditionalBatchNorm2d(nn.Module):
    """``BN(x) * gain[y] + bias[y]``: affine-free BatchNorm, then a per-class gain and bias (num_classes x C)."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


class Projection(nn.Module):
    """D's class term ``<embed(y), phi>`` per sample (xavier-initialised embedding, num_classes x features)."""

    def __init__(self, num_classes: int, num_features: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, num_features)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, features: Tensor, y: Tensor) -> Tensor:
        return (self.embed(y) * features).sum(dim=1)


def batch_norm(num_features: int, num_classes: int | None) -> nn.Module:
    """G's BatchNorm: the plain one for an unconditional G, the conditional one otherwise."""
    return nn.BatchNorm2d(num_features) if num_classes is None else ConditionalBatchNorm2d(num_features, num_classes)


def call(layer: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
    """``layer(x)``, with the labels ``y`` when the layer is a conditional one."""
    return layer(x, y) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)


def run_layers(layers: nn.Sequential, x: Tensor, y: Tensor | None) -> Tensor:
    """``layers(x)``, handing ``y`` to the conditional ones."""
    for layer in layers:
        x = call(layer, x, y)
    return x


def check_labels(y: Tensor | None, num_classes: int | None, what: str) -> None:
    """A conditional net needs labels and an unconditional one takes none: say which mistake was made."""
    if num_classes is not None and y is None:
        raise ValueError(f"this {what} is class-conditional ({num_classes} classes): pass labels y")
    if num_classes is None and y is not None:
        raise ValueError(f"this {what} is unconditional: it takes no labels")
