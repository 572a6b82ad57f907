"""Exact spectral norms of conv layers, computed in the Fourier domain (Sedghi, Gupta & Long, ICLR 2019).

A conv treated as circular on an N_h x N_w grid has as singular values the union, over frequencies f, of the
singular values of the C_out x C_in matrix W_hat[:, :, f]. With ConvNorm (and its affine kernel r) the matrix
at f is diag(R_hat[:, f]) diag(V[:, f]) W_hat[:, :, f]. This measures the paper's Lipschitz claim for SN,
ConvNorm and plain layers alike, cheaply enough to log during training.

Exact for stride 1. A strided layer is measured before its stride: for a plain or SN conv that bounds the strided
operator from above (keeping every s-th pixel cannot raise a norm), but ConvNorm's affine kernel acts after the
stride, on the smaller grid, and is multiplied in here on the full one, so for strided ConvNorm layers with the
affine kernel the number is an estimate, neither exact nor a bound.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan.layers.convnorm import ConvNorm2d, dilate_kernel
from gan.layers.fourier import onesided_to_full


def _frequency_matrices(weight: Tensor, grid: tuple[int, int], groups: int = 1) -> Tensor:
    """(N_h * N_w, C_out, C_in) per-frequency matrices of a (grouped) kernel on the full circular grid."""
    c_out, ci = weight.shape[:2]
    w_hat = torch.fft.fft2(weight.detach(), s=grid)  # (C_out, C_in/G, N_h, N_w)
    if groups > 1:  # block-diagonal in the channels
        full = w_hat.new_zeros(c_out, ci * groups, *grid)
        for g in range(groups):
            rows = slice(g * (c_out // groups), (g + 1) * (c_out // groups))
            full[rows, g * ci : (g + 1) * ci] = w_hat[rows]
        w_hat = full
    return w_hat.permute(2, 3, 0, 1).reshape(grid[0] * grid[1], c_out, -1)


def conv_spectral_norm(weight: Tensor, grid: tuple[int, int], groups: int = 1) -> float:
    """Largest singular value of the conv with ``weight``, circular on ``grid``."""
    return torch.linalg.matrix_norm(_frequency_matrices(weight, grid, groups), ord=2).max().item()


def convnorm_spectral_norm(
    layer: ConvNorm2d, input_size: tuple[int, int], affine: bool = True, running: bool | None = None
) -> float:
    """Largest singular value of a ConvNorm2d's operator (steps 1-3, and the affine kernel if ``affine``; with
    the ``bn`` variant also BatchNorm's eval-mode per-channel scale gamma / sqrt(running_var + eps)).

    ``running=None`` uses the V the layer would use now (train mode: current weights; eval mode: the running
    average); True / False force the running average / the current weights.
    """
    grid = layer.grid(*input_size)
    use_running = (not layer.training) if running is None else running
    with torch.no_grad():
        v = layer.running_V_at(grid) if use_running else None
        if v is None:
            v = layer.current_V(grid)
    scale = onesided_to_full(v, grid[1])  # (C_out, N_h, N_w)
    if affine and layer.affine_weight is not None:
        # the affine kernel is a plain (correlation) depthwise conv; its magnitude response is what matters
        r_hat = torch.fft.fft2(layer.affine_weight.detach()[:, 0], s=grid).abs()
        scale = scale * r_hat
    if affine and layer.bn is not None:
        bn = layer.bn
        gain = bn.weight.detach().abs() if bn.affine else torch.ones_like(bn.running_var)
        scale = scale * (gain / (bn.running_var + bn.eps).sqrt()).view(-1, 1, 1)
    matrices = _frequency_matrices(dilate_kernel(layer.weight, layer.dilation), grid, layer.groups)
    scale = scale.permute(1, 2, 0).reshape(grid[0] * grid[1], -1, 1)
    return torch.linalg.matrix_norm(scale * matrices, ord=2).max().item()


def layer_spectral_norms(module: nn.Module, input_sizes: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Spectral norm of every conv in ``module`` whose input size is given (name -> (H, W)), as trained.

    Plain and spectrally normalized ``nn.Conv2d`` use their (normalized) weight on the grid H + k - 1; ConvNorm2d
    uses its full operator with V of the current weights. Call it with ``module`` in eval mode so that spectral
    norm's parametrization does not take a power-iteration step.
    """
    norms = {}
    for name, layer in module.named_modules():
        if name not in input_sizes:
            continue
        size = input_sizes[name]
        if isinstance(layer, ConvNorm2d):
            norms[name] = convnorm_spectral_norm(layer, size, running=False)
        elif isinstance(layer, nn.Conv2d):
            weight = dilate_kernel(layer.weight, tuple(layer.dilation))
            grid = (size[0] + weight.shape[2] - 1, size[1] + weight.shape[3] - 1)
            norms[name] = conv_spectral_norm(weight, grid, layer.groups)
    return norms
