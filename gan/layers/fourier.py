"""The spectral math of ConvNorm: the preconditioner V, its resampling, and the fast Fourier-domain operator.

The fast operator computes, for every output channel c and frequency f of the N_h x N_w circular grid,

    Z_hat[b, c, f] = V[c, f] * sum_c' W_hat[c, c', f] * X_hat[b, c', f]

with the DFTs written as small real matrix products (separable along H and W) rather than FFT calls: the
grids are tiny (N = H + k - 1 <= ~70), matrix products run at the BLAS's full speed and differentiate cheaply,
and the inverse transform is evaluated only at the output pixels kept after the crop and the stride.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor


def preconditioner(weight: Tensor, grid: tuple[int, int], eps: float) -> Tensor:
    """V[c, f] = (S[c, f] + eps * mean_f S[c, f])^-1/2, S[c, f] = sum_c' |W_hat[c, c', f]|^2, on the one-sided grid.

    Computed with ``torch.fft.rfft2`` of the zero-padded kernel, exactly as the spec writes it (the fast path
    gets the same numbers from its own DFT matrices, see ``_preconditioner_from_spectrum``).
    """
    power = torch.fft.rfft2(weight.detach(), s=grid).abs().square().sum(dim=1)
    return _regularised_rsqrt(power, weight.detach().square().sum(dim=(1, 2, 3)).view(-1, 1, 1), eps)


def _regularised_rsqrt(power: Tensor, energy: Tensor, eps: float) -> Tensor:
    """(power + eps * energy)^-1/2, with ``energy = ||w_c||^2 = mean_f S[c, f]`` (Parseval).

    The epsilon scales with the kernel, so V * W_hat is exactly invariant to a positive per-channel rescaling
    of w. An all-zero channel gets V = 1 (its output is 0 either way).
    """
    regularised = power + eps * energy
    safe = torch.where(regularised > 0, regularised, torch.ones_like(regularised))
    return torch.where(energy > 0, safe.rsqrt(), torch.ones_like(safe))


def onesided_to_full(v: Tensor, width: int) -> Tensor:
    """Expand a one-sided frequency response (C x N_h x N_w//2+1) to the full grid by Hermitian symmetry."""
    nh, nf = v.shape[-2:]
    mirror = v[:, (-torch.arange(nh, device=v.device)) % nh]  # V(-u, -v) = V(u, v) for a real kernel
    return torch.cat((v, mirror[..., 1 : width - nf + 1].flip(-1)), dim=-1)


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


@functools.lru_cache(maxsize=128)
def _dft_plan(
    size: tuple[int, int],
    kernel: tuple[int, int],
    padding: tuple[int, int],
    stride: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> dict[str, Tensor]:
    """Real DFT matrices for one layer geometry (input size, kernel, padding, stride).

    Forward transforms of the input (along W one-sided, along H full, complex as [re, im] blocks), of the
    flipped kernel, and inverse transforms evaluated only at the output positions that survive the crop and
    the stride, so a strided layer never computes the outputs it would throw away.
    """
    (h, w), (kh, kw) = size, kernel
    nh, nw = h + kh - 1, w + kw - 1
    nf = nw // 2 + 1
    rows = torch.arange(kh - 1 - padding[0], nh - (kh - 1 - padding[0]), stride[0], dtype=torch.float64)
    cols = torch.arange(kw - 1 - padding[1], nw - (kw - 1 - padding[1]), stride[1], dtype=torch.float64)
    freq_h = torch.arange(nh, dtype=torch.float64)
    freq_w = torch.arange(nf, dtype=torch.float64)

    def angle(pos: Tensor, freq: Tensor, n: int) -> Tensor:  # 2 pi (pos * freq mod n) / n, exact in float64
        return 2 * math.pi * torch.remainder(pos[:, None] * freq[None, :], n) / n

    def along_w(pos: Tensor) -> Tensor:  # (len(pos), 2 nf): real signal -> [re | im] of its one-sided DFT
        a = angle(pos, freq_w, nw)
        return torch.cat((a.cos(), -a.sin()), dim=1)

    def along_h(pos: Tensor) -> Tensor:  # (2 nh, 2 len(pos)): complex signal [re; im] -> its full DFT
        a = angle(freq_h, pos, nh)
        c, s = a.cos(), a.sin()
        return torch.cat((torch.cat((c, s), 1), torch.cat((-s, c), 1)), 0)

    a = angle(rows, freq_h, nh)  # inverse along H at the kept rows: [re; im] -> [re; im]
    inv_h = torch.cat((torch.cat((a.cos(), -a.sin()), 1), torch.cat((a.sin(), a.cos()), 1)), 0) / nh
    a = angle(freq_w, cols, nw)  # inverse one-sided DFT along W at the kept columns: [re; im] -> real
    weight = torch.full((nf, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if nw % 2 == 0:
        weight[-1] = 1.0
    inv_w = torch.cat((weight * a.cos(), -weight * a.sin()), 0) / nw
    plan = {
        "x_w": along_w(torch.arange(w, dtype=torch.float64)),
        "x_h": along_h(torch.arange(h, dtype=torch.float64)),
        "k_w": along_w(torch.arange(kw - 1, -1, -1, dtype=torch.float64)),
        "k_h": along_h(torch.arange(kh - 1, -1, -1, dtype=torch.float64)),
        "inv_h": inv_h,
        "inv_w": inv_w,
    }
    return {name: m.to(dtype=dtype, device=device) for name, m in plan.items()}


def _separable_dft(t: Tensor, along_w: Tensor, along_h: Tensor, groups: int) -> Tensor:
    """(N, C, H, W) real -> (2, N_h * G * N_f, N, C/G): the one-sided 2-D DFT, frequency-major, [re, im] first.

    Two real matmuls (W then H); the layout puts the frequencies (and groups) on the batch dimension of the
    channel product that follows.
    """
    n, c, h, _ = t.shape
    nf, nh = along_w.shape[1] // 2, along_h.shape[0] // 2
    t = (t @ along_w).view(n, groups, c // groups, h, 2, nf).permute(4, 3, 1, 5, 0, 2)
    t = along_h @ t.reshape(2 * h, -1)
    return t.view(2, nh * groups * nf, n, c // groups)


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


def _v_to_spectrum_layout(v: Tensor, groups: int) -> Tensor:
    """(C_out, N_h, N_f) -> (N_h * G * N_f, 1, C_out / G), the batch order of ``_separable_dft``."""
    c_out, nh, nf = v.shape
    return v.view(groups, c_out // groups, nh, nf).permute(2, 0, 3, 1).reshape(-1, 1, c_out // groups)


def fourier_convnorm(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    v: Tensor | None,
    eps: float,
    padding: tuple[int, int],
    stride: tuple[int, int],
    groups: int,
) -> tuple[Tensor, Tensor]:
    """ConvNorm steps 1-4 in the Fourier domain; returns the output and the V used (V of ``weight`` if None).

    ``weight`` is the undilated effective kernel (C_out x C_in/G x k_h x k_w); the output has the shape of
    ``conv2d(x, weight, padding=padding, stride=stride, groups=groups)``.
    """
    b, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    plan = _dft_plan((h, w), (kh, kw), padding, stride, x.dtype, x.device)
    nh, nf = h + kh - 1, (w + kw - 1) // 2 + 1
    spectrum = _separable_dft(weight.transpose(0, 1), plan["k_w"], plan["k_h"], groups)  # (2, F, Ci/G, Co/G)
    if v is None:
        power = torch.linalg.vector_norm(spectrum.detach(), dim=(0, 2)).square()  # (F, Co/G), (N_h, G, N_f) order
        power = power.view(nh, groups, nf, c_out // groups).permute(1, 3, 0, 2).reshape(c_out, nh, nf)
        energy = weight.detach().square().sum(dim=(1, 2, 3)).view(-1, 1, 1)
        v = _regularised_rsqrt(power, energy, eps)
    v_batched = _v_to_spectrum_layout(v, groups)
    scale_output = b < weight.shape[1]  # V scales the smaller of the weight spectrum and the output
    if not scale_output:
        spectrum = spectrum * v_batched
    x_hat = _separable_dft(x, plan["x_w"], plan["x_h"], groups)  # (2, F, B, Ci/G)
    zr, zi = _complex_bmm(*x_hat.unbind(0), *spectrum.unbind(0))  # (F, B, Co/G) each
    if scale_output:
        zr, zi = zr * v_batched, zi * v_batched
    ho = plan["inv_h"].shape[0] // 2
    z = plan["inv_h"] @ torch.cat((zr, zi), dim=0).view(2 * nh, -1)  # (2 Ho, G N_f B Co/G)
    z = z.view(2, ho, groups, nf, b, c_out // groups).permute(4, 2, 5, 1, 0, 3).reshape(b, c_out, ho, 2 * nf)
    z = z @ plan["inv_w"]
    if bias is not None:  # a constant bias field passes the filter scaled by V's DC response
        z = z + (bias * v[:, 0, 0]).view(1, -1, 1, 1)
    return z, v
