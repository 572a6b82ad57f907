"""ConvNorm2d against the 13 properties that define a correct ConvNorm (numbered as the sections below), each
checked against an independent construction where one exists (float64, ~1e-12 unless noted):

 1. output shape == nn.Conv2d(C_in, C_out, k, stride=s, padding=p);  2. with V forced to 1 it is F.conv2d;
 3. sum_c' |V[c,f] W_hat[c,c',f]|^2 = 1 for every c, f;  4. each output channel's map x -> z_c (circular, pre-crop)
 has all singular values 1, the layer's norm lies in [1, sqrt(C_out)];  5. the direct non-FFT construction
 z_c = sum_(a,b) v_c[a,b] roll(y_c, (a,b)), v_c = irfft2(V_c), equals the layer;  6. 1x1 kernels are the conv with
 rows w_c / ||w_c||;  7. scaling a channel's kernel by any positive factor leaves the output unchanged;  8. V is
 detached;  9. a sample's output does not depend on the rest of its batch;  10. running_V: the authors' cosine EMA,
 used in eval mode;  11. the affine kernel keeps the spatial size for every k;  12. an all-zero kernel gives finite
 outputs;  13. for Kaiming-initialised 64->64 3x3 convs on an 18x18 grid the operator's spectral norm (~2.0) is
 below the raw conv's (~2.9).

Then: every algorithm == the reference (outputs and gradients), the algorithm dispatch (timed once per input shape,
forced choices, recorded in checkpoints), dilation, state, autocast and argument errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from gan.layers import dispatch, fourier
from gan.layers.convnorm import ALGORITHMS, CHOICES, ConvNorm2d, _pair, choice_name, dilate_kernel, ema_factor
from gan.layers.fourier import fourier_convnorm, onesided_to_full, preconditioner, resample_frequency_response
from gan.layers.spatial import INVERSES, autocorrelation, spatial_convnorm
from gan.layers.spectrum import conv_spectral_norm, convnorm_spectral_norm

SPEC_CASES = [(1, 0, 1), (1, 0, 2), (3, 0, 1), (3, 1, 1), (3, 1, 2), (4, 1, 2), (4, 2, 2), (5, 2, 1), (5, 2, 2)]
PATHS = list(ALGORITHMS)


def make(c_in, c_out, k, stride=1, padding=0, seed=0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=kw.pop("bias", False)).to(dtype)
    return conv, ConvNorm2d.from_conv(conv, **kw).to(dtype)


def circular_full_conv(x, w):
    """sum_c' w_cc' (flipped) circularly convolved with x_c' on x's own grid, by explicit rolls (no FFT)."""
    kh, kw = w.shape[-2:]
    out = x.new_zeros(x.shape[0], w.shape[0], *x.shape[-2:])
    for a in range(kh):
        for b in range(kw):
            # full conv y[i] = sum_a w[a] x[i + a - (k-1)]  ->  roll x by (k-1-a)
            shifted = torch.roll(x, shifts=(kh - 1 - a, kw - 1 - b), dims=(-2, -1))
            out += torch.einsum("oi,bihw->bohw", w[:, :, a, b], shifted)
    return out


def roll_filter(y, v_spatial):
    """z_c = sum_(a,b) v_c[a,b] * roll(y_c, (a,b)): the direct (non-FFT) construction of the filter (property 5)."""
    z = torch.zeros_like(y)
    for a in range(y.shape[-2]):
        for b in range(y.shape[-1]):
            z += v_spatial[:, a, b].view(1, -1, 1, 1) * torch.roll(y, shifts=(a, b), dims=(-2, -1))
    return z


# 1 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("k,p,s", SPEC_CASES)
@pytest.mark.parametrize("size", [8, 9])
def test_output_shape_matches_conv2d(path, k, p, s, size):
    conv, layer = make(3, 5, k, s, p, algorithm=path)
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    assert layer(x).shape == conv(x).shape


# 2 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("k,p,s", SPEC_CASES + [((1, 3), (0, 1), 1), ((3, 1), (1, 0), (2, 1))])
def test_unit_V_gives_the_plain_conv(path, k, p, s):
    conv, layer = make(3, 5, k, s, p, algorithm=path, bias=True)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    ones = torch.ones_like(layer.current_V(layer.grid(9, 8)))
    z, _ = layer.normalize(x, ones)
    torch.testing.assert_close(z, F.conv2d(x, conv.weight, conv.bias, stride=s, padding=p), rtol=0, atol=1e-12)


# 3 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 4, (1, 3)])
def test_normalized_frequency_rows_have_unit_energy(k):
    _, layer = make(6, 4, k)
    grid = layer.grid(7, 8)
    w_hat = torch.fft.rfft2(layer.weight.detach(), s=grid)
    energy = (layer.current_V(grid).unsqueeze(1) * w_hat).abs().square().sum(1)
    torch.testing.assert_close(energy, torch.ones_like(energy), rtol=0, atol=1e-9)


# 4 -------------------------------------------------------------------------------------------------------------
def explicit_operator(layer, n):
    """The matrix of x -> (v_c circularly convolved with y_c) on the n x n grid, built column by column with rolls."""
    grid = (n, n)
    v_spatial = torch.fft.irfft2(layer.current_V(grid), s=grid)
    c_in = layer.in_channels
    basis = torch.eye(c_in * n * n, dtype=torch.float64).view(-1, c_in, n, n)
    z = roll_filter(circular_full_conv(basis, layer.weight.detach()), v_spatial)
    return z.reshape(basis.shape[0], layer.out_channels, n * n)  # (inputs, C_out, outputs)


@pytest.mark.parametrize("k", [3, 4])
def test_each_output_channel_is_an_isometry_and_the_layer_norm_is_bounded(k):
    _, layer = make(3, 4, k, seed=1)
    n = 6
    op = explicit_operator(layer, n)
    for c in range(layer.out_channels):
        sv = torch.linalg.svdvals(op[:, c, :].T)
        torch.testing.assert_close(sv, torch.ones_like(sv), rtol=0, atol=1e-9)
    whole = torch.linalg.svdvals(op.reshape(op.shape[0], -1).T)[0].item()
    assert 1.0 - 1e-9 <= whole <= math.sqrt(layer.out_channels) + 1e-9
    # the Fourier-domain spectral norm agrees with the explicit matrix
    layer_no_affine = ConvNorm2d.from_conv(torch.nn.Conv2d(3, 4, k, bias=False), affine=False).double()
    layer_no_affine.weight.data.copy_(layer.weight.data)
    assert convnorm_spectral_norm(layer_no_affine, (n - k + 1, n - k + 1)) == pytest.approx(whole, rel=1e-6)


def test_conv_spectral_norm_matches_explicit_matrix():
    torch.manual_seed(3)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    n = 6
    basis = torch.eye(3 * n * n, dtype=torch.float64).view(-1, 3, n, n)
    op = circular_full_conv(basis, w).reshape(basis.shape[0], -1)
    assert conv_spectral_norm(w, (n, n)) == pytest.approx(torch.linalg.svdvals(op)[0].item(), rel=1e-9)


# 5 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("k,p,s", [(3, 1, 1), (4, 1, 2), (5, 2, 2), ((1, 3), (0, 1), 1)])
def test_direct_roll_construction_equals_the_layer(path, k, p, s):
    conv, layer = make(3, 4, k, s, p, algorithm=path, affine=False)
    x = torch.randn(2, 3, 8, 9, dtype=torch.float64)
    kh, kw = layer.kernel_size
    grid = layer.grid(8, 9)
    y = F.conv2d(x, layer.weight, padding=(kh - 1, kw - 1))
    z = roll_filter(y, torch.fft.irfft2(layer.current_V(grid), s=grid))
    th, tw = kh - 1 - layer.padding[0], kw - 1 - layer.padding[1]
    expected = z[..., th : grid[0] - th : layer.stride[0], tw : grid[1] - tw : layer.stride[1]]
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)


# 6 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stride", [1, 2])
def test_1x1_kernel_is_row_normalised_conv(path, stride):
    conv, layer = make(5, 3, 1, stride, algorithm=path, affine=False)
    w = conv.weight / conv.weight.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    x = torch.randn(2, 5, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(x), F.conv2d(x, w, stride=stride), rtol=0, atol=1e-10)


# 7 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_per_channel_scale_invariance(path, dtype):
    _, layer = make(4, 6, 4, 2, 1, algorithm=path, dtype=dtype)
    x = torch.randn(3, 4, 9, 9, dtype=dtype)
    before = layer(x)
    alpha = torch.logspace(-3, 3, 6, dtype=dtype).view(-1, 1, 1, 1)
    with torch.no_grad():
        layer.weight.mul_(alpha)
    torch.testing.assert_close(layer(x), before, rtol=1e-6 if dtype == torch.float64 else 2e-5, atol=1e-6)


# 8 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_preconditioner_is_detached(path):
    _, layer = make(3, 4, 3, 1, 1, algorithm=path, affine=False)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    target = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    (layer(x) * target).sum().backward()
    grad = layer.weight.grad.clone()
    layer.weight.grad = None
    fixed_v = layer.current_V(layer.grid(6, 6)).clone()
    (layer.normalize(x, fixed_v)[0] * target).sum().backward()
    torch.testing.assert_close(grad, layer.weight.grad, rtol=0, atol=1e-12)
    # a non-detached, scale-invariant V would make every <dL/dw_c, w_c> vanish
    radial = (grad * layer.weight.detach()).flatten(1).sum(1)
    assert radial.abs().max() > 1e-3


# 9 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_batch_independence(path):
    _, layer = make(3, 4, 4, 2, 1, algorithm=path)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    out = layer(x)[0]
    x[1:] = torch.randn(3, 3, 8, 8, dtype=torch.float64) * 10
    torch.testing.assert_close(layer(x)[0], out, rtol=0, atol=1e-12)
    torch.testing.assert_close(layer(x[:1])[0], out, rtol=0, atol=1e-12)


# 10 ------------------------------------------------------------------------------------------------------------
def test_ema_schedule():
    for t in (1, 7, 20000, 39999, 40000, 50000):  # the on-device form agrees with the Python one
        assert ema_factor(torch.tensor(t), 40000, None).item() == pytest.approx(ema_factor(t, 40000, None), abs=1e-12)
    assert ema_factor(1, 40000, None) == pytest.approx(1.0, abs=1e-8)
    assert ema_factor(20000, 40000, None) == pytest.approx(0.5)
    assert ema_factor(40000, 40000, None) == 0.01
    assert ema_factor(10**6, 40000, None) == 0.01
    assert ema_factor(5, 40000, 0.3) == 0.3


@pytest.mark.parametrize("path", PATHS)
def test_running_V_follows_training_and_is_used_in_eval(path):
    _, layer = make(3, 4, 3, 1, 1, algorithm=path, ema_horizon=4)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    grid = layer.grid(6, 6)
    layer.train()
    layer(x)
    assert int(layer.num_steps) == 1
    torch.testing.assert_close(layer.running_V, onesided_to_full(layer.current_V(grid), grid[1]), rtol=1e-8, atol=0)
    expected = layer.running_V.clone()
    for step in range(2, 7):  # change the weights between forwards and follow the EMA by hand
        with torch.no_grad():
            layer.weight.add_(0.3 * torch.randn_like(layer.weight))
        layer(x)
        f = ema_factor(step, 4, None)
        expected = f * onesided_to_full(layer.current_V(grid), grid[1]) + (1 - f) * expected
    torch.testing.assert_close(layer.running_V, expected, rtol=1e-10, atol=0)
    layer.eval()
    with torch.no_grad():
        out = layer(x)
        eval_z, _ = layer.normalize(x, expected[..., : grid[1] // 2 + 1])
        assert int(layer.num_steps) == 6  # eval forwards do not advance the counter
    torch.testing.assert_close(out, layer._affine(eval_z), rtol=0, atol=1e-12)
    train_z, _ = layer.normalize(x)
    assert not torch.allclose(eval_z, train_z, atol=1e-6)


def test_eval_before_any_training_uses_current_weights():
    _, layer = make(3, 4, 3, 1, 1)
    layer.eval()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(layer(x), layer._affine(layer.normalize(x)[0]))
    assert layer.running_V.numel() == 0


def test_eval_at_another_resolution_resamples_running_V():
    _, layer = make(3, 4, 3, 1, 1)
    layer(torch.randn(2, 3, 8, 8, dtype=torch.float64))  # running_V on the 10 x 10 grid
    layer.eval()
    x = torch.randn(2, 3, 18, 18, dtype=torch.float64)  # 20 x 20 grid: every other frequency is a trained one
    grid = layer.grid(18, 18)
    v = resample_frequency_response(layer.running_V, grid)
    torch.testing.assert_close(v[:, ::2, ::2], layer.running_V, rtol=0, atol=1e-12)
    torch.testing.assert_close(v, v[:, (-torch.arange(20)) % 20][:, :, (-torch.arange(20)) % 20])  # V(-f) = V(f)
    out = layer(x)
    torch.testing.assert_close(out, layer._affine(layer.normalize(x, v[..., : grid[1] // 2 + 1])[0]))
    # with unchanged weights the resampled V is close to the exact one at the new resolution
    exact = layer._affine(layer.normalize(x)[0])
    assert ((out - exact).norm() / exact.norm()).item() < 0.1


# 11 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, (1, 3), (4, 1)])
def test_affine_kernel_keeps_spatial_size(k):
    _, layer = make(3, 4, k, affine=True)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    assert layer(x).shape[-2:] == layer.normalize(x)[0].shape[-2:]


# 12 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_kernel_gives_finite_output(path, dtype):
    _, layer = make(3, 4, 3, 1, 1, algorithm=path, dtype=dtype, affine=False)
    with torch.no_grad():
        layer.weight[1] = 0
    x = torch.randn(2, 3, 6, 6, dtype=dtype, requires_grad=True)
    out = layer(x)
    assert torch.isfinite(out).all() and out[:, 1].abs().max() == 0
    out.sum().backward()
    assert torch.isfinite(layer.weight.grad).all() and torch.isfinite(x.grad).all()
    assert torch.isfinite(layer.running_V).all()


# 13 ------------------------------------------------------------------------------------------------------------
def test_convnorm_lowers_the_spectral_norm_of_kaiming_convs():
    raw, normalized = [], []
    for seed in range(4):
        torch.manual_seed(seed)
        conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False)
        torch.nn.init.kaiming_normal_(conv.weight)
        raw.append(conv_spectral_norm(conv.weight, (18, 18)))
        normalized.append(convnorm_spectral_norm(ConvNorm2d.from_conv(conv, affine=False), (16, 16)))
    assert all(n < r for n, r in zip(normalized, raw))
    assert 1.8 < sum(normalized) / 4 < 2.2 and 2.7 < sum(raw) / 4 < 3.1


# every algorithm == the reference path --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-4)])
@pytest.mark.parametrize("seed", range(6))
def test_every_algorithm_matches_reference_outputs_and_gradients(dtype, tol, seed):
    gen = torch.Generator().manual_seed(seed)

    def pick(options):
        return options[torch.randint(len(options), (1,), generator=gen).item()]

    k = pick([1, 2, 3, 4, 5, (1, 3), (3, 2)])
    kh, kw = (k, k) if isinstance(k, int) else k
    padding = (pick(range(kh)), pick(range(kw)))
    stride, groups, dilation = pick([1, 2, (2, 1)]), pick([1, 2]), pick([1, 1, 2])
    c_in, c_out = 2 * pick([1, 2, 3]), 2 * pick([1, 2])
    size = (pick([5, 8, 9]) + 4, pick([6, 7]) + 4)
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(
        c_in, c_out, k, stride=stride, padding=tuple(d * p for d, p in zip((dilation,) * 2, padding)),
        dilation=dilation, groups=groups, bias=bool(seed % 2),
    ).to(dtype)
    layers = {p: ConvNorm2d.from_conv(conv, algorithm=p).to(dtype) for p in PATHS}
    for layer in layers.values():
        layer.load_state_dict(layers["reference"].state_dict())
    x = torch.randn(3, c_in, *size, dtype=dtype)
    target = torch.randn_like(layers["reference"](x))
    results = {}
    for path, layer in layers.items():
        xi = x.clone().requires_grad_()
        out = layer(xi)
        (out * target).sum().backward()
        results[path] = (out, xi.grad, layer.weight.grad, layer.affine_weight.grad)
    for path in PATHS:
        for a, b in zip(results[path], results["reference"]):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol * b.abs().max().item())


# dilation ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_dilation_is_the_conv_with_a_dilated_kernel(path):
    conv = torch.nn.Conv2d(3, 4, 3, padding=2, dilation=2, bias=False).double()
    layer = ConvNorm2d.from_conv(conv, algorithm=path).double()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    ones = torch.ones_like(layer.current_V(layer.grid(9, 9)))
    torch.testing.assert_close(layer.normalize(x, ones)[0], conv(x), rtol=0, atol=1e-12)
    assert layer.grid(9, 9) == (13, 13)


# state --------------------------------------------------------------------------------------------------------------
def test_state_dict_round_trip_continues_identically(tmp_path):
    _, layer = make(3, 4, 4, 2, 1, dtype=torch.float32, ema_horizon=10)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    xs = [torch.randn(2, 3, 8, 8) for _ in range(6)]

    def step(layer, opt, x):
        opt.zero_grad()
        layer(x).square().mean().backward()
        opt.step()

    for x in xs[:3]:
        step(layer, opt, x)
    torch.save({"layer": layer.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    fresh = ConvNorm2d(3, 4, 4, stride=2, padding=1, ema_horizon=10)
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1)
    saved = torch.load(tmp_path / "ckpt.pt")
    fresh.load_state_dict(saved["layer"])
    fresh_opt.load_state_dict(saved["opt"])
    assert int(fresh.num_steps) == 3 and fresh.running_V.shape == layer.running_V.shape
    for x in xs[3:]:
        step(layer, opt, x)
        step(fresh, fresh_opt, x)
    for (name, a), b in zip(layer.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    layer.eval(), fresh.eval()
    assert torch.equal(layer(xs[0]), fresh(xs[0]))


# mixed precision ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_autocast_runs_fourier_work_in_float32_and_returns_autocast_dtype(path):
    _, layer = make(3, 4, 4, 2, 1, dtype=torch.float32, algorithm=path)
    x = torch.randn(2, 3, 8, 8)
    expected = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, rtol=1e-2, atol=1e-2)
    out.float().sum().backward()
    assert layer.weight.grad.dtype == torch.float32 and torch.isfinite(layer.weight.grad).all()


@pytest.mark.parametrize("path", PATHS)
def test_autocast_leaves_float64_alone_as_it_does_for_conv2d(path):
    conv, layer = make(3, 4, 3, padding=1, algorithm=path)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    expected = layer(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(x).dtype == torch.float64
        torch.testing.assert_close(layer(x), expected, rtol=0, atol=0)


# argument errors ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"padding_mode": "reflect"}, "padding_mode"),
        ({"padding": 3}, "padding"),
        ({"groups": 2, "in_channels": 3}, "divisible"),
        ({"algorithm": "dense"}, "algorithm"),
        ({"momentum": 1.5}, "momentum"),
        ({"kernel_size": (3, 3, 3)}, "kernel_size"),
        ({"groups": 0}, "groups=0"),
        ({"ema_horizon": 0}, "ema_horizon=0"),
    ],
)
def test_refused_arguments_raise_clear_errors(kwargs, match):
    args = {"in_channels": 4, "out_channels": 4, "kernel_size": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        ConvNorm2d(**args)


def test_from_conv_takes_over_weight_bias_and_settings():
    conv = torch.nn.Conv2d(4, 6, (3, 1), stride=(2, 1), padding=(1, 0), groups=2, bias=True)
    layer = ConvNorm2d.from_conv(conv)
    assert torch.equal(layer.weight, conv.weight) and torch.equal(layer.bias, conv.bias)
    assert (layer.kernel_size, layer.stride, layer.padding, layer.groups) == ((3, 1), (2, 1), (1, 0), 2)
    with pytest.raises(ValueError, match="padding='same'"):
        ConvNorm2d.from_conv(torch.nn.Conv2d(4, 4, 3, padding="same"))


def test_wrong_input_channels_is_a_clear_error():
    layer = ConvNorm2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        layer(torch.randn(2, 5, 8, 8))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("affine", [True, False])
def test_input_smaller_than_the_kernel_is_a_clear_error(path, affine):
    layer = ConvNorm2d(2, 3, 3, algorithm=path, affine=affine)
    with pytest.raises(ValueError, match="input height 2 with padding 0 is smaller than the kernel's extent 3"):
        layer(torch.randn(1, 2, 2, 5))
    dilated = ConvNorm2d(2, 3, 3, padding=1, dilation=2, algorithm=path, affine=affine)
    with pytest.raises(ValueError, match="input width 2 with padding 1 is smaller than the kernel's extent 5"):
        dilated(torch.randn(1, 2, 5, 2))
    assert dilated(torch.randn(1, 2, 3, 3)).shape == (1, 3, 1, 1)  # the smallest input that fits


@pytest.mark.parametrize("path", PATHS)
def test_a_forward_under_inference_mode_leaves_later_training_intact(path):
    """Nothing made under torch.inference_mode() may be kept for training: not V of the weights (an eval forward
    before any training computes it), not the process-wide plans (cleared first, so they are built here, under
    inference mode)."""
    fourier.clear_plans()
    def grads(layer, x, penalty=False):
        x = x.clone().requires_grad_(True)
        out = layer(x)
        if penalty:  # a gradient penalty's double backward
            (gx,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
            return torch.autograd.grad(gx.square().sum(), (x, layer.weight))
        return torch.autograd.grad(out.square().sum(), (x, layer.weight))

    _, layer = make(3, 4, (2, 3), stride=(2, 1), padding=(1, 1), algorithm=path)
    fresh = type(layer)(3, 4, (2, 3), stride=(2, 1), padding=(1, 1), algorithm=path).double()
    fresh.load_state_dict(layer.state_dict())
    x, y = torch.randn(2, 3, 11, 13, dtype=torch.float64), torch.randn(2, 3, 9, 7, dtype=torch.float64)
    layer.eval()
    with torch.inference_mode():
        layer(x)  # before any training: V of the current weights
    layer.train()
    for a, b in zip(grads(layer, x), grads(fresh, x)):
        torch.testing.assert_close(a, b)
    layer.eval()
    with torch.inference_mode():
        layer(y)  # another size, after training: running_V resampled, plans of a new geometry
    layer.train()
    for penalty in (False, True):
        for a, b in zip(grads(layer, y, penalty), grads(fresh, y, penalty)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("path", PATHS)
def test_an_eval_output_can_be_backpropagated_after_a_later_train_forward(path):
    _, layer = make(3, 4, 3, padding=1, algorithm=path)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    layer(x)  # running_V gets its grid
    layer.eval()
    out = layer(x)
    layer.train()
    layer(x)  # updates running_V in place
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(layer.weight.grad).all()


def test_preconditioner_matches_fast_path_V():
    _, layer = make(6, 4, 4, 2, 1, affine=False)
    x = torch.randn(2, 6, 8, 9, dtype=torch.float64)
    _, v_fast = layer.normalize(x)
    torch.testing.assert_close(v_fast, preconditioner(layer.weight, layer.grid(8, 9), layer.eps), rtol=1e-10, atol=0)


@pytest.mark.parametrize("shape", [(5, 3, 3, 3), (4, 2, 2, 5), (3, 1, 1, 4)])
def test_autocorrelation_sums_each_lags_tap_products_over_input_channels(shape):
    """lags[c, dh + k_h - 1, dw + k_w - 1] = sum over c' and taps t of w[c, c', t + d] * w[c, c', t], written out."""
    torch.manual_seed(0)
    weight = torch.randn(*shape, dtype=torch.float64)
    kh, kw = shape[-2:]
    expected = torch.zeros(shape[0], 2 * kh - 1, 2 * kw - 1, dtype=torch.float64)
    for dh in range(1 - kh, kh):
        for dw in range(1 - kw, kw):
            for th in range(max(0, -dh), min(kh, kh - dh)):
                for tw in range(max(0, -dw), min(kw, kw - dw)):
                    products = weight[:, :, th + dh, tw + dw] * weight[:, :, th, tw]
                    expected[:, dh + kh - 1, dw + kw - 1] += products.sum(1)
    torch.testing.assert_close(autocorrelation(weight), expected, rtol=1e-12, atol=1e-12)


# the GPU backend (cuFFT + complex matmul) computes the same operator; CI has no GPU, so check it on the CPU
@pytest.mark.parametrize("k,p,s,groups", [(3, 1, 1, 1), (4, 1, 2, 1), ((1, 3), (0, 1), (2, 1), 2), (5, 2, 2, 2)])
def test_fft_backend_matches_dft_backend(k, p, s, groups):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, k, stride=s, padding=p, groups=groups, bias=True).double()
    x = torch.randn(3, 4, 9, 8, dtype=torch.float64, requires_grad=True)
    results = []
    for backend in ("dft", "fft"):
        z, v = fourier_convnorm(
            x, conv.weight, conv.bias, None, 1e-12, _pair(p, "padding"), _pair(s, "stride"), groups, backend=backend
        )
        results.append((z, v, *torch.autograd.grad(z.square().sum(), (x, conv.weight))))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("grid", [(10, 10), (9, 9), (10, 7), (7, 12)])
def test_onesided_to_full_matches_the_two_sided_spectrum(grid):
    torch.manual_seed(0)
    weight = torch.randn(4, 3, 3, 2, dtype=torch.float64)
    full = torch.fft.fft2(weight, s=grid).abs().square().sum(1)  # every frequency, no symmetry assumed
    torch.testing.assert_close(onesided_to_full(full[..., : grid[1] // 2 + 1], grid[1]), full, rtol=1e-12, atol=0)


# algorithms and their dispatch ----------------------------------------------------------------------------------
DISPATCH_CASES = [  # kernel, padding, stride, groups, dilation, input size: strided, 1x1, 1xk, grouped, dilated, kx1
    (3, 1, 1, 1, 1, (9, 8)), (4, 1, 2, 1, 1, (8, 9)), (1, 0, 2, 1, 1, (7, 7)), ((1, 3), (0, 1), (2, 1), 2, 1, (9, 9)),
    (3, 2, 1, 2, 2, (10, 11)), (5, 2, 2, 1, 1, (11, 10)), (4, 2, 2, 1, 1, (3, 3)),
    ((3, 1), (1, 0), (1, 2), 1, 1, (5, 9)),  # strided along the width only
]


@pytest.mark.parametrize("choice", CHOICES, ids=choice_name)
@pytest.mark.parametrize("k,p,s,groups,dilation,size", DISPATCH_CASES)
def test_every_choice_equals_the_reference_in_float64(choice, k, p, s, groups, dilation, size):
    torch.manual_seed(0)
    padding = tuple(dilation * q for q in _pair(p, "padding"))
    conv = torch.nn.Conv2d(4, 6, k, stride=s, padding=padding, dilation=dilation, groups=groups, bias=True).double()
    layer = ConvNorm2d.from_conv(conv).double()
    x = torch.randn(3, 4, *size, dtype=torch.float64, requires_grad=True)
    results = []
    for c in (("reference", None), choice):
        z, v = layer.normalize(x, choice=c)
        target = torch.linspace(-1, 1, z.numel(), dtype=torch.float64).view_as(z)
        results.append((z, v, *torch.autograd.grad((z * target).sum(), (x, layer.weight))))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("inverse", INVERSES)
@pytest.mark.parametrize("k,p,s,groups,dilation,size", DISPATCH_CASES)
def test_both_inverses_of_the_spatial_path_equal_the_reference(inverse, k, p, s, groups, dilation, size):
    """The spatial path's inverse (irfft2 on the whole grid, or DFT products at the kept pixels only, its default
    when strided) is an internal choice: both must give the reference's outputs and gradients."""
    torch.manual_seed(0)
    padding = tuple(dilation * q for q in _pair(p, "padding"))
    conv = torch.nn.Conv2d(4, 6, k, stride=s, padding=padding, dilation=dilation, groups=groups, bias=True).double()
    layer = ConvNorm2d.from_conv(conv).double()
    weight = dilate_kernel(layer.weight, layer.dilation)
    x = torch.randn(3, 4, *size, dtype=torch.float64, requires_grad=True)
    results = []
    for run in (lambda: layer.normalize(x, choice=("reference", None)),
                lambda: spatial_convnorm(x, weight, layer.bias, None, layer.eps, layer.padding, layer.stride, groups,
                                         inverse=inverse)):
        z, v = run()
        target = torch.linspace(-1, 1, z.numel(), dtype=torch.float64).view_as(z)
        results.append((z, v, *torch.autograd.grad((z * target).sum(), (x, layer.weight))))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rows_per_block", [1, 2])
@pytest.mark.parametrize("batch", [1, 5])  # below and above C_in/G: V scales the output, or the weight spectrum
@pytest.mark.parametrize("k,p,s,groups,dilation,size", DISPATCH_CASES)
def test_the_fast_paths_product_in_row_blocks_equals_the_reference(k, p, s, groups, dilation, size, batch,
                                                                   rows_per_block, monkeypatch):
    """On a CPU the fast path builds and uses its weight spectrum a few frequency rows at a time (an internal
    choice sized by ``BLOCK_ELEMENTS``): in blocks of one or two rows (the last one shorter where N_h is odd) it
    must still give the reference's outputs, V, gradients and double backward, and with V given (eval mode) too."""
    torch.manual_seed(0)
    padding = tuple(dilation * q for q in _pair(p, "padding"))
    conv = torch.nn.Conv2d(4, 6, k, stride=s, padding=padding, dilation=dilation, groups=groups, bias=True).double()
    layer = ConvNorm2d.from_conv(conv).double()
    kernel = dilate_kernel(layer.weight, layer.dilation).shape[-2:]
    n_h, n_w = size[0] + kernel[0] - 1, size[1] + kernel[1] - 1
    row_elements = (n_w // 2 + 1) * (4 // groups) * 6  # N_f G (Ci/G) (Co/G)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    monkeypatch.setattr(fourier, "BLOCK_ELEMENTS", rows_per_block * row_elements)
    assert fourier._row_blocks(n_h, row_elements, torch.device("cpu"))[0] == min(rows_per_block, n_h)
    x = torch.randn(batch, 4, *size, dtype=torch.float64, requires_grad=True)
    results = []
    for c in (("reference", None), ("fast", "dft")):
        z, v = layer.normalize(x, choice=c)
        (gx,) = torch.autograd.grad(z.square().sum(), x, create_graph=True)
        results.append((z, v, gx, *torch.autograd.grad(gx.square().sum(), (x, layer.weight))))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    given_v = onesided_to_full(results[0][1], n_w)[..., : n_w // 2 + 1]  # as eval mode passes it: a strided view
    outputs = []
    for backend in ("fft", "dft"):
        weight = dilate_kernel(layer.weight, layer.dilation)
        z, _ = fourier_convnorm(x, weight, layer.bias, given_v, layer.eps, layer.padding, layer.stride, groups,
                                backend=backend)
        outputs.append((z, *torch.autograd.grad(z.square().sum(), (x, layer.weight))))
    for a, b in zip(*outputs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_row_blocks_cover_every_row_once_in_blocks_of_the_set_size_per_thread(monkeypatch):
    monkeypatch.setattr(fourier, "BLOCK_ELEMENTS", 10)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert fourier._row_blocks(7, 10, torch.device("cpu")) == [2, 2, 2, 1]  # 10 values a thread, 2 threads: 2 rows
    assert fourier._row_blocks(7, 100, torch.device("cpu")) == [1] * 7  # at least a row a block
    assert fourier._row_blocks(7, 10, torch.device("cuda")) == [7]  # a GPU takes the grid at once
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert fourier._row_blocks(7, 10, torch.device("cpu")) == [7]  # and so does torch.compile


@pytest.mark.parametrize("choice", [c for c in CHOICES if c[0] != "reference"], ids=choice_name)
@pytest.mark.parametrize("k,p,s,groups,dilation,size", DISPATCH_CASES)
def test_every_choice_has_the_references_double_backward(choice, k, p, s, groups, dilation, size):
    """A gradient penalty (R1, WGAN-GP) differentiates D's input gradient again: every algorithm must support it
    (here with a batch of one, which the algorithms' layouts interleave with rows)."""
    torch.manual_seed(0)
    padding = tuple(dilation * q for q in _pair(p, "padding"))
    conv = torch.nn.Conv2d(4, 6, k, stride=s, padding=padding, dilation=dilation, groups=groups).double()
    layer = ConvNorm2d.from_conv(conv).double()
    x = torch.randn(1, 4, *size, dtype=torch.float64, requires_grad=True)
    results = []
    for c in (("reference", None), choice):
        z, _ = layer.normalize(x, choice=c)
        (gx,) = torch.autograd.grad(z.square().sum(), x, create_graph=True)
        results.append(torch.autograd.grad(gx.square().sum(), (x, layer.weight)))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


class Timings:
    """Counts the dispatch's timings (``dispatch.fastest``) and makes it pick ``winner`` (a CHOICES entry)."""

    def __init__(self, monkeypatch, winner=("spatial", None)):
        self.count, self.winner = 0, winner
        monkeypatch.setattr(dispatch, "MIN_TIMED_MACS", 0)  # time even these tiny layers
        monkeypatch.setattr(dispatch, "_winners", {})

        def fastest(key, runs, device):
            self.count += 1
            for run in runs:  # every candidate runs, as in a real timing
                run()
            dispatch._winners[key] = key[-1].index(self.winner)
            return dispatch._winners[key]

        monkeypatch.setattr(dispatch, "fastest", fastest)


def test_dispatch_times_each_new_input_shape_once(monkeypatch):
    timings = Timings(monkeypatch)
    _, layer = make(3, 4, 3, 1, 1)
    for shape, count in [((2, 8, 8), 1), ((2, 8, 8), 1), ((2, 8, 9), 2), ((3, 8, 9), 3), ((2, 8, 8), 3)]:
        layer(torch.randn(shape[0], 3, *shape[1:], dtype=torch.float64))
        assert timings.count == count, shape
    layer.float()(torch.randn(2, 3, 8, 8))  # another dtype is another key
    assert timings.count == 4
    layer.eval()(torch.randn(5, 3, 8, 8))  # eval never times: the default for an unseen shape
    assert timings.count == 4 and layer.choice(torch.randn(5, 3, 8, 8)) == layer.candidates(torch.device("cpu"))[0]
    assert [CHOICES[i] for i in layer.algorithm_choices[:, -1].tolist()] == [("spatial", None)] * 4
    _, twin = make(3, 4, 3, 1, 1, seed=1)  # the same geometry and input: the process's timing is reused, and recorded
    twin(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    assert timings.count == 4 and twin.choice(torch.randn(2, 3, 8, 8, dtype=torch.float64)) == ("spatial", None)


def test_dispatch_skips_what_it_cannot_time(monkeypatch):
    timings = Timings(monkeypatch)
    _, layer = make(3, 4, 3, 1, 1)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    monkeypatch.setattr(dispatch, "MIN_TIMED_MACS", 10**9)
    layer(x)  # too small to time reliably
    torch.use_deterministic_algorithms(True)
    try:
        monkeypatch.setattr(dispatch, "MIN_TIMED_MACS", 0)
        layer(x)  # deterministic mode: the same numbers run to run
    finally:
        torch.use_deterministic_algorithms(False)
    assert timings.count == 0 and layer.algorithm_choices.shape == (0, 6)
    assert layer.choice(x) == layer.candidates(x.device)[0]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_forced_algorithms_are_used_and_never_timed(algorithm, monkeypatch):
    timings = Timings(monkeypatch)
    used = []
    for name, fn in ALGORITHMS.items():
        monkeypatch.setitem(ALGORITHMS, name, lambda *a, _fn=fn, _name=name, **kw: used.append(_name) or _fn(*a, **kw))
    _, layer = make(3, 4, 3, 1, 1, algorithm=algorithm)
    layer(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    layer.eval()(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    assert set(used) == {algorithm} and timings.count == 0
    assert f"algorithm={algorithm}" in repr(layer)


def test_unknown_algorithm_names_the_valid_ones():
    with pytest.raises(ValueError, match="algorithm='cudnn'.*'auto'.*" + ".*".join(ALGORITHMS)):
        ConvNorm2d(3, 4, 3, algorithm="cudnn")


def train_steps(layer, opt, xs):
    for x in xs:
        opt.zero_grad()
        layer(x).square().mean().backward()
        opt.step()


def test_timing_has_no_side_effects_even_through_spectral_norm(monkeypatch):
    Timings(monkeypatch)
    xs = [torch.randn(2, 3, 8, 8, dtype=torch.float64) for _ in range(3)]
    layers = {}
    for algorithm in ("auto", "spatial"):
        torch.manual_seed(0)
        layer = spectral_norm(ConvNorm2d(3, 4, 3, padding=1, algorithm=algorithm).double())
        train_steps(layer, torch.optim.SGD(layer.parameters(), lr=0.1), xs)
        layers[algorithm] = layer
    for (name, a), b in zip(layers["auto"].state_dict().items(), layers["spatial"].state_dict().values()):
        assert name == "algorithm_choices" or torch.equal(a, b), name


def test_every_algorithm_is_a_candidate_on_a_gpu_all_but_the_reference_on_a_cpu_and_choice_indices_are_stable():
    layer = ConvNorm2d(3, 4, 3)
    assert {a for a, _ in layer.candidates(torch.device("cpu"))} == set(ALGORITHMS) - {"reference"}
    assert set(layer.candidates(torch.device("cuda"))) == set(CHOICES)  # only the device's type is read
    assert set(ConvNorm2d(3, 4, 3, backend="dft").candidates(torch.device("cuda"))) == set(CHOICES) - {("fast", "fft")}
    # checkpoints store indices into CHOICES: those written by release 0.2 must keep their meaning
    assert CHOICES[:4] == (("fast", "dft"), ("fast", "fft"), ("spatial", None), ("reference", None))


@pytest.mark.parametrize("winner", ConvNorm2d(3, 4, 3).candidates(torch.device("cpu"))[1:], ids=choice_name)
def test_checkpoint_of_a_dispatched_layer_continues_bit_identically(winner, tmp_path, monkeypatch):
    timings = Timings(monkeypatch, winner)  # a candidate the default (untimed) choice is not
    _, layer = make(3, 4, 4, 2, 1, dtype=torch.float32, ema_horizon=10)
    opt = torch.optim.Adam(layer.parameters(), lr=0.01)
    xs = [torch.randn(2, 3, 8, 8) for _ in range(6)]
    train_steps(layer, opt, xs[:3])
    torch.save({"layer": layer.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    monkeypatch.setattr(dispatch, "_winners", {})  # a new process: only the checkpoint knows the choice
    fresh = ConvNorm2d(3, 4, 4, stride=2, padding=1, ema_horizon=10)
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=0.01)
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    fresh.load_state_dict(saved["layer"])
    fresh_opt.load_state_dict(saved["opt"])
    assert fresh.choice(xs[0]) == winner != fresh.candidates(xs[0].device)[0]
    for x in xs[3:]:
        train_steps(layer, opt, [x])
        train_steps(fresh, fresh_opt, [x])
    assert timings.count == 1
    for (name, a), b in zip(layer.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name


def test_checkpoints_from_before_the_dispatch_still_load():
    _, layer = make(3, 4, 3, 1, 1)
    old = {k: v for k, v in layer.state_dict().items() if k != "algorithm_choices"}
    fresh = ConvNorm2d(3, 4, 3, padding=1).double()
    fresh.load_state_dict(old)
    assert fresh.algorithm_choices.shape == (0, 6)


def test_real_timing_records_one_of_the_candidates(monkeypatch):
    monkeypatch.setattr(dispatch, "MIN_TIMED_MACS", 0)
    monkeypatch.setattr(dispatch, "_winners", {})
    _, layer = make(3, 4, 4, 2, 1)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    layer(x)
    (row,) = layer.algorithm_choices.tolist()
    assert row[:-1] == [2, 8, 8, 64, 0]  # batch, height, width, float bits, on a GPU
    assert layer.choice(x) == CHOICES[row[-1]] and layer.choice(x) in layer.candidates(x.device)


def test_the_model_config_forces_an_algorithm_on_every_layer():
    from gan.errors import UserError
    from gan.models import build_discriminator

    d = build_discriminator("cnn", 16, 1, "convnorm", 4, {"algorithm": "spatial"})
    assert {m.algorithm for m in d.modules() if isinstance(m, ConvNorm2d)} == {"spatial"}
    with pytest.raises(UserError, match="algorithm='fastest'.*" + ".*".join(ALGORITHMS)):
        build_discriminator("cnn", 16, 1, "convnorm", 4, {"algorithm": "fastest"})


def test_the_dispatch_keeps_the_default_unless_another_is_clearly_quicker(monkeypatch):
    """Each candidate counts by its quickest run (interference only adds time), and the first candidate (the
    untimed default) stays unless another beats it by more than dispatch.MARGIN."""
    clock = [0.0]
    monkeypatch.setattr(dispatch.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(dispatch, "_winners", {})

    def run_taking(*seconds):  # the warm-up, then one duration per timed run
        durations = iter((1.0, *seconds))
        return lambda: clock.__setitem__(0, clock[0] + next(durations))

    def pick(*candidates):
        return dispatch.fastest(object(), [run_taking(*c) for c in candidates], torch.device("cpu"))

    runs = dispatch.REPEATS
    assert pick([1.0] * runs, [0.5] * runs) == 1
    assert pick([1.0] * runs, [1.0 / dispatch.MARGIN * 1.01] * runs) == 0  # a near tie keeps the default
    assert pick([1.0] * runs, [0.5] + [9.0] * (runs - 1)) == 1  # hiccups in most runs of the quicker one
    assert pick([1.0] * runs, [1.2] * runs, [0.7] * runs) == 2
