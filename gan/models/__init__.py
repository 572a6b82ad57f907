"""Generator / discriminator builders: ``arch`` x image size x channels x width, D normalized by one switch.

Models are plain ``nn.Module``s (no Lightning). Sizes: ``cnn`` any multiple of 8; ``resnet`` 32, 48, 64 or 128.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from gan.errors import UserError
from gan.layers.norms import apply_norm, check_convnorm_options, check_norm
from gan.models.cnn import CNNDiscriminator, CNNGenerator
from gan.models.resnet import LAYOUTS, ResNetDiscriminator, ResNetGenerator

ARCHS = ("cnn", "resnet")


def _check(arch: str, image_size: int, channels: int) -> None:
    if arch not in ARCHS:
        raise UserError(f"arch={arch!r} is unknown; choose one of: {', '.join(ARCHS)}")
    if channels not in (1, 3):
        raise UserError(f"channels={channels} is not supported; use 1 (grey) or 3 (RGB)")
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


def build_generator(arch: str, image_size: int, channels: int, z_dim: int = 128, width: int | None = None) -> nn.Module:
    """The generator z (B x z_dim) -> images (B x channels x size x size) in [-1, 1]; never normalized."""
    _check(arch, image_size, channels)
    cls = CNNGenerator if arch == "cnn" else ResNetGenerator
    return _build(cls, image_size=image_size, channels=channels, z_dim=z_dim, width=width)


def build_discriminator(
    arch: str,
    image_size: int,
    channels: int,
    norm: str = "spectral",
    width: int | None = None,
    convnorm: dict[str, Any] | None = None,
) -> nn.Module:
    """The discriminator images -> logits (B,), with ``norm`` applied to every conv (and linear for SN kinds);
    ``convnorm`` picks the ConvNorm variant (``affine_init``, ``bn``, ``backend``, ``algorithm``) for the convnorm
    kinds."""
    _check(arch, image_size, channels)
    check_norm(norm)
    options = check_convnorm_options(convnorm)
    cls = CNNDiscriminator if arch == "cnn" else ResNetDiscriminator
    return apply_norm(_build(cls, image_size=image_size, channels=channels, width=width), norm, options)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (spectral norm's u / v vectors are buffers, so they are not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
