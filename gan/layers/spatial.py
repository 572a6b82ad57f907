"""ConvNorm's spatial path: the conv by the convolution library, V's filter by real FFTs on the full grid.

A ConvNorm layer is its conv plus, per output channel, a filter by V on the N_h x N_w full-convolution grid. The
fast path forms the whole product in the Fourier domain, whose DFTs as matrix products cost O(N) per pixel; here
the conv is ``F.conv2d`` (oneDNN / cuDNN) and only the filter is done in frequency, at O(log N) per pixel, so the
layer's cost over its conv shrinks as the channel count grows and stays flat in the image size.

The filter is self-adjoint (V is real and even in frequency, so its spatial kernel is real and symmetric): the
backward pass is the same filter applied to the zero-filled output gradient. Written as one autograd function
it costs one FFT pair each way, where autograd through ``rfft2`` / ``irfft2`` runs a full complex transform.
The inverse transform is either ``irfft2`` on the whole grid followed by the crop and the stride, or (``dft``)
real matrix products evaluated only at the kept pixels, which a strided layer's quarter-size output favours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gan.layers.fourier import (
    _regularised_rsqrt,
    add_filtered_bias,
    crop_and_stride,
    inverse_dft_matrix,
    kept_positions,
    onesided_weights,
    plan_cache,
    pointwise_convnorm,
)

INVERSES = ("fft", "dft")


@plan_cache(maxsize=128)
def _kept_pixel_dft(
    grid: tuple[int, int], kernel: tuple[int, int], padding: tuple[int, int], stride: tuple[int, int],
    dtype: torch.dtype, device: torch.device,
) -> tuple[Tensor, Tensor]:
    """Complex inverse-DFT matrices from the one-sided spectrum to the kept output pixels: rows (M x N_h) and
    columns (N_f x W_out, one-sided frequencies counted twice except DC and Nyquist, the real part taken after)."""
    nh, nw = grid
    rows, cols = kept_positions(grid, kernel, padding, stride)
    inv_h = torch.complex(*inverse_dft_matrix(rows, nh, nh))
    inv_w = torch.complex(*inverse_dft_matrix(cols, nw // 2 + 1, nw)).mT * onesided_weights(nw)[:, None]
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    return inv_h.to(device=device, dtype=complex_dtype), inv_w.to(device=device, dtype=complex_dtype)


class _Filter(torch.autograd.Function):
    """y (B, C, N_h, N_w) -> crop_and_stride(irfft2(rfft2(y) * V)); backward: the same filter on the zero-filled
    gradient (the operator's transpose)."""

    @staticmethod
    def forward(ctx, y: Tensor, v: Tensor, kernel, padding, stride, inverse: str) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(v)
        ctx.geometry = (tuple(y.shape[-2:]), kernel, padding, stride, inverse)
        spectrum = torch.fft.rfft2(y).mul_(v)  # in place: a fresh buffer of this size costs as much as the product
        if inverse == "fft":
            return crop_and_stride(torch.fft.irfft2(spectrum, s=y.shape[-2:]), kernel, padding, stride).contiguous()
        inv_h, inv_w = _kept_pixel_dft(tuple(y.shape[-2:]), kernel, padding, stride, y.dtype, y.device)
        return torch.real((inv_h @ spectrum) @ inv_w)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN205
        (v,) = ctx.saved_tensors
        grid, kernel, padding, stride, inverse = ctx.geometry
        if inverse == "fft":
            full = grad.new_zeros(*grad.shape[:-2], *grid)
            crop_and_stride(full, kernel, padding, stride).copy_(grad)
            spectrum = torch.fft.rfft2(full)
        else:  # the adjoint of the kept-pixel inverse: a forward DFT from the kept pixels alone
            inv_h, inv_w = _kept_pixel_dft(grid, kernel, padding, stride, grad.dtype, grad.device)
            spectrum = inv_h.mT.conj() @ (grad.to(inv_h.dtype) @ inv_w.mT.conj())
            spectrum = spectrum * _onesided_adjoint_weights(grid, spectrum)
        return torch.fft.irfft2(spectrum.mul_(v), s=grid), None, None, None, None, None


def _onesided_adjoint_weights(grid: tuple[int, int], spectrum: Tensor) -> Tensor:
    """Undo the Hermitian doubling and the 1/N of the kept-pixel inverse, so the adjoint lands on rfft2's scale."""
    nh, nw = grid
    weights = (nh * nw) / onesided_weights(nw)
    return weights.to(dtype=spectrum.real.dtype, device=spectrum.device)


@plan_cache(maxsize=32)
def _lag_index(kernel: tuple[int, int], device: torch.device) -> Tensor:
    """For each tap pair (a, b), row-major over k_h k_w x k_h k_w, the index of its lag a - b among the
    (2k_h - 1)(2k_w - 1) lags (lag d at d + k - 1 along each axis)."""
    kh, kw = kernel
    taps = torch.arange(kh * kw)
    rows, cols = taps // kw, taps % kw
    lag = (rows[:, None] - rows + kh - 1) * (2 * kw - 1) + cols[:, None] - cols + kw - 1
    return lag.reshape(-1).to(device)


def autocorrelation(weight: Tensor) -> Tensor:
    """sum_c' w_cc' * w_cc' per output channel, (C_out, 2k_h - 1, 2k_w - 1), lag (-(k-1) .. k-1) at index lag + k - 1.

    Made from each output channel's Gram matrix of kernel taps (k_h k_w x k_h k_w, summed over input channels: a
    batched matmul over the weight), whose entries are then summed by lag. A grouped conv of the kernels with
    themselves computes the same; for a 1024 -> 1024 3x3 layer V's power spectrum took 61-98 ms that way and 16-17 ms
    this way (one CPU thread).
    """
    c_out, ci, kh, kw = weight.shape
    taps = weight.detach().reshape(c_out, ci, kh * kw)
    gram = (taps.mT @ taps).reshape(c_out, -1)  # (C_out, k_h k_w k_h k_w)
    lags = gram.new_zeros(c_out, (2 * kh - 1) * (2 * kw - 1)).index_add_(1, _lag_index((kh, kw), gram.device), gram)
    return lags.view(c_out, 2 * kh - 1, 2 * kw - 1)


def power_spectrum(lags: Tensor, grid: tuple[int, int]) -> Tensor:
    """S[c, f] = sum_c' |W_hat[c, c', f]|^2 on the one-sided ``grid``, as the DFT of the kernels' autocorrelation
    ``lags`` (:func:`autocorrelation`'s, C_out x (2k_h - 1) x (2k_w - 1)).

    The autocorrelation is wrapped onto the grid, so the FFTs run over C_out maps instead of the C_out * C_in / G that
    transforming the kernels themselves needs.
    """
    for dim, n in ((1, grid[0]), (2, grid[1])):  # wrap the lags onto the circular grid
        k = (lags.shape[dim] + 1) // 2
        shape = list(lags.shape)
        shape[dim] = n
        index = torch.remainder(torch.arange(1 - k, k, device=lags.device), n)
        lags = lags.new_zeros(shape).index_add_(dim, index, lags)
    return torch.fft.rfft2(lags).real


def autocorrelation_preconditioner(weight: Tensor, grid: tuple[int, int], eps: float) -> Tensor:
    """V on the one-sided ``grid`` from :func:`power_spectrum` (C_out FFTs, not C_out * C_in / G); the energy
    ||w_c||^2 is the autocorrelation at lag 0."""
    kh, kw = weight.shape[-2:]
    lags = autocorrelation(weight)
    energy = lags[:, kh - 1, kw - 1].reshape(-1, 1, 1)
    return _regularised_rsqrt(power_spectrum(lags, grid).clamp(min=0), energy, eps)


def spatial_convnorm(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    v: Tensor | None,
    eps: float,
    padding: tuple[int, int],
    stride: tuple[int, int],
    groups: int,
    inverse: str | None = None,
) -> tuple[Tensor, Tensor]:
    """ConvNorm steps 1-4 with the conv in space: arguments and result as
    :func:`gan.layers.fourier.fourier_convnorm`'s; ``inverse`` is ``"fft"`` (irfft2 on the whole grid) or
    ``"dft"`` (matrix products at the kept pixels only); by default dft for a strided layer, fft otherwise."""
    inverse = inverse or ("fft" if tuple(stride) == (1, 1) else "dft")  # kept pixels: 3-17 % faster when strided
    if inverse not in INVERSES:
        raise ValueError(f"spatial_convnorm: inverse={inverse!r}; choose one of {INVERSES}")
    kh, kw = weight.shape[-2:]
    if (kh, kw) == (1, 1):
        return pointwise_convnorm(x, weight, bias, v, eps, stride, groups)
    grid = (x.shape[-2] + kh - 1, x.shape[-1] + kw - 1)
    if v is None:
        v = autocorrelation_preconditioner(weight, grid, eps)
    # NCHW in, so NCHW out: the filter's FFTs run along contiguous rows (channels-last memory, as the fast path's output
    # or the `channels_last` setting give, cost this path 12-17 % at batch 8)
    y = F.conv2d(x.contiguous(), weight.contiguous(), padding=(kh - 1, kw - 1), groups=groups)
    z = _Filter.apply(y, v, (kh, kw), padding, stride, inverse)
    return add_filtered_bias(z, bias, v), v
