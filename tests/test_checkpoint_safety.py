"""Checkpoints are data, never code: a checkpoint carrying a pickled command runs nothing in ``gan sample``,
``gan eval``, ``gan fit --ckpt_path`` or Lightning's own resume, and is refused in one line naming what it carries.
Checkpoint writes go through a temp file beside the target, and a generator with non-finite weights is refused."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import TINY_DATA, TINY_EXTRACTOR, TINY_MODEL, files_of, write_config

from gan.cli import main
from gan.data import GANDataModule
from gan.errors import UserError
from gan.runs.checkpoints import SafeCheckpointIO, load_checkpoint_file
from gan.training.module import GAN


class Payload:
    """Unpickling this runs ``touch MARKER``, as an attacker's checkpoint would run anything."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    config = write_config(out / "tiny.yaml", out, run={"name": "tiny"})
    assert main(["fit", "--config", str(config)]) == 0
    return out / "tiny"


@pytest.fixture
def payload(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A real checkpoint of the run with a payload among its hyperparameters, and the file the payload would make."""
    marker = tmp_path / "PWNED"
    checkpoint = torch.load(run / "ckpt" / "last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["note"] = Payload(marker)
    torch.save(checkpoint, tmp_path / "shared.ckpt")
    return tmp_path / "shared.ckpt", marker


def test_the_payload_is_live(payload):
    path, marker = payload
    torch.load(path, weights_only=False)  # what gan did before: the command runs
    assert marker.exists()


@pytest.mark.parametrize("command", ["sample", "eval", "fit"])
def test_payload_checkpoint_runs_nothing_and_is_refused_in_one_line(command, payload, run, tmp_path, capsys,
                                                                     monkeypatch):
    path, marker = payload
    monkeypatch.setenv("GAN_CACHE", str(tmp_path / "cache"))
    argv = {
        "sample": ["sample", str(path), "--out", str(tmp_path / "grid.png")],
        "eval": ["eval", str(path), "--feature-extractor", TINY_EXTRACTOR, "--num-fake", "8", "--num-real", "8"],
        "fit": ["fit", "--config", str(run.parent / "tiny.yaml"), "--run.name", "resumed", "--ckpt_path", str(path)],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "posix.system" in err and err.count("\n") == 1
    assert not marker.exists()
    assert not (run.parent / "resumed").exists() and not (tmp_path / "grid.png").exists()


def test_lightning_resume_loads_through_the_safe_reader(payload):
    path, marker = payload
    trainer = pl.Trainer(accelerator="cpu", max_epochs=-1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                         plugins=[SafeCheckpointIO()])
    with pytest.raises(UserError, match="refused: it names posix.system"):
        trainer.fit(GAN(**TINY_MODEL), datamodule=GANDataModule(**TINY_DATA), ckpt_path=path, weights_only=False)
    assert not marker.exists()


def test_every_type_of_a_real_checkpoint_loads_as_plain_data(run):
    checkpoint = load_checkpoint_file(run / "ckpt" / "last.ckpt")
    assert checkpoint["g_step"] == 4 and checkpoint["hyper_parameters"]["norm"] == "convnorm+spectral"
    assert checkpoint["optimizer_states"] and checkpoint["loops"]


def test_checkpoint_writes_use_a_temp_file_beside_the_target(run, tmp_path, monkeypatch):
    """An interrupted write leaves the old file whole and no temp file anywhere (Lightning's went to /tmp)."""
    target = tmp_path / "ckpt" / "last.ckpt"
    target.parent.mkdir()
    target.write_bytes(b"the previous checkpoint")
    temp_dirs = []
    real_mkstemp = tempfile.mkstemp

    def recording_mkstemp(*args, **kwargs):
        temp_dirs.append(Path(kwargs["dir"]))
        return real_mkstemp(*args, **kwargs)

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(tempfile, "mkstemp", recording_mkstemp)
    monkeypatch.setattr(os, "replace", interrupted)
    checkpoint = torch.load(run / "ckpt" / "last.ckpt", weights_only=True)
    with pytest.raises(KeyboardInterrupt):
        SafeCheckpointIO().save_checkpoint(checkpoint, target)
    assert temp_dirs == [target.parent]
    assert files_of(target.parent) == {"last.ckpt": b"the previous checkpoint"}
    monkeypatch.undo()
    SafeCheckpointIO().save_checkpoint(checkpoint, target)
    assert files_of(target.parent).keys() == {"last.ckpt"}
    assert load_checkpoint_file(target)["g_step"] == 4


@pytest.mark.parametrize("command", ["sample", "eval"])
def test_a_generator_with_non_finite_weights_is_refused(command, run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GAN_CACHE", str(tmp_path / "cache"))
    checkpoint = torch.load(run / "ckpt" / "last.ckpt", weights_only=True)
    checkpoint["state_dict"]["generator_ema.linear.weight"][0, 0] = float("nan")
    torch.save(checkpoint, tmp_path / "diverged.ckpt")
    out = tmp_path / "out"
    argv = {"sample": ["sample", str(tmp_path / "diverged.ckpt"), "--out", str(out / "grid.png")],
            "eval": ["eval", str(tmp_path / "diverged.ckpt"), "--feature-extractor", TINY_EXTRACTOR, "--num-fake", "8",
                     "--num-real", "8", "--json", str(out / "eval.json")]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "generator_ema.linear.weight" in err and "non-finite" in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "cache").exists()
