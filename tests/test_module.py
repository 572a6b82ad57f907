"""The LightningModule: exact G-step count, schedules on g_step, EMA, generate(), logging, checkpoint reload."""

import copy
import csv

import pytest
import torch
from conftest import assert_nets_equal

from gan.training.losses import LOSSES
from gan.training.module import GAN, latent_seed, load_gan


def test_trains_exactly_max_g_steps_with_n_dis_fresh_batches(tmp_path, tiny_fit):
    model, trainer = tiny_fit(tmp_path, ema=True, ema_decay=0.5)
    assert model.g_step == 4
    assert trainer.global_step == 4 * (2 + 1)  # Lightning counts every optimizer step
    assert trainer.train_dataloader.consumed == 4 * 2  # each D step drew its own real batch
    g = dict(model.generator.named_parameters())
    assert any(not torch.equal(p, g[name]) for name, p in model.generator_ema.named_parameters())
    opt_g, opt_d = trainer.optimizers
    assert opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * (1 - 3 / 4))  # linear decay, set before step 4
    assert opt_d.param_groups[0]["betas"] == (0.0, 0.9)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["g_step"]) for r in rows] == [1, 2, 3, 4]
    assert {"loss/d", "loss/g", "d/real", "d/fake", "lr/g", "lr/d", "speed/g_steps_per_s"} <= rows[0].keys()
    assert all(float(r["speed/g_steps_per_s"]) > 0 for r in rows)


def test_generate_uses_ema_in_eval_mode_and_keeps_training_mode():
    model = GAN(arch="cnn", image_size=8, channels=3, z_dim=8, g_width=4, d_width=4, ema=True)
    z = model.sample_z(5, torch.Generator().manual_seed(0))
    assert z.shape == (5, 8)
    with torch.no_grad():
        model.generator_ema.linear.weight.add_(1.0)
    model.train()
    x, raw = model.generate(z), model.generate(z, ema=False)
    assert x.shape == (5, 3, 8, 8) and x.abs().max() <= 1 and not torch.equal(x, raw)
    assert model.generator.training and not x.requires_grad
    model.generator.eval()
    torch.testing.assert_close(raw, model.generator(z))


@pytest.mark.parametrize("loss", list(LOSSES))
def test_a_g_step_is_n_dis_d_steps_and_a_g_step_on_the_named_loss(tmp_path, loss, tiny_gan_factory, tiny_fit,
                                                                    tiny_datamodule):
    """The module's first iteration equals SNGAN's written out by hand with the loss's own functions: the same
    initial weights, real batches, latent stream and Adam settings."""
    settings = dict(loss=loss, max_g_steps=1, lr_decay=False, norm="none")
    initial = tiny_gan_factory(**settings)
    g, d = copy.deepcopy(initial.generator), copy.deepcopy(initial.discriminator)
    model, _ = tiny_fit(tmp_path, **settings)

    h, (d_loss_fn, g_loss_fn) = model.hparams, LOSSES[loss]
    opt_g = torch.optim.Adam(g.parameters(), lr=h.lr_g, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=h.lr_d, betas=(0.0, 0.9))
    batches = iter(tiny_datamodule.train_dataloader())
    noise = torch.Generator().manual_seed(latent_seed(h.seed, 0, 0))
    for _ in range(h.n_dis):
        real = next(batches)[0]
        with torch.no_grad():
            fake = g(torch.randn(len(real), h.z_dim, generator=noise))
        d_real, d_fake = d(torch.cat([real, fake])).split(len(real))
        d_loss = d_loss_fn(d_real, d_fake)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
    d.requires_grad_(False)
    g_loss = g_loss_fn(d(g(torch.randn(len(real), h.z_dim, generator=noise))))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()

    assert_nets_equal(model, g, d)
    (row,) = csv.DictReader(open(tmp_path / "metrics.csv"))
    assert float(row["loss/d"]) == pytest.approx(d_loss.item(), rel=1e-6)
    assert float(row["loss/g"]) == pytest.approx(g_loss.item(), rel=1e-6)


def test_checkpoint_reloads_g_step_and_weights(tmp_path, tiny_fit):
    model, _ = tiny_fit(tmp_path, max_g_steps=2)
    loaded = load_gan(tmp_path / "ckpt" / "last.ckpt")
    assert loaded.g_step == 2 and loaded.hparams.norm == "convnorm+spectral"
    z = torch.randn(3, 8)
    torch.testing.assert_close(loaded.generate(z), model.generate(z))
    reloaded = GAN.load_from_checkpoint(tmp_path / "ckpt" / "g0000002.ckpt", map_location="cpu")
    assert reloaded.g_step == 2
    d, d2 = model.discriminator.eval(), reloaded.discriminator.eval()
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(d(x), d2(x))  # ConvNorm's running_V and SN's u, v came back too


def test_resuming_a_finished_run_takes_no_step(tmp_path, tiny_fit):
    tiny_fit(tmp_path, max_g_steps=2)
    model, trainer = tiny_fit(tmp_path / "again", ckpt_path=tmp_path / "ckpt" / "last.ckpt", max_g_steps=2)
    assert model.g_step == 2 and trainer.global_step == 6


def test_latent_seed_is_a_fixed_function_of_seed_rank_and_g_step():
    # literal values: a change of the hash (or dropping the rank or the G step) changes every run's noise stream
    assert [latent_seed(0, 0, 0), latent_seed(0, 1, 0), latent_seed(0, 0, 1), latent_seed(7, 2, 1000)] == [
        8866250585812870066, 2496199783934930423, 645126943453202946, 3626483250405193936]


def test_each_g_step_trains_on_new_latents(tmp_path, tiny_fit, monkeypatch):
    drawn = []
    original = GAN.draw_fakes

    def recording(self, n, generator):
        fakes = original(self, n, generator)
        drawn.append(fakes[0].clone())
        return fakes

    monkeypatch.setattr(GAN, "draw_fakes", recording)
    model, _ = tiny_fit(tmp_path, max_g_steps=3)
    per_step = model.hparams.n_dis + 1
    firsts = [drawn[i * per_step] for i in range(3)]  # each iteration's first D-step latents
    assert len(drawn) == 3 * per_step
    assert not any(torch.equal(a, b) for i, a in enumerate(firsts) for b in firsts[i + 1:])
