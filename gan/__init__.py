"""gan: SNGAN-style GAN training with ConvNorm in the discriminator."""

__all__ = ["ConvNorm2d"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``gan.ConvNorm2d`` on first use: ``gan --help`` and other light entry points need not import torch."""
    if name == "ConvNorm2d":
        from gan.layers.convnorm import ConvNorm2d

        return ConvNorm2d
    raise AttributeError(f"module 'gan' has no attribute {name!r}")
