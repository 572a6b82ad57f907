"""Helpers shared by the tests, given to them as fixtures.

* A tiny feature extractor registered with torch-fidelity as ``gan-tiny-test`` (fixture ``tiny_extractor``): it
  stands in for Inception wherever a test needs FID to be cheap. Registering happens when this file is imported,
  so processes started by tests (``gan_with_tiny_extractor.py``) get it by importing this module too.
* A tiny generator and a set of smooth random images (``tiny_generator``, ``tiny_images``: the classes).
* A tiny GAN on synthetic 8x8 images: built (``tiny_gan_factory``), trained for 4 G steps (``tiny_fit``), its data
  (``tiny_datamodule``); ``TINY_MODEL`` / ``TINY_DATA`` for processes that build it themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torch_fidelity
import yaml
from torch import nn
from torch.utils.data import Dataset
from torch_fidelity import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from gan.callbacks import GStepCheckpoint
from gan.cli import main
from gan.data import GANDataModule
from gan.training.module import GAN

TINY_EXTRACTOR = "gan-tiny-test"
TINY_MODEL = dict(arch="cnn", image_size=8, channels=1, z_dim=8, g_width=4, d_width=4, norm="convnorm+spectral",
                  n_dis=2, max_g_steps=4, log_every_n_g_steps=1)
TINY_DATA = dict(name="synthetic", image_size=8, channels=1, batch_size=4, num_workers=0, num_samples=24)


class TinyExtractor(FeatureExtractorBase):
    """uint8 3xHxW -> 32 fixed random features and 10 'logits': cheap, deterministic, non-linear."""

    def __init__(self, name: str, features_list: list[str], **kwargs: object) -> None:
        super().__init__(name, features_list)
        g = torch.Generator().manual_seed(0)
        self.register_buffer("proj", torch.randn(48, 32, generator=g))
        self.register_buffer("head", torch.randn(32, 10, generator=g))

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return "feat", "logits_unbiased"

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "logits_unbiased" if metric == "isc" else "feat"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        return torch.zeros(1, 3, 8, 8, dtype=torch.uint8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        pooled = F.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1)
        feat = torch.tanh(pooled @ self.proj) * 3
        out = {"feat": feat, "logits_unbiased": feat @ self.head}
        return tuple(out[name] for name in self.features_list)


if TINY_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
    torch_fidelity.register_feature_extractor(TINY_EXTRACTOR, TinyExtractor)


class TinyGenerator(nn.Module):
    """z -> C x 8 x 8 in [-1, 1], with a BatchNorm so eval mode matters."""

    def __init__(self, z_dim: int = 8, channels: int = 3) -> None:
        super().__init__()
        self.channels = channels
        self.net = nn.Sequential(nn.Linear(z_dim, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, channels * 64))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(z)).view(-1, self.channels, 8, 8)


class TinyImages(Dataset):
    """``n`` smooth random RGB images in [-1, 1] from ``seed``, items ``(image, 0)`` like ``gan.data``'s."""

    def __init__(self, n: int, seed: int = 0, size: int = 8) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.tanh(2 * F.interpolate(torch.randn(n, 3, 3, 3, generator=g), size=size, mode="bilinear"))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], 0


def tiny_gan(**overrides: object) -> GAN:
    """The tiny GAN (``TINY_MODEL`` with ``overrides``), initialised from seed 0: the same weights every call."""
    pl.seed_everything(0, verbose=False)
    return GAN(**{**TINY_MODEL, **overrides})


def fit(tmp_path: Path, ckpt_path: Path | None = None, callbacks: tuple = (), trainer: dict | None = None,
        **model_overrides: object) -> tuple[GAN, pl.Trainer]:
    """Train :func:`tiny_gan` (with ``model_overrides``) on ``TINY_DATA`` with a CSV log in ``tmp_path`` and
    checkpoints every 2 G steps in ``tmp_path/ckpt``; ``trainer`` overrides Trainer arguments."""
    model = tiny_gan(**model_overrides)
    options = dict(accelerator="cpu", devices=1, max_epochs=-1, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, use_distributed_sampler=False,
                   logger=pl.loggers.CSVLogger(tmp_path, name="", version=""))
    runner = pl.Trainer(**{**options, **(trainer or {})},
                        callbacks=[GStepCheckpoint(tmp_path / "ckpt", 2), *callbacks])
    data = GANDataModule(**TINY_DATA, num_classes=model.num_classes)  # as gan fit links them
    runner.fit(model, datamodule=data, ckpt_path=ckpt_path)
    return model, runner


@pytest.fixture(scope="session")
def tiny_extractor() -> str:
    return TINY_EXTRACTOR


@pytest.fixture(scope="session")
def tiny_generator() -> type[TinyGenerator]:
    return TinyGenerator


@pytest.fixture(scope="session")
def tiny_images() -> type[TinyImages]:
    return TinyImages


@pytest.fixture(scope="session")
def tiny_gan_factory() -> Callable[..., GAN]:
    return tiny_gan


@pytest.fixture(scope="session")
def tiny_fit() -> Callable[..., tuple[GAN, pl.Trainer]]:
    return fit


@pytest.fixture
def tiny_datamodule() -> GANDataModule:
    """The tiny GAN's training data, as ``tiny_fit`` trains on it."""
    return GANDataModule(**TINY_DATA)


# ---- gan as users run it: configs for `gan fit`, separate processes, the files a run leaves ---------------------
def cli_config(out_dir: Path, **sections: dict) -> dict:
    """A ``gan fit`` config of the tiny GAN (EMA on), writing runs under ``out_dir``; ``sections`` update it,
    e.g. ``model={"max_g_steps": 8}``."""
    config = {
        "seed_everything": 0,
        "model": {**{k: v for k, v in TINY_MODEL.items() if k not in ("image_size", "channels")}, "ema": True,
                  "ema_decay": 0.9},
        "data": dict(TINY_DATA),
        "run": {"out_dir": str(out_dir), "sample_every": 1000, "ckpt_every": 2, "sample_num": 4},
        "trainer": {"accelerator": "cpu", "enable_model_summary": False, "enable_progress_bar": False},
    }
    for section, values in sections.items():
        config[section].update(values)
    return config


def write_config(path: Path, out_dir: Path, **sections: dict) -> Path:
    path.write_text(yaml.safe_dump(cli_config(out_dir, **sections)))
    return path


def fit_tiny_run(root: Path, config_text: str, extractor: str) -> Path:
    """``gan fit`` of a tiny config given as text (``{extractor}`` filled in with the tests' feature extractor)
    into ``root``, its reference cache there too; returns the run folder (named by the config's ``run.name``)."""
    config = root / "config.yaml"
    config.write_text(config_text.format(extractor=extractor))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GAN_CACHE", str(root / "cache"))
        assert main(["fit", "--config", str(config), "--run.out_dir", str(root)]) == 0
    return root / yaml.safe_load(config.read_text())["run"]["name"]


def assert_nets_equal(model: GAN, g: torch.nn.Module, d: torch.nn.Module, atol: float = 1e-7) -> None:
    """The module's generator and discriminator hold the weights and buffers of ``g`` and ``d`` (a step computed by
    hand), name by name."""
    for ours, by_hand in ((model.generator, g), (model.discriminator, d)):
        for (name, a), b in zip(ours.state_dict().items(), by_hand.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=atol, msg=name)


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a test's child Python process: this checkout's ``gan`` first, one torch thread."""
    path = os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **extra}


def start_gan(*argv: str, **env: str) -> subprocess.Popen:
    """``gan ARGV`` as a separate process (the way users and ``gan study`` start it)."""
    return subprocess.Popen([sys.executable, "-m", "gan.cli", *argv], env=child_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: 'nothing was written' is this staying equal."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


class SigtermOnce(pl.Callback):
    """Sends this process SIGTERM (as a cluster's preemption does) after G step ``at_g_step`` of the run named
    ``run``, once: a marker in the run folder keeps the resumed run going. For ``gan study`` processes
    (``class_path: conftest.SigtermOnce``, importable there through ``gan_with_tiny_extractor.py``)."""

    def __init__(self, run: str, at_g_step: int) -> None:
        self.run, self.at_g_step = run, at_g_step

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        marker = Path(trainer.default_root_dir) / "sigterm-sent"
        if Path(trainer.default_root_dir).name == self.run and pl_module.g_step >= self.at_g_step \
                and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGTERM)
