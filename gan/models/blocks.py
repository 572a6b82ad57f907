"""SNGAN residual blocks (Miyato et al. 2018; as in pfnet-research/sngan_projection and kwotsin/mimicry).

Convs are plain ``nn.Conv2d``: the discriminator's normalization is applied afterwards by
``gan.layers.norms.apply_norm``, so blocks know nothing of it. Init: xavier_uniform with gain sqrt(2) on residual
convs and 1 on shortcuts, linear and output layers (SNGAN's init, as in mimicry and pytorch-gan-collections).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from gan.models.conditional import batch_norm, call


def xavier(module: nn.Module, gain: float = 1.0) -> nn.Module:
    """xavier_uniform weight, zero bias: the SNGAN initialisation."""
    nn.init.xavier_uniform_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def conv(c_in: int, c_out: int, k: int, gain: float = 1.0) -> nn.Conv2d:
    return xavier(nn.Conv2d(c_in, c_out, k, padding=k // 2), gain)


class GBlock(nn.Module):
    """BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 + shortcut(up, conv1x1): doubles the resolution. With ``num_classes``
    both BNs are conditional and ``forward`` takes the labels ``y``."""

    def __init__(self, c_in: int, c_out: int, num_classes: int | None = None) -> None:
        super().__init__()
        self.bn1, self.bn2 = batch_norm(c_in, num_classes), batch_norm(c_out, num_classes)
        self.conv1, self.conv2 = conv(c_in, c_out, 3, math.sqrt(2)), conv(c_out, c_out, 3, math.sqrt(2))
        self.shortcut = conv(c_in, c_out, 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = F.interpolate(F.relu(call(self.bn1, x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(call(self.bn2, self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """ReLU-conv3x3-ReLU-conv3x3(-avgpool) + shortcut(conv1x1 then avgpool), the shortcut conv only when needed."""

    def __init__(self, c_in: int, c_out: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1, self.conv2 = conv(c_in, c_out, 3, math.sqrt(2)), conv(c_out, c_out, 3, math.sqrt(2))
        self.shortcut = conv(c_in, c_out, 1) if (down or c_in != c_out) else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        s = x if self.shortcut is None else self.shortcut(x)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class OptimizedDBlock(nn.Module):
    """The first D block: conv3x3-ReLU-conv3x3-avgpool + shortcut(avgpool, conv1x1); no ReLU on the image."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = conv(c_in, c_out, 3, math.sqrt(2)), conv(c_out, c_out, 3, math.sqrt(2))
        self.shortcut = conv(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return h + self.shortcut(F.avg_pool2d(x, 2))
