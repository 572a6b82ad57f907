"""ConvNorm2d's variants (affine_init, bn) and how a model config selects them."""

import pytest
import torch
import torch.nn.functional as F

from gan.errors import UserError
from gan.layers.convnorm import ConvNorm2d
from gan.layers.spectrum import convnorm_spectral_norm
from gan.models import build_discriminator


@pytest.mark.parametrize("k,p,s", [(3, 1, 1), (4, 1, 2), (1, 0, 1), (5, 2, 2)])
def test_identity_affine_starts_as_the_bare_isometry(k, p, s):
    torch.manual_seed(0)
    layer = ConvNorm2d(3, 5, k, stride=s, padding=p, affine_init="identity").double()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    z, _ = layer.normalize(x)  # steps 1-4 without the affine kernel
    assert torch.equal(layer.affine_bias, torch.zeros(5, dtype=torch.float64))
    assert torch.allclose(layer(x), z, atol=1e-12)


def test_random_affine_is_the_authors_default_init():
    torch.manual_seed(0)
    layer = ConvNorm2d(8, 16, 3)
    bound = 1 / 3  # PyTorch's default conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 3 * 3
    assert layer.affine_init == "random"
    assert layer.affine_weight.abs().max() <= bound and layer.affine_weight.std() > 0.1
    assert layer.affine_bias.abs().max() <= bound and layer.affine_bias.abs().max() > 0.05


def test_bn_normalises_the_affine_output_with_batch_statistics():
    torch.manual_seed(0)
    plain = ConvNorm2d(3, 4, 3, padding=1)
    with_bn = ConvNorm2d(3, 4, 3, padding=1, bn=True)
    with_bn.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(6, 3, 8, 8)
    expected = F.batch_norm(plain(x), None, None, training=True, eps=1e-5)
    assert torch.allclose(with_bn(x), expected, atol=1e-5)
    out = with_bn(x)  # batch statistics: one sample's output depends on the others
    changed = x.clone()
    changed[1:] += 1.0
    assert not torch.allclose(with_bn(changed)[0], out[0])
    with_bn.eval()  # eval: running statistics, batch independent again
    assert torch.allclose(with_bn(changed)[:1], with_bn(x[:1]), atol=1e-6)


def test_bn_scale_enters_the_spectral_norm():
    torch.manual_seed(0)
    layer = ConvNorm2d(4, 6, 3, padding=1, bn=True).eval()
    without = ConvNorm2d(4, 6, 3, padding=1)
    without.load_state_dict(layer.state_dict(), strict=False)
    with torch.no_grad():
        layer.bn.weight.fill_(2.0)
        layer.bn.running_var.fill_(1.0 - layer.bn.eps)  # eval scale exactly 2 per channel
    assert convnorm_spectral_norm(layer, (8, 8)) == pytest.approx(2 * convnorm_spectral_norm(without, (8, 8)), rel=1e-6)


@pytest.mark.parametrize("norm", ["convnorm", "convnorm+spectral"])
def test_discriminator_takes_the_variant_from_the_config(norm):
    d = build_discriminator("cnn", 16, 1, norm, 4, {"affine_init": "identity", "bn": True})
    layers = [m for m in d.modules() if isinstance(m, ConvNorm2d)]
    assert len(layers) == 7
    for layer in layers:
        kh, kw = layer.kernel_size
        assert layer.bn is not None and layer.affine_weight[:, 0, (kh - 1) // 2, (kw - 1) // 2].eq(1).all()
        assert layer.affine_weight.abs().sum() == layer.out_channels  # one tap per channel
    plain = build_discriminator("cnn", 16, 1, norm, 4)
    assert all(m.bn is None and m.affine_init == "random" for m in plain.modules() if isinstance(m, ConvNorm2d))


@pytest.mark.parametrize("options,message", [
    ({"affine_init": "zeros"}, "affine_init='zeros'"),
    ({"batchnorm": True}, "unknown option(s) batchnorm"),
])
def test_bad_variant_is_a_clear_error(options, message, tiny_gan_factory):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_gan_factory(norm="convnorm", convnorm=options)


@pytest.mark.parametrize("options,g_step_batch", [(None, 4), ({"bn": True}, 8)])
def test_g_step_scores_fakes_beside_reals_only_when_d_has_batch_statistics(options, g_step_batch, tiny_gan_factory):
    model = tiny_gan_factory(norm="convnorm", convnorm=options, n_dis=1)
    seen = []
    model.discriminator.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape[0]))
    real = torch.randn(4, 1, 8, 8)
    fake = model.generator(model.sample_z(4))
    logits = model.steps.score_fakes(fake, None, real, None)
    assert logits.shape == (4,) and seen == [g_step_batch]
    if options:  # the fakes' logits are the fake half of D's real+fake batch
        assert torch.allclose(logits, model.discriminator(torch.cat([real, fake]))[4:])


def test_backend_option_forces_the_fast_paths_transforms():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    layers = {b: ConvNorm2d(3, 4, 4, stride=2, padding=1, backend=b).double() for b in ("fft", "dft")}
    layers["dft"].load_state_dict(layers["fft"].state_dict())
    assert torch.allclose(layers["fft"](x), layers["dft"](x), atol=1e-12)
    d = build_discriminator("cnn", 16, 1, "convnorm", 4, {"backend": "dft"})
    assert {m.backend for m in d.modules() if isinstance(m, ConvNorm2d)} == {"dft"}
    with pytest.raises(ValueError, match="backend='cufft'"):
        ConvNorm2d(3, 4, 3, backend="cufft")
