"""Every architecture x norm: shapes, the norm applied where it should be, one training step with finite grads."""

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gan.errors import UserError
from gan.layers.convnorm import ConvNorm2d
from gan.layers.norms import NORM_KINDS, NORMS
from gan.models import build_discriminator, build_generator, count_parameters
from gan.training.losses import get_loss

# (arch, image size, channels, width): tiny widths keep the suite fast
CASES = [("cnn", 16, 1, 4), ("resnet", 32, 3, 8)]


def _layers(module: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("arch,size,channels,width", CASES)
def test_shapes_and_one_step(arch, size, channels, width, norm):
    torch.manual_seed(0)
    g = build_generator(arch, size, channels, z_dim=16, width=width)
    d = build_discriminator(arch, size, channels, norm=norm, width=width)
    fake = g(torch.randn(4, 16))
    assert fake.shape == (4, channels, size, size)
    assert fake.abs().max() <= 1
    real = torch.rand(4, channels, size, size) * 2 - 1
    d_loss_fn, g_loss_fn = get_loss("hinge")
    logits = d(torch.cat([real, fake.detach()]))
    assert logits.shape == (8,)
    d_loss_fn(*logits.split(4)).backward()
    g_loss_fn(d(g(torch.randn(4, 16)))).backward()
    for module in (g, d):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(gr is not None and torch.isfinite(gr).all() for gr in grads)
        assert any(gr.abs().sum() > 0 for gr in grads)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_norm_reaches_every_conv_and_only_d(arch, norm):
    d = build_discriminator(arch, 32, 3, norm=norm, width=8)
    convnorms, convs = _layers(d, ConvNorm2d), _layers(d, nn.Conv2d)
    n_conv = 7 if arch == "cnn" else 10  # resnet 32: 3 convs in the first block, 3 + 2 + 2 in the DBlocks
    if NORM_KINDS[norm].convnorm:
        assert len(convnorms) == n_conv and not convs
    else:
        assert len(convs) == n_conv and not convnorms
    spectral = NORM_KINDS[norm].spectral
    layers = convnorms + convs + _layers(d, nn.Linear)
    assert all(parametrize.is_parametrized(m, "weight") == spectral for m in layers)
    g = build_generator(arch, 32, 3, width=8)
    assert not any(parametrize.is_parametrized(m) for m in g.modules())
    assert not _layers(g, ConvNorm2d)


def test_spectral_norm_bounds_linear_and_convnorm_is_scale_free():
    torch.manual_seed(0)
    d = build_discriminator("cnn", 16, 1, norm="spectral", width=4)
    for _ in range(20):  # power iterations converge in train mode
        d(torch.randn(2, 1, 16, 16))
    assert torch.linalg.matrix_norm(d.linear.weight.detach(), ord=2).item() == pytest.approx(1.0, abs=1e-2)
    d = build_discriminator("cnn", 16, 1, norm="convnorm", width=4)
    x = torch.randn(2, 1, 16, 16)
    before = d(x)
    with torch.no_grad():
        for m in _layers(d, ConvNorm2d):  # the bias passes the filter too, so it scales with its channel
            alpha = torch.rand(m.weight.shape[0]) + 0.5
            m.weight.mul_(alpha.view(-1, 1, 1, 1))
            m.bias.mul_(alpha)
    torch.testing.assert_close(d(x), before, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch,size,channels,norm", [
    ("cnn", 8, 3, "convnorm"), ("cnn", 48, 1, "spectral"), ("resnet", 48, 1, "convnorm+spectral"),
    ("resnet", 64, 3, "convnorm"),
])
def test_other_sizes(arch, size, channels, norm):
    g = build_generator(arch, size, channels, z_dim=8, width=16)
    d = build_discriminator(arch, size, channels, norm=norm, width=16)
    with torch.no_grad():
        fake = g(torch.randn(2, 8))
        assert fake.shape == (2, channels, size, size)
        assert d(fake).shape == (2,)


def test_resnet32_parameter_counts_match_sngan():  # about 4.3M in G and 1.06M in D (SNGAN paper, mimicry)
    assert count_parameters(build_generator("resnet", 32, 3)) == pytest.approx(4.3e6, rel=0.01)
    assert count_parameters(build_discriminator("resnet", 32, 3, norm="spectral")) == pytest.approx(1.06e6, rel=0.01)


@pytest.mark.parametrize("call,match", [
    (lambda: build_generator("vgg", 32, 3), "arch='vgg'"),
    (lambda: build_generator("resnet", 40, 3), "image_size=40"),
    (lambda: build_discriminator("cnn", 30, 3), "image_size=30"),
    (lambda: build_discriminator("cnn", 32, 2), "channels=2"),
    (lambda: build_discriminator("cnn", 32, 3, norm="batch"), "norm='batch'"),
    (lambda: build_discriminator("resnet", 48, 3, width=24), "width=24"),
])
def test_bad_model_arguments_name_the_field(call, match):
    with pytest.raises(UserError, match=match):
        call()


def test_cnn_width_scales_every_layer():
    small, big = (count_parameters(build_discriminator("cnn", 32, 3, "none", w)) for w in (8, 16))
    assert math.isclose(big / small, 4, rel_tol=0.1)
