"""Tiny GAN settings shared by the training tests (8x8..16x16 synthetic images, widths of 4), in the Python API and
as ``gan fit`` configs, and a way to start ``gan`` as a separate process."""

import os
import subprocess
import sys
from pathlib import Path

import pytorch_lightning as pl
import yaml

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


def cli_config(out_dir, **sections) -> dict:
    """A ``gan fit`` config of the same tiny GAN (EMA on), writing runs under ``out_dir``; ``sections`` update it,
    e.g. ``model={"max_g_steps": 8}``."""
    config = {
        "seed_everything": 0,
        "model": {**{k: v for k, v in MODEL.items() if k not in ("image_size", "channels")}, "ema": True,
                  "ema_decay": 0.9},
        "data": dict(DATA),
        "run": {"out_dir": str(out_dir), "sample_every": 1000, "ckpt_every": 2, "sample_num": 4},
        "trainer": {"accelerator": "cpu", "enable_model_summary": False, "enable_progress_bar": False},
    }
    for section, values in sections.items():
        config[section].update(values)
    return config


def write_config(path, out_dir, **sections):
    path.write_text(yaml.safe_dump(cli_config(out_dir, **sections)))
    return path


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a test's child Python process: this checkout's ``gan`` first, one torch thread."""
    path = os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **extra}


def start_gan(*argv: str, **env: str) -> subprocess.Popen:
    """``gan ARGV`` as a separate process (the way users and ``gan study`` start it)."""
    return subprocess.Popen([sys.executable, "-m", "gan.cli", *argv], env=child_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def files_of(folder) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: 'nothing was written' is this staying equal."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}
