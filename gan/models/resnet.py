"""SNGAN ResNet generator / discriminator for 32x32 (CIFAR), 48x48 (STL-10), 64x64 and 128x128 images.

Layouts follow the SNGAN paper (Miyato et al. 2018) and mimicry's SNGAN 32/48/64; 128 is the paper's ImageNet
layout (G: five up-blocks from 4x4, D: 64..1024 channels, no downsampling in the last block). ``width`` is the
widest layer and the other layers are fixed fractions of it, so ``width`` scales the whole model. With
``num_classes`` G's BatchNorms are conditional and D adds a projection term to its logit
(:mod:`gan.models.conditional`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gan.models.blocks import DBlock, GBlock, OptimizedDBlock, conv, xavier
from gan.models.conditional import Projection, batch_norm, call, check_labels

# image size -> (G start size, G width, G channel divisors, D width, D channel divisors, D downsampling per block)
LAYOUTS: dict[int, tuple[int, int, tuple[int, ...], int, tuple[int, ...], tuple[bool, ...]]] = {
    32: (4, 256, (1, 1, 1, 1), 128, (1, 1, 1, 1), (True, True, False, False)),
    48: (6, 512, (1, 2, 4, 8), 1024, (16, 8, 4, 2, 1), (True, True, True, True, False)),
    64: (4, 1024, (1, 2, 4, 8, 16), 1024, (16, 8, 4, 2, 1), (True, True, True, True, True)),
    128: (4, 1024, (1, 1, 2, 4, 8, 16), 1024, (16, 8, 4, 2, 1, 1), (True, True, True, True, True, False)),
}


def _channels(width: int, divisors: tuple[int, ...], what: str) -> list[int]:
    if width < max(divisors) or width % max(divisors):
        raise ValueError(f"{what} width={width} must be a positive multiple of {max(divisors)} for this image size")
    return [width // d for d in divisors]


class ResNetGenerator(nn.Module):
    """Linear(z -> s*s*C) -> GBlocks (x2 each) -> BN -> ReLU -> conv3x3 -> tanh."""

    def __init__(self, image_size: int = 32, channels: int = 3, z_dim: int = 128, width: int | None = None,
                 num_classes: int | None = None) -> None:
        super().__init__()
        bottom, default, divisors, *_ = LAYOUTS[image_size]
        ch = _channels(width or default, divisors, "generator")
        self.num_classes = num_classes
        self.bottom, self.c0 = bottom, ch[0]
        self.linear = xavier(nn.Linear(z_dim, bottom * bottom * ch[0]))
        self.blocks = nn.Sequential(*(GBlock(a, b, num_classes) for a, b in zip(ch[:-1], ch[1:])))
        self.bn = batch_norm(ch[-1], num_classes)
        self.out = conv(ch[-1], channels, 3)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "generator")
        h = self.linear(z).view(-1, self.c0, self.bottom, self.bottom)
        for block in self.blocks:
            h = block(h, y)
        return self.out(F.relu(call(self.bn, h, y))).tanh()


class ResNetDiscriminator(nn.Module):
    """OptimizedDBlock -> DBlocks -> ReLU -> global sum pool -> Linear(-> 1) (+ projection of the pooled
    features); unnormalized (see apply_norm)."""

    def __init__(self, image_size: int = 32, channels: int = 3, width: int | None = None,
                 num_classes: int | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        _, _, _, default, divisors, downs = LAYOUTS[image_size]
        ch = _channels(width or default, divisors, "discriminator")
        blocks: list[nn.Module] = [OptimizedDBlock(channels, ch[0])]
        blocks += [DBlock(a, b, down) for a, b, down in zip(ch[:-1], ch[1:], downs[1:])]
        self.blocks = nn.Sequential(*blocks)
        self.linear = xavier(nn.Linear(ch[-1], 1))
        self.projection = None if num_classes is None else Projection(num_classes, ch[-1])

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        check_labels(y, self.num_classes, "discriminator")
        features = F.relu(self.blocks(x)).sum(dim=(2, 3))
        logit = self.linear(features).squeeze(1)
        return logit if self.projection is None else logit + self.projection(features, y)
