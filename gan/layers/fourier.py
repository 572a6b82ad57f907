"""The spectral math of ConvNorm: the preconditioner V, its resampling, and the fast Fourier-domain operator.

The fast operator computes, for every output channel c and frequency f of the N_h x N_w circular grid,

    Z_hat[b, c, f] = V[c, f] * sum_c' W_hat[c, c', f] * X_hat[b, c', f]

On the CPU the DFTs are small real matrix products (separable along H and W) rather than FFT calls: the grids
are tiny (N = H + k - 1 <= ~70), matrix products run at the BLAS's full speed and differentiate cheaply, and the
inverse transform is evaluated only at the output pixels kept after the crop and the stride. On a GPU, which is
launch-bound at these sizes, cuFFT and one complex batched matmul (few, large kernels) win instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

T = TypeVar("T")


_plan_caches: list[Callable] = []  # every plan_cache, so that clear_plans reaches them all


def plan_cache(maxsize: int) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """``functools.lru_cache`` for the process-wide plans (DFT matrices, index tensors), each built outside inference
    mode: a plan first built under ``torch.inference_mode()`` would hold inference tensors, which autograd refuses to
    save for the backward of every later training forward of that geometry, in every layer of the process."""
    def wrap(build: Callable[..., T]) -> Callable[..., T]:
        @functools.lru_cache(maxsize=maxsize)
        @functools.wraps(build)
        def cached(*args, **kwargs) -> T:  # noqa: ANN002, ANN003
            with torch.inference_mode(False):
                return build(*args, **kwargs)
        _plan_caches.append(cached)
        return cached
    return wrap


def clear_plans() -> None:
    """Forget every cached plan (they are rebuilt on next use): frees their memory, and lets a test build them anew."""
    for cache in _plan_caches:
        cache.cache_clear()


def preconditioner(weight: Tensor, grid: tuple[int, int], eps: float) -> Tensor:
    """V[c, f] = (S[c, f] + eps * mean_f S[c, f])^-1/2, S[c, f] = sum_c' |W_hat[c, c', f]|^2, on the one-sided grid.

    Computed with ``torch.fft.rfft2`` of the zero-padded kernel, exactly as the definition writes it (the fast path
    gets the same numbers from the kernel spectrum it computes anyway).
    """
    power = torch.fft.rfft2(weight.detach(), s=grid).abs().square().sum(dim=1)
    return _regularised_rsqrt(power, _energy(weight), eps)


def _energy(weight: Tensor) -> Tensor:
    """||w_c||^2 per output channel, (C_out, 1, 1), detached."""
    return weight.detach().square().sum(dim=(1, 2, 3)).view(-1, 1, 1)


def _regularised_rsqrt(power: Tensor, energy: Tensor, eps: float) -> Tensor:
    """(power + eps * energy)^-1/2, with ``energy = ||w_c||^2 = mean_f S[c, f]`` (Parseval).

    The epsilon scales with the kernel, so V * W_hat is exactly invariant to a positive per-channel rescaling
    of w. An all-zero channel gets V = 1 (its output is 0 either way).
    """
    regularised = power + eps * energy
    safe = torch.where(regularised > 0, regularised, torch.ones_like(regularised))
    return torch.where(energy > 0, safe.rsqrt(), torch.ones_like(safe))


def onesided_to_full(v: Tensor, width: int) -> Tensor:
    """Expand a one-sided frequency response (C x N_h x N_w//2+1) to the full grid by Hermitian symmetry.

    Column j >= N_f of the full grid is V(-u, -j) = V(u, j) of a real kernel: flipping both axes and rolling rows
    by one maps row u to -u mod N_h, and the needed columns are a contiguous slice of the flipped ones (three
    kernels, no index tensors: this runs on every training forward).
    """
    nf = v.shape[-1]
    mirror = torch.roll(v.flip(-2, -1), 1, dims=-2)  # mirror[:, u, c] = V[:, -u mod N_h, N_f - 1 - c]
    return torch.cat((v, mirror[..., 2 * nf - 1 - width : nf - 1]), dim=-1)


def resample_frequency_response(v: Tensor, grid: tuple[int, int]) -> Tensor:
    """Periodic bilinear interpolation of a full-grid frequency response (C x N_h x N_w) onto another grid.

    V samples a function of continuous frequency; this lets the EMA learned on the training resolution be used
    at any other resolution. Interpolation is symmetric under f -> -f, so a real filter stays real.
    """
    if tuple(v.shape[-2:]) == tuple(grid):
        return v
    for dim, size in ((1, grid[0]), (2, grid[1])):
        n = v.shape[dim]
        pos = torch.arange(size, dtype=torch.float64, device=v.device) * (n / size)
        lo = pos.floor().long()
        frac = (pos - lo).to(v.dtype)
        shape = [1, 1, 1]
        shape[dim] = size
        frac = frac.view(shape)
        v = v.index_select(dim, lo % n) * (1 - frac) + v.index_select(dim, (lo + 1) % n) * frac
    return v


def kept_positions(
    grid: tuple[int, int], kernel: tuple[int, int], padding: tuple[int, int], stride: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Rows and columns of the full-convolution grid that survive the crop (k - 1 - padding) and the stride."""
    (nh, nw), (kh, kw) = grid, kernel
    rows = torch.arange(kh - 1 - padding[0], nh - (kh - 1 - padding[0]), stride[0], dtype=torch.float64)
    cols = torch.arange(kw - 1 - padding[1], nw - (kw - 1 - padding[1]), stride[1], dtype=torch.float64)
    return rows, cols


def dft_matrix(freqs: int, positions: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """(re, im) of e^{-2 pi i f t / n}: frequencies 0..freqs-1 by ``positions``, float64."""
    angle = 2 * math.pi * torch.remainder(torch.arange(freqs, dtype=torch.float64)[:, None] * positions, n) / n
    return angle.cos(), -angle.sin()


def inverse_dft_matrix(positions: Tensor, freqs: int, n: int) -> tuple[Tensor, Tensor]:
    """(re, im) of e^{+2 pi i f t / n} / n: ``positions`` by frequencies 0..freqs-1, float64."""
    angle = 2 * math.pi * torch.remainder(positions[:, None] * torch.arange(freqs, dtype=torch.float64), n) / n
    return angle.cos() / n, angle.sin() / n


def onesided_weights(n: int) -> Tensor:
    """An inverse from the one-sided spectrum counts each mirrored frequency twice, DC and Nyquist once."""
    weights = torch.full((n // 2 + 1,), 2.0, dtype=torch.float64)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    return weights


@plan_cache(maxsize=128)
def _dft_plan(
    size: tuple[int, int],
    kernel: tuple[int, int],
    padding: tuple[int, int],
    stride: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> dict[str, tuple[Tensor, ...]]:
    """(real, imaginary) DFT matrices for one layer geometry (input size, kernel, padding, stride).

    Forward transforms of the input and of the flipped kernel (one-sided along W, full along H), and inverse
    transforms evaluated only at the output positions that survive the crop and the stride, so a strided layer
    never computes the outputs it would throw away.
    """
    (h, w), (kh, kw) = size, kernel
    nh, nw = h + kh - 1, w + kw - 1
    nf = nw // 2 + 1
    rows, cols = kept_positions((nh, nw), kernel, padding, stride)
    flipped_h = torch.arange(kh - 1, -1, -1, dtype=torch.float64)  # conv2d correlates: transform the flipped kernel
    flipped_w = torch.arange(kw - 1, -1, -1, dtype=torch.float64)
    inv_w_re, inv_w_im = inverse_dft_matrix(cols, nf, nw)
    hermitian = onesided_weights(nw)
    plan = {
        "x_w": dft_matrix(nf, torch.arange(w, dtype=torch.float64), nw),
        "x_h": dft_matrix(nh, torch.arange(h, dtype=torch.float64), nh),
        "k_w": dft_matrix(nf, flipped_w, nw),
        "k_h": dft_matrix(nh, flipped_h, nh),
        "inv_h": inverse_dft_matrix(rows, nh, nh),
        "inv_w": (inv_w_re * hermitian, -inv_w_im * hermitian),  # real output: Re(Y) * re - Im(Y) * im
    }
    for name in ("x_h", "k_h", "inv_h"):  # complex left factors also carry the sums Gauss's trick needs
        plan[name] = with_gauss_sums(*plan[name])
    return plan_on(plan, dtype, device)


def with_gauss_sums(re: Tensor, im: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A complex left factor as :func:`_complex_mm` takes it: (re, im) and the two sums Gauss's trick needs."""
    return re, im, re + im, im - re


def plan_on(
    plan: dict[str, tuple[Tensor, ...]], dtype: torch.dtype, device: torch.device
) -> dict[str, tuple[Tensor, ...]]:
    """A plan's float64 matrices, built once on the CPU, in the layer's dtype and on its device."""
    return {name: tuple(m.to(dtype=dtype, device=device) for m in ms) for name, ms in plan.items()}


def add_filtered_bias(z: Tensor, bias: Tensor | None, v: Tensor) -> Tensor:
    """A constant bias field passes V's filter scaled by V's DC response: every algorithm adds it so."""
    return z if bias is None else z + (bias * v[:, 0, 0]).view(1, -1, 1, 1)


def _forward_dft(t: Tensor, along_w: tuple[Tensor, ...], along_h: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
    """(H, W, M) real -> (re, im) of its 2-D DFT, each (N_h, N_f * M): frequencies first, M carried along."""
    h = t.shape[0]
    return _complex_mm(along_h, (along_w[0] @ t).view(h, -1), (along_w[1] @ t).view(h, -1))


def _complex_mm(
    matrix: tuple[Tensor, ...], xr: Tensor, xi: Tensor, x_sum: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(A + iB) @ (xr + i xi) with three real matmuls (Gauss's trick); ``matrix`` = (A, B, A + B, B - A);
    ``x_sum`` = xr + xi where the caller has it already (one right factor used with many left ones)."""
    a, _, a_plus_b, b_minus_a = matrix
    t1 = a @ (xr + xi if x_sum is None else x_sum)
    return t1 - a_plus_b @ xi, t1 + b_minus_a @ xr


def _complex_bmm(xr: Tensor, xi: Tensor, wr: Tensor, wi: Tensor) -> tuple[Tensor, Tensor]:
    """(xr + i xi) @ (wr + i wi) with three real batched matmuls (Gauss's trick).

    Of its two forms, the one whose extra sums fall on the smaller operand is used (the weight spectrum is the
    larger one when C_in exceeds the batch).
    """
    if xr.shape[1] <= wr.shape[1]:  # batch <= C_in/G: two sums over x, one over w
        k1 = torch.bmm(xr, wr + wi)
        k2 = torch.bmm(xr + xi, wi)
        k3 = torch.bmm(xi - xr, wr)
        return k1 - k2, k1 + k3
    k1 = torch.bmm(xr + xi, wr)
    k2 = torch.bmm(xr, wi - wr)
    k3 = torch.bmm(xi, wr + wi)
    return k1 - k3, k1 + k2


def _frequency_major(v: Tensor, groups: int) -> Tensor:
    """(C_out, N_h, N_f) -> (N_h * N_f * G, 1, C_out / G): the batch layout of the channel product. A copy: products
    by the permuted view (channels N_h * N_f values apart, no vector loads along them) ran 1.2-4x slower."""
    c_out, nh, nf = v.shape
    return v.view(groups, c_out // groups, nh, nf).permute(2, 3, 0, 1).reshape(-1, 1, c_out // groups).contiguous()


BLOCK_ELEMENTS = 2**21  # weight-spectrum values per torch thread built and used as one block of rows (CPU)


def _row_blocks(nh: int, row_elements: int, device: torch.device) -> list[int]:
    """Sizes of the blocks of frequency rows in which the fast path builds and uses its weight spectrum: about
    ``BLOCK_ELEMENTS`` values per torch thread (``row_elements`` = N_f G (Ci/G) (Co/G) values in a row).

    Why: at small batches the weight spectrum (N_h N_f G matrices Ci/G x Co/G, complex) is larger than the
    activations, and building it whole, summing it for Gauss's trick and streaming it through the product made
    the CPU wait on memory (docs/speed.md). Built, used and differentiated a block at a time, its working set
    stays bounded. A GPU takes the whole grid at once: there each block would cost kernel launches instead; so does
    torch.compile, which plans memory itself (and cannot trace ``torch.get_num_threads``).
    """
    if device.type != "cpu" or torch.compiler.is_compiling():
        return [nh]
    step = max(1, min(nh, BLOCK_ELEMENTS * torch.get_num_threads() // max(1, row_elements)))
    return [min(step, nh - start) for start in range(0, nh, step)]


def _joined(parts: tuple[Tensor, ...], dim: int = 0) -> Tensor:
    """``torch.cat`` that does not copy a single part."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=dim)


def _product_block(
    x_hat: tuple[Tensor, Tensor],
    kernel_w_hat: tuple[Tensor, Tensor, Tensor],
    k_h: tuple[Tensor, ...],
    v: Tensor | None,
    energy: Tensor | None,
    eps: float,
    groups: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Z_hat = V * W_hat X_hat on one block of frequency rows: (re, im) as (rows N_f G, B, Co/G), and V there.

    ``x_hat``: (re, im) of the input's spectrum on these rows, (rows, N_f G, B, Ci/G); ``kernel_w_hat``: (re, im,
    re + im) of the kernel rows' spectra along W, (k_h, N_f G Ci Co); ``k_h``: the DFT along H on these rows, as
    :func:`_complex_mm` takes it; ``v``: V on these rows, or None to compute it from this block's weight spectrum
    (``energy`` then needed).
    """
    n_rows, _, b, ci = x_hat[0].shape
    w_hat = _complex_mm(k_h, *kernel_w_hat)  # (rows, N_f G Ci Co); the kernel's Gauss sum made once for every block
    co = w_hat[0].shape[-1] // (x_hat[0].shape[1] * ci)  # Co/G: each row holds N_f G matrices Ci/G x Co/G
    wr, wi = (t.view(-1, ci, co) for t in w_hat)  # (rows N_f G, Ci/G, Co/G)
    if v is None:
        power = (wr.detach().square() + wi.detach().square()).sum(dim=1)  # (rows N_f G, Co/G)
        power = power.view(n_rows, -1, groups, co).permute(2, 3, 0, 1).reshape(co * groups, n_rows, -1)
        v = _regularised_rsqrt(power, energy, eps)
    v_batched = _frequency_major(v, groups)  # (rows N_f G, 1, Co/G)
    scale_output = b < ci  # V scales the smaller of the weight spectrum and the output
    if not scale_output:
        wr, wi = wr * v_batched, wi * v_batched
    zr, zi = _complex_bmm(x_hat[0].flatten(0, 1), x_hat[1].flatten(0, 1), wr, wi)
    if scale_output:
        zr, zi = zr * v_batched, zi * v_batched
    return zr, zi, v


def _dft_product(
    x: Tensor,
    weight: Tensor,
    v: Tensor | None,
    eps: float,
    padding: tuple[int, int],
    stride: tuple[int, int],
    groups: int,
) -> tuple[Tensor, Tensor]:
    """The Fourier-domain product with the DFTs as small real matmuls (the CPU backend).

    Batch and channels ride along as the trailing dimension of every transform, so the one transposition each
    way is a plain (pixels x B*C) one. The weight spectrum is built and used a block of frequency rows at a time
    (:func:`_row_blocks`); the blocks' inputs are split once, so that the backward joins their gradients once.
    """
    b, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ci, co = c_in // groups, c_out // groups
    plan = _dft_plan((h, w), (kh, kw), padding, stride, x.dtype, x.device)
    nh, nf = h + kh - 1, (w + kw - 1) // 2 + 1
    kernel = weight.view(groups, co, ci, kh, kw).permute(3, 4, 0, 2, 1).reshape(kh, kw, -1)
    kr, ki = ((m @ kernel).view(kh, -1) for m in plan["k_w"])  # (k_h, N_f G Ci Co): the kernel rows' spectra
    pixels = x.view(b, groups, ci, h, w).permute(3, 4, 1, 0, 2).reshape(h, w, -1)  # (H, W, G B Ci)
    xr, xi = (t.view(nh, -1, b, ci) for t in _forward_dft(pixels, plan["x_w"], plan["x_h"]))  # (N_h, N_f G, B, Ci)
    sizes = _row_blocks(nh, nf * ci * c_out, x.device)
    energy = _energy(weight) if v is None else None
    v_rows = v.split(sizes, dim=1) if v is not None else [None] * len(sizes)
    k_h = zip(*(m.split(sizes) for m in plan["k_h"]))
    kernel_w_hat = (kr, ki, kr + ki)
    blocks = [
        _product_block((r, i), kernel_w_hat, k, block_v, energy, eps, groups)
        for r, i, k, block_v in zip(xr.split(sizes), xi.split(sizes), k_h, v_rows)
    ]
    zr, zi, v_blocks = zip(*blocks)
    zr, zi = _joined(zr), _joined(zi)
    v = _joined(v_blocks, dim=1) if v is None else v
    wre, wim = plan["inv_w"]
    ho, wo = plan["inv_h"][0].shape[0], wre.shape[0]
    yr, yi = (t.view(ho, nf, -1) for t in _complex_mm(plan["inv_h"], zr.view(nh, -1), zi.view(nh, -1)))
    z = (wre @ yr + wim @ yi).view(ho, wo, groups, b, co).permute(3, 0, 1, 2, 4).reshape(b, ho, wo, c_out)
    return z.permute(0, 3, 1, 2), v  # (B, C_out, Ho, Wo) in channels-last memory, what the affine conv wants


def _fft_product(
    x: Tensor,
    weight: Tensor,
    v: Tensor | None,
    eps: float,
    padding: tuple[int, int],
    stride: tuple[int, int],
    groups: int,
) -> tuple[Tensor, Tensor]:
    """The same product with FFTs and a complex batched matmul: few, large kernels (the GPU backend)."""
    b, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    grid = (h + kh - 1, w + kw - 1)
    w_hat = torch.fft.rfft2(weight.flip(-2, -1), s=grid)  # (Co, Ci/G, N_h, N_f)
    if v is None:
        v = _regularised_rsqrt(w_hat.detach().abs().square().sum(dim=1), _energy(weight), eps)
    w_hat = (w_hat * v.unsqueeze(1)).view(groups, c_out // groups, c_in // groups, -1).permute(0, 3, 1, 2)
    x_hat = torch.fft.rfft2(x, s=grid).view(b, groups, c_in // groups, -1).permute(1, 3, 2, 0)  # (G, F, Ci, B)
    z_hat = (w_hat @ x_hat).permute(3, 0, 2, 1).reshape(b, c_out, grid[0], -1)  # (G, F, Co, B) -> (B, Co, N_h, N_f)
    return crop_and_stride(torch.fft.irfft2(z_hat, s=grid), (kh, kw), padding, stride), v


def crop_and_stride(z: Tensor, kernel: tuple[int, int], padding: tuple[int, int], stride: tuple[int, int]) -> Tensor:
    """Step 4: from the full-convolution grid keep what conv2d(padding, stride) outputs (crop k-1-p, subsample)."""
    th, tw = kernel[0] - 1 - padding[0], kernel[1] - 1 - padding[1]
    nh, nw = z.shape[-2:]
    return z[..., th : nh - th : stride[0], tw : nw - tw : stride[1]]


def pointwise_convnorm(
    x: Tensor, weight: Tensor, bias: Tensor | None, v: Tensor | None, eps: float, stride: tuple[int, int], groups: int
) -> tuple[Tensor, Tensor]:
    """ConvNorm of a 1x1 kernel: V is constant in frequency, so it is weight normalisation (only V[:, 0, 0] used)."""
    h, w = x.shape[-2:]
    if v is None:
        energy = _energy(weight)
        v = _regularised_rsqrt(energy, energy, eps).expand(weight.shape[0], h, w // 2 + 1)
    scale = v[:, 0, 0]
    bias = None if bias is None else bias * scale
    return F.conv2d(x, weight * scale.view(-1, 1, 1, 1), bias, stride=stride, groups=groups), v


def fourier_convnorm(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    v: Tensor | None,
    eps: float,
    padding: tuple[int, int],
    stride: tuple[int, int],
    groups: int,
    backend: str | None = None,
) -> tuple[Tensor, Tensor]:
    """ConvNorm steps 1-4 in the Fourier domain; returns the output and the V used (V of ``weight`` if None).

    ``weight`` is the undilated effective kernel (C_out x C_in/G x k_h x k_w); the output has the shape of
    ``conv2d(x, weight, padding=padding, stride=stride, groups=groups)``. ``backend``: ``"dft"`` (DFTs as real
    matmuls: fastest on a CPU) or ``"fft"`` (cuFFT and a complex batched matmul: fewest kernels, fastest on a
    GPU); by default the one that suits ``x``'s device.
    """
    if weight.shape[-2:] == (1, 1):
        return pointwise_convnorm(x, weight, bias, v, eps, stride, groups)
    backend = backend or ("fft" if x.is_cuda else "dft")
    if backend not in ("fft", "dft"):
        raise ValueError(f"fourier_convnorm: backend={backend!r}; choose 'fft', 'dft' or None")
    product = _fft_product if backend == "fft" else _dft_product
    z, v = product(x, weight, v, eps, padding, stride, groups)
    return add_filtered_bias(z, bias, v), v
