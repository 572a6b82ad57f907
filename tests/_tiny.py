"""Tiny GAN settings shared by the training tests (8x8..16x16 synthetic images, widths of 4)."""

import pytorch_lightning as pl

from gan.callbacks import GStepCheckpoint
from gan.data import GANDataModule
from gan.module import GAN

MODEL = dict(arch="cnn", image_size=8, channels=1, z_dim=8, g_width=4, d_width=4, norm="convnorm+spectral",
             n_dis=2, max_g_steps=4, log_every_n_g_steps=1)
DATA = dict(name="synthetic", image_size=8, channels=1, batch_size=4, num_workers=0, num_samples=24)


def fit(tmp_path, ckpt_path=None, callbacks=(), **model_overrides) -> tuple[GAN, pl.Trainer]:
    pl.seed_everything(0, verbose=False)
    model = GAN(**{**MODEL, **model_overrides})
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=-1, logger=pl.loggers.CSVLogger(tmp_path, name="", version=""),
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, callbacks=[GStepCheckpoint(tmp_path / "ckpt", 2), *callbacks],
    )
    trainer.fit(model, datamodule=GANDataModule(**DATA), ckpt_path=ckpt_path)
    return model, trainer
