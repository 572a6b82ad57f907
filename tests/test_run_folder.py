"""A run folder belongs to one run and one process: no resume into another run's folder, a checkpoint that does not
fit the config changes nothing, a second ``gan fit`` into a folder in use is refused (a killed holder's lock is not),
and run names cannot point outside ``run.out_dir``."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from conftest import files_of, start_gan, write_config

from gan.callbacks.samples import save_grid
from gan.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two finished runs, A (spectral) and B (convnorm+spectral), of 2 G steps."""
    out = tmp_path_factory.mktemp("runs")
    config = write_config(out / "tiny.yaml", out, model={"max_g_steps": 2})
    assert main(["fit", "--config", str(config), "--run.name", "A", "--model.norm", "spectral"]) == 0
    assert main(["fit", "--config", str(config), "--run.name", "B"]) == 0
    return out


def test_resuming_a_run_into_another_runs_folder_is_refused(runs, capsys):
    before = files_of(runs / "B")
    argv = ["fit", "--config", str(runs / "tiny.yaml"), "--model.norm", "spectral", "--model.max_g_steps", "4"]
    assert main([*argv, "--run.name", "B", "--ckpt_path", str(runs / "A" / "ckpt" / "last.ckpt")]) == 2
    err = capsys.readouterr().err
    assert "holds another run" in err and "--run.name A" in err and err.count("\n") == 1
    assert files_of(runs / "B") == before
    # into its own folder, or a new one, it resumes
    assert main([*argv, "--run.name", "A2", "--ckpt_path", str(runs / "A" / "ckpt" / "last.ckpt")]) == 0
    assert torch.load(runs / "A2" / "ckpt" / "last.ckpt", weights_only=True)["g_step"] == 4


def test_a_checkpoint_that_does_not_fit_the_config_changes_nothing(runs, capsys):
    before = files_of(runs / "A")
    assert main(["fit", "--config", str(runs / "tiny.yaml"), "--run.name", "A", "--model.norm", "convnorm",
                 "--model.max_g_steps", "4", "--ckpt_path", str(runs / "A" / "ckpt" / "last.ckpt")]) == 2
    err = capsys.readouterr().err
    assert "does not fit" in err and "model.norm: 'spectral' in the checkpoint, 'convnorm' in the config" in err
    assert err.count("\n") == 1 and files_of(runs / "A") == before


@pytest.mark.parametrize("name", ["../outside", "a/b", "..", "ABSOLUTE"])
def test_run_names_stay_inside_out_dir(runs, name, tmp_path, capsys):
    name = str(tmp_path / "absolute") if name == "ABSOLUTE" else name
    before = files_of(runs.parent)
    assert main(["fit", "--config", str(runs / "tiny.yaml"), "--run.name", name]) == 2
    err = capsys.readouterr().err
    assert "must be a plain folder name" in err and err.count("\n") == 1
    assert files_of(runs.parent) == before and not (tmp_path / "absolute").exists()


def test_a_second_fit_into_a_folder_in_use_is_refused_until_its_holder_dies(tmp_path, capsys):
    config = write_config(tmp_path / "tiny.yaml", tmp_path, model={"max_g_steps": 100_000},
                          run={"name": "busy", "ckpt_every": 100_000})
    holder = start_gan("fit", "--config", str(config))
    lock, metrics = tmp_path / "busy" / "run.lock", tmp_path / "busy" / "logs" / "metrics.csv"
    try:
        deadline = time.monotonic() + 180
        while not (metrics.is_file() and metrics.read_text().count("\n") > 2):  # training, so it holds the lock
            assert holder.poll() is None and time.monotonic() < deadline, holder.communicate()
            time.sleep(0.2)
        assert json.loads(lock.read_text())["pid"] == holder.pid
        rows = metrics.read_text()
        assert main(["fit", "--config", str(config), "--model.max_g_steps", "2"]) == 2
        err = capsys.readouterr().err
        assert f"is in use by gan fit pid {holder.pid} on" in err and err.count("\n") == 1
        assert metrics.read_text().startswith(rows) and not (tmp_path / "busy" / "ckpt").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # dies without releasing anything itself
        holder.communicate()
    assert main(["fit", "--config", str(config), "--model.max_g_steps", "2"]) == 0
    assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_a_sample_grid_replaces_a_planted_symlink_and_leaves_its_target_alone(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    path = tmp_path / "samples" / "g0000001.png"
    path.parent.mkdir()
    path.symlink_to(target)
    save_grid(torch.zeros(4, 1, 8, 8), path)
    assert target.read_text() == "keep me"
    assert not path.is_symlink() and path.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in path.parent.iterdir()] == ["g0000001.png"]  # no temp file left behind
