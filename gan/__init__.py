"""gan: SNGAN-style GAN training with ConvNorm in the discriminator."""

from gan.layers.convnorm import ConvNorm2d

__all__ = ["ConvNorm2d"]
__version__ = "0.1.0"
