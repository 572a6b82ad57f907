"""ConvNorm's mixed path: a DFT along the width, the conv along the height in space, V on the full grid.

The fast path transforms both axes and multiplies by the weight spectrum, one C_out x C_in matrix per frequency
(N_h * N_f of them): at small batches streaming that spectrum costs more than the product it serves. The spatial
path runs the conv itself on the stride-1 full-convolution grid: four times a stride-2 conv's output. This path
sits between them. Along the width the conv becomes a product (one-sided DFT, N_f frequencies); along the height it
stays a k_h-tap correlation, one batched matrix product per width frequency with C_in * k_h inputs. The weight
spectrum is k_h * N_f matrices instead of N_h * N_f, and no pixel of the stride-1 grid is computed in space. V's
filter then runs along the height as a DFT, and both inverse transforms are evaluated at the kept pixels only.

Every transform is a real matrix product (complex ones by Gauss's three-product trick), as on the fast path.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gan.layers.fourier import _complex_bmm, _energy, _regularised_rsqrt
from gan.layers.spatial import power_spectrum


@functools.lru_cache(maxsize=128)
def _plan(
    size: tuple[int, int], kernel: tuple[int, int], padding: tuple[int, int], stride: tuple[int, int],
    dtype: torch.dtype, device: torch.device,
) -> dict[str, tuple[Tensor, ...]]:
    """DFT matrices for one layer geometry: along the width for the input and the (flipped) kernel, the full
    DFT along the height, and the inverses at the rows and columns that survive the crop and the stride."""
    (h, w), (kh, kw) = size, kernel
    nh, nw = h + kh - 1, w + kw - 1
    nf = nw // 2 + 1
    f64 = torch.float64
    rows = torch.arange(kh - 1 - padding[0], nh - (kh - 1 - padding[0]), stride[0], dtype=f64)
    cols = torch.arange(kw - 1 - padding[1], nw - (kw - 1 - padding[1]), stride[1], dtype=f64)

    def forward(freqs: int, positions: Tensor, n: int) -> tuple[Tensor, Tensor]:  # e^{-2 pi i f t / n}
        angle = 2 * math.pi * torch.remainder(torch.arange(freqs, dtype=f64)[:, None] * positions, n) / n
        return angle.cos(), -angle.sin()

    def inverse(positions: Tensor, freqs: int, n: int) -> tuple[Tensor, Tensor]:  # e^{+2 pi i f t / n} / n
        angle = 2 * math.pi * torch.remainder(positions[:, None] * torch.arange(freqs, dtype=f64), n) / n
        return angle.cos() / n, angle.sin() / n

    hermitian = torch.full((nf,), 2.0, dtype=f64)  # one-sided inverse: count the mirrored half twice
    hermitian[0] = 1.0
    if nw % 2 == 0:
        hermitian[-1] = 1.0
    inv_w_re, inv_w_im = inverse(cols, nf, nw)
    plan = {
        "x_w": forward(nf, torch.arange(w, dtype=f64), nw),
        "k_w": forward(nf, torch.arange(kw - 1, -1, -1, dtype=f64), nw),  # conv2d correlates: the flipped kernel
        "dft_h": forward(nh, torch.arange(nh, dtype=f64), nh),
        "inv_h": inverse(rows, nh, nh),
        "inv_w": (inv_w_re * hermitian, -inv_w_im * hermitian),  # real output: Re(Y) * re - Im(Y) * im
    }
    for name in ("dft_h", "inv_h"):  # complex left factors also carry the sums Gauss's trick needs
        re, im = plan[name]
        plan[name] = (re, im, re + im, im - re)
    return {name: tuple(m.to(dtype=dtype, device=device) for m in ms) for name, ms in plan.items()}


def _left_complex_mm(matrix: tuple[Tensor, ...], xr: Tensor, xi: Tensor) -> tuple[Tensor, Tensor]:
    """(A + iB) @ (xr + i xi) for a shared left factor; ``matrix`` = (A, B, A + B, B - A)."""
    a, _, a_plus_b, b_minus_a = matrix
    t1 = a @ (xr + xi)
    return t1 - a_plus_b @ xi, t1 + b_minus_a @ xr


def _windows(t: Tensor, kh: int) -> Tensor:
    """(M, R, B, C) -> (M, (R - kh + 1) * B, C * kh): every run of ``kh`` consecutive rows, as one matrix row."""
    m, r, b, c = t.shape
    return t.unfold(1, kh, 1).reshape(m, (r - kh + 1) * b, c * kh)


def _padded_windows(xr: Tensor, xi: Tensor, kh: int) -> tuple[Tensor, Tensor]:
    """The correlation's input rows: X zero-padded by k_h - 1 along the height, every k_h-row window as one row."""
    return tuple(_windows(F.pad(t, (0, 0, 0, 0, kh - 1, kh - 1)), kh) for t in (xr, xi))


def _tap_flipped_transpose(k: Tensor, kh: int) -> Tensor:
    """(M, C_in * k_h, C_out) with rows (channel, tap) -> (M, C_out * k_h, C_in) with rows (channel, k_h - 1 - tap)."""
    m, rows, c_out = k.shape
    c_in = rows // kh
    return k.view(m, c_in, kh, c_out).flip(2).permute(0, 3, 2, 1).reshape(m, c_out * kh, c_in)


class _ColumnCorrelation(torch.autograd.Function):
    """Y[m, i] = sum_p X[m, i + p - (k_h - 1)] @ K[m, p] on the full (zero-padded) height grid, complex.

    X (re, im): (M, H, B, C_in); K: (M, C_in * k_h, C_out) with rows ordered (channel, tap); Y: (M, N_h * B, C_out).
    Written out so that the input gradient is the transposed correlation over windows of the output gradient (one
    product with C_out * k_h inputs) rather than autograd's product with C_out inputs followed by a scatter-add.
    The backward recomputes the windows from the saved inputs: k_h times less memory, and it stays differentiable
    (a gradient penalty's double backward).
    """

    @staticmethod
    def forward(ctx, xr: Tensor, xi: Tensor, kr: Tensor, ki: Tensor, kh: int):  # noqa: ANN001, ANN205
        ctx.save_for_backward(xr, xi, kr, ki)
        ctx.kh = kh
        return _complex_bmm(*_padded_windows(xr, xi, kh), kr, ki)

    @staticmethod
    def backward(ctx, gr: Tensor, gi: Tensor):  # noqa: ANN205
        xr, xi, kr, ki = ctx.saved_tensors
        kh, b = ctx.kh, xr.shape[2]
        m, c_in, c_out = kr.shape[0], kr.shape[1] // kh, kr.shape[2]
        dxr = dxi = dkr = dki = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            # dX[i] = sum_q dY[i + q] @ K[k_h - 1 - q]^H: windows of dY against the tap-flipped, conjugated kernel
            nh = gr.shape[1] // b
            wr, wi = (_windows(t.view(m, nh, b, c_out), kh) for t in (gr, gi))
            dxr, dxi = _complex_bmm(wr, wi, _tap_flipped_transpose(kr, kh), -_tap_flipped_transpose(ki, kh))
            dxr, dxi = dxr.view(m, nh - kh + 1, b, c_in), dxi.view(m, nh - kh + 1, b, c_in)
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:  # dK = X^H @ dY
            ur, ui = _padded_windows(xr, xi, kh)
            dkr, dki = _complex_bmm(ur.mT, -ui.mT, gr, gi)
        return dxr, dxi, dkr, dki, None


def mixed_convnorm(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    v: Tensor | None,
    eps: float,
    padding: tuple[int, int],
    stride: tuple[int, int],
    groups: int,
) -> tuple[Tensor, Tensor]:
    """ConvNorm steps 1-4 with a DFT along the width and the conv along the height: arguments and result as
    :func:`gan.layers.fourier.fourier_convnorm`'s."""
    b, c_in, h, w = x.shape
    c_out, ci, kh, kw = weight.shape
    co = c_out // groups
    nh, nw = h + kh - 1, w + kw - 1
    nf = nw // 2 + 1
    m = nf * groups
    plan = _plan((h, w), (kh, kw), padding, stride, x.dtype, x.device)
    if v is None:
        v = _regularised_rsqrt(power_spectrum(weight, (nh, nw)).clamp(min=0), _energy(weight), eps)
    kernel = weight.view(groups, co, ci, kh, kw)
    kr, ki = (torch.einsum("fq,gocpq->fgcpo", t, kernel).reshape(m, ci * kh, co) for t in plan["k_w"])
    pixels = x.view(b, groups, ci, h, w).permute(4, 1, 3, 0, 2).reshape(w, -1)  # (W, G H B Ci)
    xr, xi = ((t @ pixels).view(m, h, b, ci) for t in plan["x_w"])  # (N_f G, H, B, Ci)
    yr, yi = _ColumnCorrelation.apply(xr, xi, kr, ki, kh)  # (N_f G, N_h B, Co)
    sr, si = _left_complex_mm(plan["dft_h"], yr.view(m, nh, b * co), yi.view(m, nh, b * co))
    scale = v.view(groups, co, nh, nf).permute(3, 0, 2, 1).reshape(m, nh, 1, co)
    sr, si = ((t.view(m, nh, b, co) * scale).view(m, nh, b * co) for t in (sr, si))
    zr, zi = _left_complex_mm(plan["inv_h"], sr, si)  # (N_f G, H_out, B Co)
    ho = zr.shape[1]
    inv_re, inv_im = plan["inv_w"]
    z = inv_re @ zr.reshape(nf, -1) + inv_im @ zi.reshape(nf, -1)  # (W_out, G H_out B Co)
    z = z.view(-1, groups, ho, b, co).permute(3, 1, 4, 2, 0).reshape(b, c_out, ho, -1)
    if bias is not None:  # a constant bias field passes the filter scaled by V's DC response
        z = z + (bias * v[:, 0, 0]).view(1, -1, 1, 1)
    return z, v
