"""ConvNorm's reference path: the authors' algorithm, step by step as the operator is defined.

1. the full convolution at stride 1 (``padding = k - 1``: every output position of the N_h x N_w grid);
2. V from the weights alone (detached);
3. the filter: FFT, multiply by V, inverse FFT on the N_h x N_w circular grid;
4. crop ``k - 1 - padding`` from each side and subsample by the stride.

It runs the dense stride-1 conv even for strided layers, which :func:`gan.layers.fourier.fourier_convnorm` (the
fast path, same arguments, same result) avoids; tests hold the two paths to each other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gan.layers.fourier import crop_and_stride, preconditioner


def reference_convnorm(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    v: Tensor | None,
    eps: float,
    padding: tuple[int, int],
    stride: tuple[int, int],
    groups: int,
) -> tuple[Tensor, Tensor]:
    """ConvNorm steps 1-4 as the authors compute them: arguments and result as
    :func:`gan.layers.fourier.fourier_convnorm`'s (the output, and the V used: V of ``weight`` when ``v`` is None)."""
    kh, kw = weight.shape[-2:]
    grid = (x.shape[-2] + kh - 1, x.shape[-1] + kw - 1)
    if v is None:
        v = preconditioner(weight, grid, eps)
    y = F.conv2d(x, weight, bias, padding=(kh - 1, kw - 1), groups=groups)
    z = torch.fft.irfft2(torch.fft.rfft2(y) * v, s=grid)
    return crop_and_stride(z, (kh, kw), padding, stride), v
