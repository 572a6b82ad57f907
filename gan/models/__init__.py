"""Generator / discriminator builders: ``arch`` x image size x channels x width, D normalized by one switch.

Models are plain ``nn.Module``s (no Lightning). Sizes: ``cnn`` any multiple of 8; ``resnet`` 32, 48, 64 or 128.
``num_classes`` makes both class-conditional (conditional BatchNorm in G, a projection D): G takes ``(z, y)`` and D
``(x, y)``, ``y`` a LongTensor of class indices; None builds today's unconditional nets (same modules, same init).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gan.errors import UserError
from gan.layers.norms import apply_norm, check_convnorm_options, check_norm
from gan.models.cnn import CNNDiscriminator, CNNGenerator
from gan.models.resnet import LAYOUTS, ResNetDiscriminator, ResNetGenerator
from gan.utils.validate import check_image_format

ARCHS = ("cnn", "resnet")


def _check(arch: str, image_size: int, channels: int, num_classes: int | None) -> None:
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise UserError(f"num_classes={num_classes!r}: give a positive class count, or null for an unconditional "
                        "model")
    if arch not in ARCHS:
        raise UserError(f"arch={arch!r} is unknown; choose one of: {', '.join(ARCHS)}")
    check_image_format("model", image_size, channels)
    if arch == "cnn" and (image_size < 8 or image_size % 8):
        raise UserError(f"image_size={image_size}: the cnn architecture needs a multiple of 8 (e.g. 32, 48, 64)")
    if arch == "resnet" and image_size not in LAYOUTS:
        sizes = ", ".join(map(str, LAYOUTS))
        raise UserError(f"image_size={image_size}: the resnet architecture is defined for {sizes}; pick one of them")


def _build(cls: type[nn.Module], **kwargs) -> nn.Module:
    try:
        return cls(**kwargs)
    except ValueError as err:  # e.g. a width the layout cannot split
        raise UserError(str(err)) from err


def build_generator(arch: str, image_size: int, channels: int, z_dim: int = 128, width: int | None = None,
                    num_classes: int | None = None) -> nn.Module:
    """The generator (z (B x z_dim)[, y (B,)]) -> images (B x channels x size x size) in [-1, 1]; never
    normalized."""
    _check(arch, image_size, channels, num_classes)
    cls = CNNGenerator if arch == "cnn" else ResNetGenerator
    return _build(cls, image_size=image_size, channels=channels, z_dim=z_dim, width=width, num_classes=num_classes)


def build_discriminator(
    arch: str,
    image_size: int,
    channels: int,
    norm: str = "spectral",
    width: int | None = None,
    convnorm: dict[str, Any] | None = None,
    num_classes: int | None = None,
) -> nn.Module:
    """The discriminator (images[, y]) -> logits (B,), with ``norm`` applied to every conv (and, for the SN kinds,
    to the linear layer and the projection's embedding); ``convnorm`` picks the ConvNorm variant (see
    ``CONVNORM_OPTIONS``) for the convnorm kinds."""
    _check(arch, image_size, channels, num_classes)
    check_norm(norm)
    options = check_convnorm_options(convnorm)
    cls = CNNDiscriminator if arch == "cnn" else ResNetDiscriminator
    net = _build(cls, image_size=image_size, channels=channels, width=width, num_classes=num_classes)
    return apply_norm(net, norm, options)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (spectral norm's u / v vectors are buffers, so they are not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def has_batch_statistics(net: nn.Module) -> bool:
    """Whether ``net`` normalizes with statistics of its input batch (BatchNorm, ConvNorm's ``bn``): such a D must
    score fakes beside reals wherever it scores them, as it does in the D step."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
