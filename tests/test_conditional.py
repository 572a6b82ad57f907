"""Class-conditional SNGAN: conditional BatchNorm in G, a projection D, labels through training and the monitors, and
the data checks a conditional model needs. Every claim is checked against a construction by hand."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import yaml
from conftest import TINY_DATA, assert_nets_equal
from PIL import Image
from torch import nn

from gan.callbacks.gradients import GradientNormMonitor, input_gradient_norms
from gan.callbacks.samples import SampleGrid, class_grid_inputs
from gan.callbacks.spectral import SpectralNormMonitor
from gan.cli import main
from gan.data import GANDataModule, build_dataset, check_classes, dataset_classes
from gan.errors import UserError
from gan.layers.norms import NORMS
from gan.models import ARCHS, build_discriminator, build_generator
from gan.models.conditional import ConditionalBatchNorm2d
from gan.training.divergence import DivergedError
from gan.training.module import latent_seed

CLASSES = 3


def discriminator(arch: str, norm: str = "none") -> nn.Module:
    torch.manual_seed(0)
    return build_discriminator(arch, 32, 3, norm, 8 if arch == "cnn" else 16, num_classes=CLASSES)


@pytest.mark.parametrize("arch", ARCHS)
def test_projection_logit_is_the_linear_output_plus_the_class_embedding_dotted_with_the_features(arch):
    d = discriminator(arch)
    x, y = torch.randn(5, 3, 32, 32), torch.tensor([0, 2, 1, 2, 0])
    if arch == "cnn":
        phi = d.net(x).flatten(1)  # the flattened last feature map
    else:
        phi = F.relu(d.blocks(x)).sum(dim=(2, 3))  # ReLU, then global sum pool
    w, b, embed = d.linear.weight, d.linear.bias, d.projection.embed.weight
    by_hand = torch.stack([phi[i] @ w[0] + b[0] + phi[i] @ embed[y[i]] for i in range(5)])
    torch.testing.assert_close(d(x, y), by_hand)


@pytest.mark.parametrize("norm", NORMS)
def test_norm_switch_covers_the_embedding_as_it_covers_the_linear_layer(norm):
    d = discriminator("cnn", norm)
    for layer in (d.linear, d.projection.embed):
        assert hasattr(layer, "parametrizations") == ("spectral" in norm)
    if "spectral" in norm:  # the embedding matrix is divided by its largest singular value (power iteration)
        d.train()
        for _ in range(30):
            d(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
        d.eval()
        assert torch.linalg.matrix_norm(d.projection.embed.weight.detach(), ord=2).item() == pytest.approx(1, abs=1e-2)


def test_conditional_batch_norm_with_unit_gains_and_zero_biases_is_affine_free_batch_norm():
    cbn = ConditionalBatchNorm2d(6, 4)  # its initial state: gain 1, bias 0 for every class
    x, y = torch.randn(8, 6, 5, 5), torch.randint(4, (8,))
    torch.testing.assert_close(cbn(x, y), F.batch_norm(x, None, None, training=True, eps=cbn.bn.eps))


def test_conditional_batch_norm_applies_each_samples_own_class_gain_and_bias():
    cbn = ConditionalBatchNorm2d(2, 3)
    with torch.no_grad():
        cbn.gain.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
        cbn.bias.weight.copy_(torch.tensor([[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]]))
    x, y = torch.randn(4, 2, 3, 3), torch.tensor([2, 0, 1, 2])
    normed = F.batch_norm(x, None, None, training=True, eps=cbn.bn.eps)
    expected = torch.stack([normed[i] * cbn.gain.weight[y[i], :, None, None] + cbn.bias.weight[y[i], :, None, None]
                            for i in range(4)])
    torch.testing.assert_close(cbn(x, y), expected)


@pytest.mark.parametrize("arch", ARCHS)
def test_generator_output_depends_on_the_class(arch):
    torch.manual_seed(0)
    g = build_generator(arch, 32, 3, 16, 32 if arch == "cnn" else 64, num_classes=CLASSES).eval()
    with torch.no_grad():
        for bn in (m for m in g.modules() if isinstance(m, ConditionalBatchNorm2d)):
            bn.gain.weight.uniform_(0.5, 1.5)
        z = torch.randn(1, 16).repeat(CLASSES, 1)
        images = g(z, torch.arange(CLASSES))
    assert not torch.allclose(images[0], images[1]) and not torch.allclose(images[1], images[2])


@pytest.mark.parametrize("arch", ARCHS)
def test_unconditional_nets_are_the_plain_ones_and_refuse_labels(arch):
    torch.manual_seed(0)
    g = build_generator(arch, 32, 3, 16, 32 if arch == "cnn" else 64)
    d = build_discriminator(arch, 32, 3, "spectral", 8 if arch == "cnn" else 16)
    assert not any(isinstance(m, nn.Embedding) for net in (g, d) for m in net.modules())
    assert all(m.affine for m in g.modules() if isinstance(m, nn.BatchNorm2d))
    with pytest.raises(ValueError, match="unconditional"):
        d(torch.zeros(1, 3, 32, 32), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="pass labels"):
        discriminator(arch)(torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize("num_classes", [0, -2, 2.5, True])
def test_a_class_count_that_is_not_a_positive_integer_is_refused(num_classes):
    with pytest.raises(UserError, match="num_classes"):
        build_generator("cnn", 32, 3, num_classes=num_classes)


def record_draws(model) -> list[torch.Tensor]:
    """Every latent and label batch the model draws during training, in order (None draws are skipped)."""
    seen = []
    sample_z, sample_labels = model.sample_z, model.sample_labels

    def z(n, generator=None):
        seen.append(sample_z(n, generator))
        return seen[-1]

    def labels(n, generator=None):
        y = sample_labels(n, generator)
        if y is not None:
            seen.append(y)
        return y

    model.sample_z, model.sample_labels = z, labels
    return seen


@pytest.mark.parametrize("num_classes", [None, CLASSES], ids=["unconditional", "conditional"])
def test_each_step_draws_its_latents_then_its_labels_from_one_seeded_stream(num_classes, tiny_gan_factory):
    """Unconditional: exactly the latents drawn before labels existed (so its training is unchanged);
    conditional: each latent batch followed by its uniformly drawn labels, from the same stream."""
    model = tiny_gan_factory(num_classes=num_classes)
    seen = record_draws(model)
    trainer = pl.Trainer(accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(model, datamodule=GANDataModule(**TINY_DATA, num_classes=num_classes))
    batch, expected = TINY_DATA["batch_size"], []
    for step in range(model.hparams.max_g_steps):  # n_dis D steps, then the G step
        stream = torch.Generator().manual_seed(latent_seed(model.hparams.seed, 0, step))
        for _ in range(model.hparams.n_dis + 1):
            expected.append(torch.randn(batch, model.z_dim, generator=stream))
            if num_classes:
                expected.append(torch.randint(num_classes, (batch,), generator=stream))
    assert len(seen) == len(expected)
    for got, want in zip(seen, expected):
        assert torch.equal(got, want)


# ---- data ---------------------------------------------------------------------------------------------------------
def write_images(folder, names: list[str]) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (len(name) * 20 % 256, 0, 0)).save(path)


def test_an_image_folder_with_one_subfolder_per_class_is_labelled_and_a_flat_one_is_not(tmp_path):
    write_images(tmp_path / "classes", ["cat/a.png", "cat/b.png", "dog/c.png", "ant/d/e.png"])
    write_images(tmp_path / "flat", ["a.png", "sub/b.png"])
    labelled = build_dataset("folder", root=str(tmp_path / "classes"), image_size=8)
    assert labelled.classes == ["ant", "cat", "dog"] and dataset_classes(labelled) == 3
    assert [labelled[i][1] for i in range(4)] == [0, 1, 1, 2]  # files sorted by path: ant/d/e, cat/a, cat/b, dog/c
    flat = build_dataset("folder", root=str(tmp_path / "flat"), image_size=8)
    assert dataset_classes(flat) is None and [flat[i][1] for i in range(2)] == [0, 0]


def test_synthetic_data_with_classes_labels_every_image_and_keeps_the_unlabelled_images_without():
    plain = build_dataset("synthetic", image_size=8, channels=1, num_samples=6)
    labelled = build_dataset("synthetic", image_size=8, channels=1, num_samples=6, num_classes=3)
    assert dataset_classes(plain) is None and [plain[i][1] for i in range(6)] == [0] * 6
    assert dataset_classes(labelled) == 3 and [labelled[i][1] for i in range(6)] == [0, 1, 2, 0, 1, 2]
    assert not torch.equal(plain[0][0], labelled[0][0])  # classes shift the brightness (class 0 down)


class Labelled(torch.utils.data.Dataset):
    def __init__(self, classes: int, targets: list[int]) -> None:
        self.classes, self.targets = [str(k) for k in range(classes)], targets

    def __len__(self) -> int:
        return len(self.targets)


def test_class_checks_name_the_problem_in_one_line():
    check_classes(Labelled(3, [0, 1, 2]), 3, "mnist", "train")
    check_classes(Labelled(3, [0, 7]), None, "mnist", "train")  # an unconditional model takes any labels
    cases = [(Labelled(3, [0, 1, 2]), 10, "has 3 classes but model.num_classes=10; set model.num_classes 3"),
             (Labelled(3, [0, 5, 2]), 3, "1 labels lie outside 0..2 (first: 5)"),
             (build_dataset("synthetic", image_size=8, num_samples=4), 3, "has no class labels")]
    for dataset, num_classes, message in cases:
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
            check_classes(dataset, num_classes, "mnist", "train")
        assert "\n" not in str(err.value)


def test_stl10s_unlabelled_splits_have_no_classes():
    from torchvision.datasets import STL10

    for split, classes in (("unlabeled", None), ("train+unlabeled", None), ("train", 10)):
        dataset = STL10.__new__(STL10)  # no files needed: the split alone decides
        dataset.split, dataset.classes = split, [str(k) for k in range(10)]
        assert dataset_classes(dataset) == classes


@pytest.mark.parametrize("layout,num_classes,message", [
    (["a.png", "b.png"], 2, "has no class labels"),
    (["x/a.png", "y/b.png", "z/c.png"], 2, "has 3 classes but model.num_classes=2"),
])
def test_gan_fit_refuses_data_that_does_not_fit_a_conditional_model_before_writing_anything(
        tmp_path, layout, num_classes, message, capsys):
    write_images(tmp_path / "images", layout)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"arch": "cnn", "z_dim": 8, "g_width": 4, "d_width": 4, "num_classes": num_classes,
                  "max_g_steps": 2},
        "data": {"name": "folder", "root": str(tmp_path / "images"), "image_size": 8, "channels": 3,
                 "batch_size": 1, "num_workers": 0},
        "run": {"out_dir": str(tmp_path / "runs"), "name": "r"},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False}}))
    assert main(["fit", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in err and err.startswith("gan fit: error:")
    assert not (tmp_path / "runs" / "r").exists()


# ---- training, samples and monitors ------------------------------------------------------------------------------
@pytest.mark.parametrize("norm,convnorm", [*((n, None) for n in NORMS), ("convnorm", {"bn": True})])
def test_every_normalization_trains_a_conditional_gan(tmp_path, tiny_fit, norm, convnorm):
    model, trainer = tiny_fit(tmp_path, num_classes=CLASSES, norm=norm, convnorm=convnorm)
    assert model.g_step == 4 and all(math.isfinite(v) for v in model.last_metrics.values())
    assert model.discriminator.projection is not None


def test_a_class_grid_has_one_row_per_class_with_the_same_latents_in_every_row(tmp_path, tiny_gan_factory):
    model = tiny_gan_factory(num_classes=CLASSES)
    with torch.no_grad():  # trained-like class gains, so that classes look different
        for bn in (m for m in model.generator.modules() if isinstance(m, ConditionalBatchNorm2d)):
            bn.gain.weight.uniform_(0.2, 3.0)
    z, y = class_grid_inputs(model, 4, seed=5)
    assert z.shape == (4 * CLASSES, model.z_dim) and y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    rows = z.view(CLASSES, 4, -1)
    assert all(torch.equal(rows[0], rows[k]) for k in range(CLASSES))
    path = SampleGrid(tmp_path, num=10, seed=5).write(model)  # 10 images for 3 classes: rows of 4
    grid = torch.from_numpy(np.asarray(Image.open(path))[..., 0].copy()).float()
    assert grid.shape == (2 + CLASSES * (8 + 2), 2 + 4 * (8 + 2))  # save_image pads every cell by 2 px
    expected = model.generate(z, y).add(1).mul(127.5).add(0.5).clamp(0, 255).floor()[:, 0]
    for k in range(CLASSES):
        for j in range(4):
            cell = grid[2 + k * 10: 10 + k * 10, 2 + j * 10: 10 + j * 10]
            assert torch.equal(cell, expected[k * 4 + j])
    assert not torch.equal(expected[0], expected[4])  # rows differ by class (columns share latents)


def test_the_gradient_monitor_scores_reals_with_their_labels_and_fakes_with_theirs(tmp_path, tiny_fit):
    monitor = GradientNormMonitor(every_n_g_steps=4, num_images=6, seed=1, dirpath=tmp_path)
    model, trainer = tiny_fit(tmp_path, callbacks=(monitor,), num_classes=CLASSES, norm="spectral")
    real, real_y = monitor.real, monitor.real_labels
    dataset = trainer.datamodule.dataset
    picked = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(1))[:6]
    assert real_y.tolist() == [dataset[int(i)][1] for i in picked]
    noise = torch.Generator().manual_seed(1)
    z, fake_y = torch.randn(6, model.z_dim, generator=noise), torch.randint(CLASSES, (6,), generator=noise)
    d = copy.deepcopy(model.discriminator).train()
    expected_real = input_gradient_norms(d, real, real_y)
    expected_fake = input_gradient_norms(d, model.generate(z, fake_y, ema=False), fake_y)
    row = monitor.history[-1]
    assert row["grad/real_mean"] == pytest.approx(expected_real.mean().item(), rel=1e-5)
    assert row["grad/fake_mean"] == pytest.approx(expected_fake.mean().item(), rel=1e-5)
    wrong = input_gradient_norms(d, real, (real_y + 1) % CLASSES).mean().item()
    assert row["grad/real_mean"] != pytest.approx(wrong, rel=1e-5)  # the labels matter


def test_the_spectral_monitor_reports_the_projection_embeddings_largest_singular_value(tmp_path, tiny_fit):
    monitor = SpectralNormMonitor(every_n_g_steps=4, dirpath=tmp_path)
    model, _ = tiny_fit(tmp_path, callbacks=(monitor,), num_classes=CLASSES, norm="none")
    embedding = model.discriminator.projection.embed.weight.detach()
    assert monitor.history[-1]["projection.embed"] == pytest.approx(
        torch.linalg.svdvals(embedding)[0].item(), rel=1e-5)


def test_a_conditional_iteration_is_sngans_with_real_labels_and_labels_drawn_after_each_latent_batch(
        tmp_path, tiny_gan_factory, tiny_fit):
    """The module's first iteration against the conditional SNGAN step written out by hand."""
    settings = dict(max_g_steps=1, lr_decay=False, norm="none", num_classes=CLASSES)
    initial = tiny_gan_factory(**settings)
    g, d = copy.deepcopy(initial.generator), copy.deepcopy(initial.discriminator)
    model, _ = tiny_fit(tmp_path, **settings)

    h = model.hparams
    opt_g = torch.optim.Adam(g.parameters(), lr=h.lr_g, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=h.lr_d, betas=(0.0, 0.9))
    batches = iter(GANDataModule(**TINY_DATA, num_classes=CLASSES).train_dataloader())
    noise = torch.Generator().manual_seed(latent_seed(h.seed, 0, 0))

    def fakes(n):
        return torch.randn(n, h.z_dim, generator=noise), torch.randint(CLASSES, (n,), generator=noise)

    for _ in range(h.n_dis):
        real, real_y = next(batches)
        z, fake_y = fakes(len(real))
        with torch.no_grad():
            fake = g(z, fake_y)
        d_real, d_fake = d(torch.cat([real, fake]), torch.cat([real_y, fake_y])).split(len(real))
        d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
    d.requires_grad_(False)
    z, fake_y = fakes(len(real))
    g_loss = -d(g(z, fake_y), fake_y).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    assert_nets_equal(model, g, d)


def test_the_ema_generator_takes_labels_too(tiny_gan_factory):
    model = tiny_gan_factory(num_classes=CLASSES, ema=True)
    with torch.no_grad():
        model.generator_ema.net[0].gain.weight.mul_(2.0)
    z, y = model.sample_z(4, torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0])
    assert not torch.equal(model.generate(z, y), model.generate(z, y, ema=False))


def test_compile_and_channels_last_switches_train_a_conditional_gan(tmp_path, tiny_fit):
    eager, _ = tiny_fit(tmp_path / "eager", norm="spectral", max_g_steps=2, num_classes=CLASSES)
    compiled, _ = tiny_fit(tmp_path / "compiled", norm="spectral", max_g_steps=2, num_classes=CLASSES,
                           compile="default")
    for key in ("loss/d", "loss/g", "d/real", "d/fake"):  # float32 rounding, then two Adam steps, apart
        assert compiled.last_metrics[key] == pytest.approx(eager.last_metrics[key], rel=1e-3, abs=1e-4), key
    last, _ = tiny_fit(tmp_path / "cl", norm="convnorm", max_g_steps=2, num_classes=CLASSES, channels_last=True)
    assert last.g_step == 2 and all(torch.isfinite(p).all() for p in last.parameters())


def test_a_diverging_conditional_run_stops(tmp_path, tiny_fit):
    with pytest.raises(DivergedError, match="training diverged by G step"):
        tiny_fit(tmp_path, num_classes=CLASSES, lr_d=1e30, lr_g=1e30, norm="none")
