"""ConvNorm's mixed path: a DFT along the width, the conv along the height in space, V on the full grid.

The fast path transforms both axes and multiplies by the weight spectrum, one C_out x C_in matrix per frequency
(N_h * N_f of them): at small batches streaming that spectrum costs more than the product it serves. The spatial
path runs the conv itself on the stride-1 full-convolution grid: four times a stride-2 conv's output. This path
sits between them. Along the width the conv becomes a product (one-sided DFT, N_f frequencies); along the height it
stays a k_h-tap correlation: k_h batched matrix products per width frequency, each with C_in inputs. The weight
spectrum is k_h * N_f matrices instead of N_h * N_f, and no pixel of the stride-1 grid is computed in space. V's
filter then runs along the height as a DFT, and both inverse transforms are evaluated at the kept pixels only.

Every transform is a real matrix product (complex ones by Gauss's three-product trick), as on the fast path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan.layers.fourier import (
    _complex_mm,
    _dft_plan,
    add_filtered_bias,
    dft_matrix,
    plan_cache,
    plan_on,
    pointwise_convnorm,
    with_gauss_sums,
)
from gan.layers.spatial import autocorrelation_preconditioner


@plan_cache(maxsize=128)
def _plan(
    size: tuple[int, int], kernel: tuple[int, int], padding: tuple[int, int], stride: tuple[int, int],
    dtype: torch.dtype, device: torch.device,
) -> dict[str, tuple[Tensor, ...]]:
    """The fast path's DFT matrices for this geometry (the flipped kernel along the width, the inverses at the kept
    pixels), plus the input's transform along the width as one matrix (real rows over imaginary: one product, one
    gradient) and the full DFT along the height of the correlation's output."""
    (h, w), (kh, kw) = size, kernel
    nh, nw = h + kh - 1, w + kw - 1
    fast = _dft_plan(size, kernel, padding, stride, dtype, device)
    dft_h = dft_matrix(nh, torch.arange(nh, dtype=torch.float64), nh)
    extra = plan_on({
        "x_w": (torch.cat(dft_matrix(nw // 2 + 1, torch.arange(w, dtype=torch.float64), nw)),),
        "dft_h": with_gauss_sums(*dft_h),
    }, dtype, device)
    return {"k_w": fast["k_w"], "inv_h": fast["inv_h"], "inv_w": fast["inv_w"], **extra}


def _tap_sum(
    xs: Tensor, xr: Tensor, xi: Tensor, kr: Tensor, ki: Tensor, batch: int, rows: int
) -> tuple[Tensor, Tensor]:
    """sum_p X[rows p .. p + rows) @ K[:, p], complex, by Gauss's trick with the input's sum ``xs = xr + xi`` formed
    once: X (M, R * B, C) with rows ordered (row, sample), K (M, k_h, C, C') -> (M, rows * B, C'). Each tap reads
    its rows of X in place, so no k_h-fold copy of the input is ever made, and accumulates in place into the first
    tap's products (an out-of-place ``baddbmm`` copies its accumulator first: 2-16 % of this path at batch 8-32).
    In place is safe under autograd too (a gradient penalty's double backward): no product's backward reads its
    output."""
    acc = [None, None, None]
    for p in range(kr.shape[1]):
        window = slice(p * batch, (p + rows) * batch)
        factors = zip((xs, xr, xi), _gauss_kernels(kr, ki, p))
        acc = [x[:, window] @ k if a is None else a.baddbmm_(x[:, window], k) for a, (x, k) in zip(acc, factors)]
    return acc[2].neg_().add_(acc[0]), acc[1].add_(acc[0])


def _tap_scatter(
    xs: Tensor, xr: Tensor, xi: Tensor, kr: Tensor, ki: Tensor, batch: int, rows: int
) -> tuple[Tensor, Tensor]:
    """The height correlation onto the full grid of ``rows`` output rows without zero-padding X: tap p adds
    X @ K[:, p] to output rows [k_h - 1 - p, k_h - 1 - p + H), so no product ever multiplies a padded zero row (with
    padding, k_h - 1 of every N_h rows were zeros) and X is never copied. Arguments as :func:`_tap_sum`'s, X (M, H * B,
    C) whole."""
    kh = kr.shape[1]
    acc = [xr.new_zeros(xr.shape[0], rows * batch, kr.shape[-1]) for _ in range(3)]
    for p in range(kh):
        band = _tap_rows(p, kh, xr.shape[1] // batch, batch)
        for a, x, k in zip(acc, (xs, xr, xi), _gauss_kernels(kr, ki, p)):
            a[:, band].baddbmm_(x, k)
    return acc[2].neg_().add_(acc[0]), acc[1].add_(acc[0])


def _tap_rows(p: int, kh: int, h: int, batch: int) -> slice:
    """The output rows, (row, sample) ordered, that tap p of the height correlation writes: [k_h - 1 - p, .. + H)."""
    return slice((kh - 1 - p) * batch, (kh - 1 - p + h) * batch)


def _gauss_kernels(kr: Tensor, ki: Tensor, p: int) -> tuple[Tensor, Tensor, Tensor]:
    """Tap p's three right factors of Gauss's trick, for the left factors (X_r + X_i, X_r, X_i)."""
    return kr[:, p], ki[:, p] - kr[:, p], kr[:, p] + ki[:, p]


class _HeightCorrelation(torch.autograd.Function):
    """Y[m, i] = sum_p X[m, i + p - (k_h - 1)] @ K[m, p] on the full (zero-padded) height grid, complex.

    X (re, im): (M, H, B, C_in); K: (M, k_h, C_in, C_out); Y: (M, N_h * B, C_out). Written out so that neither
    direction copies the input k_h times (as an unfold would) and the input gradient is the same tap sum over the
    output gradient with the tap-flipped, conjugate-transposed kernel. The backward uses differentiable operations
    on the saved inputs only, so a gradient penalty's double backward is exact.
    """

    @staticmethod
    def forward(ctx, xr: Tensor, xi: Tensor, kr: Tensor, ki: Tensor):  # noqa: ANN001, ANN205
        ctx.save_for_backward(xr, xi, kr, ki)
        m, h, b, c_in = xr.shape
        xr, xi = xr.reshape(m, -1, c_in), xi.reshape(m, -1, c_in)
        return _tap_scatter(xr + xi, xr, xi, kr, ki, b, h + kr.shape[1] - 1)

    @staticmethod
    def backward(ctx, gr: Tensor, gi: Tensor):  # noqa: ANN205
        xr, xi, kr, ki = ctx.saved_tensors
        m, h, b, c_in = xr.shape
        kh = kr.shape[1]
        dxr = dxi = dkr = dki = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:  # dX[i] = sum_q dY[i + q] @ K[k_h - 1 - q]^H
            flipped_r, flipped_i = (k.flip(1).transpose(2, 3) for k in (kr, ki))
            dxr, dxi = _tap_sum(gr + gi, gr, gi, flipped_r, -flipped_i, b, h)
            dxr, dxi = dxr.view(m, h, b, c_in), dxi.view(m, h, b, c_in)
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:  # dK[p] = X^H @ dY[tap p's rows], Gauss with conj(X)
            xr, xi = xr.reshape(m, -1, c_in), xi.reshape(m, -1, c_in)
            plus, minus, g_sum = xr + xi, xr - xi, gr + gi
            taps_r, taps_i = [], []
            for p in range(kh):
                band = _tap_rows(p, kh, h, b)  # the output rows tap p wrote
                k1 = xr.mT @ g_sum[:, band]
                taps_r.append(torch.baddbmm(k1, minus.mT, gi[:, band], alpha=-1))
                taps_i.append(k1.baddbmm_(plus.mT, gr[:, band], alpha=-1))
            dkr, dki = torch.stack(taps_r, 1), torch.stack(taps_i, 1)
        return dxr, dxi, dkr, dki


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
    if (kh, kw) == (1, 1):
        return pointwise_convnorm(x, weight, bias, v, eps, stride, groups)
    co = c_out // groups
    nh, nw = h + kh - 1, w + kw - 1
    nf = nw // 2 + 1
    m = nf * groups
    plan = _plan((h, w), (kh, kw), padding, stride, x.dtype, x.device)
    if v is None:
        v = autocorrelation_preconditioner(weight, (nh, nw), eps)
    kernel = weight.view(groups, co, ci, kh, kw).permute(4, 0, 3, 2, 1).reshape(kw, -1)  # (k_w, G k_h Ci Co)
    kr, ki = ((t @ kernel).view(m, kh, ci, co) for t in plan["k_w"])  # a plain matmul each, no permuted result
    pixels = x.view(b, groups, ci, h, w).permute(4, 1, 3, 0, 2).reshape(w, -1)  # (W, G H B Ci)
    xr, xi = (plan["x_w"][0] @ pixels).view(2, m, h, b, ci)  # (N_f G, H, B, Ci) each
    yr, yi = _HeightCorrelation.apply(xr, xi, kr, ki)  # (N_f G, N_h B, Co)
    sr, si = _complex_mm(plan["dft_h"], yr.view(m, nh, b * co), yi.view(m, nh, b * co))
    scale = v.view(groups, co, nh, nf).permute(3, 0, 2, 1).reshape(m, nh, 1, co).contiguous()  # as _frequency_major
    sr, si = ((t.view(m, nh, b, co) * scale).view(m, nh, b * co) for t in (sr, si))
    zr, zi = _complex_mm(plan["inv_h"], sr, si)  # (N_f G, H_out, B Co)
    ho = zr.shape[1]
    inv_re, inv_im = plan["inv_w"]
    z = inv_re @ zr.reshape(nf, -1) + inv_im @ zi.reshape(nf, -1)  # (W_out, G H_out B Co)
    z = z.view(-1, groups, ho, b, co).permute(3, 1, 4, 2, 0).reshape(b, c_out, ho, -1)
    return add_filtered_bias(z, bias, v), v
