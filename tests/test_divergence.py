"""A run that diverges stops with one line and exit code 2, wherever it is noticed (a log step or a checkpoint), and
its last finite checkpoint is never replaced; huge finite losses are warned about; the device-side loss flag."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from conftest import files_of, write_config

from gan.cli import main
from gan.training.divergence import DivergedError, LossWatch, nonfinite
from gan.training.losses import get_loss


@pytest.fixture(scope="module")
def finite_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    config = write_config(out / "tiny.yaml", out, model={"max_g_steps": 2}, run={"name": "finite", "ckpt_every": 1})
    assert main(["fit", "--config", str(config)]) == 0
    return out / "finite"


@pytest.mark.parametrize("log_every", [1, 1000], ids=["noticed at a log step", "noticed at a checkpoint"])
def test_a_diverging_run_stops_and_keeps_its_last_finite_checkpoint(finite_run, tmp_path, log_every, capsys):
    run = tmp_path / "run"
    shutil.copytree(finite_run, run)
    before = files_of(run / "ckpt")
    assert main(["fit", "--config", str(finite_run.parent / "tiny.yaml"), "--run.out_dir", str(tmp_path),
                 "--run.name", "run", "--ckpt_path", str(run / "ckpt" / "last.ckpt"), "--model.max_g_steps", "6",
                 "--model.lr_d", "1e30", "--model.lr_g", "1e30", "--model.log_every_n_g_steps", str(log_every)]) == 2
    err = capsys.readouterr().err
    assert "training diverged by G step 3" in err and "Lower model.lr_d / model.lr_g" in err
    assert f"Its last finite checkpoint is kept: {run / 'ckpt' / 'last.ckpt'} (G step 2)." in err
    assert err.count("\n") == 1
    assert files_of(run / "ckpt") == before  # no g0000003.ckpt, last.ckpt untouched
    logged = (run / "logs" / "metrics.csv").read_text().splitlines()
    assert len(logged) == 3 and "nan" not in logged[-1]  # header, G steps 1 and 2: no NaN row
    assert not nonfinite(torch.load(run / "ckpt" / "last.ckpt", weights_only=True)["state_dict"])


def test_a_run_that_diverges_at_once_writes_no_checkpoint(finite_run, tmp_path, capsys):
    assert main(["fit", "--config", str(finite_run.parent / "tiny.yaml"), "--run.out_dir", str(tmp_path),
                 "--run.name", "nan", "--model.lr_d", "1e30", "--model.lr_g", "1e30"]) == 2
    assert "training diverged by G step 1" in capsys.readouterr().err
    assert not (tmp_path / "nan" / "ckpt").exists()


def test_huge_finite_losses_are_warned_about_once(finite_run, tmp_path):
    with pytest.warns(UserWarning, match="training is most likely diverging") as caught:
        assert main(["fit", "--config", str(finite_run.parent / "tiny.yaml"), "--run.out_dir", str(tmp_path),
                     "--run.name", "lr100", "--model.lr_d", "100", "--model.lr_g", "100",
                     "--model.max_g_steps", "3"]) == 0
    assert sum("most likely diverging" in str(w.message) for w in caught) == 1


def test_loss_watch_remembers_any_non_finite_loss():
    watch = LossWatch()
    assert not watch.diverged()
    watch.update(torch.tensor(3.0), torch.tensor(-1e30))
    assert not watch.diverged()
    watch.update(torch.tensor(float("inf")))
    watch.update(torch.tensor(0.5))
    assert watch.diverged()
    nan = LossWatch()
    nan.update(torch.tensor(float("nan")))
    assert nan.diverged()


def test_nonfinite_names_the_bad_floating_tensors():
    state = {"a": torch.ones(3), "b": torch.tensor([1.0, float("-inf")]), "steps": torch.tensor(7),
             "c": torch.full((2, 2), float("nan"))}
    assert nonfinite(state) == ["b", "c"]
    assert nonfinite({}) == []


def test_a_non_finite_g_loss_alone_stops_training(tmp_path, tiny_fit, monkeypatch):
    d_loss, g_loss = get_loss("hinge")
    monkeypatch.setattr("gan.training.module.get_loss", lambda name: (d_loss, lambda fake: g_loss(fake) * float("nan")))
    with pytest.raises(DivergedError, match="training diverged by G step 1"):
        tiny_fit(tmp_path, max_g_steps=2, log_every_n_g_steps=1)
