"""Real ``gan fit`` processes stopped from outside: Ctrl-C (SIGINT) and SIGTERM save ``last.ckpt`` at the next step
boundary and exit 130 / 143; SIGKILL at seeded random moments and once inside a checkpoint write (checkpoints every
step) leaves a loadable ``last.ckpt`` or none, and no temp file behind after the next start; and every chain of
resumes ends bit-identical to one uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import start_gan, write_config

from gan.training.module import read_checkpoint

MAX_G_STEPS = 24


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return write_config(out / "tiny.yaml", out, model={"max_g_steps": MAX_G_STEPS}, run={"ckpt_every": 1000})


@pytest.fixture(scope="module")
def straight(config: Path) -> subprocess.Popen:
    """The uninterrupted run, started at once so that it trains while a test interrupts its own runs."""
    return start_gan("fit", "--config", str(config), "--run.name", "straight")


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=600)
    return process.returncode, err


def rows(run: Path) -> int:
    metrics = run / "logs" / "metrics.csv"
    return max(metrics.read_text().count("\n") - 1, 0) if metrics.is_file() else 0


def wait_for_rows(process: subprocess.Popen, run: Path, count: int) -> None:
    """Until the run has logged ``count`` G steps (one row each), i.e. it is inside the training loop."""
    deadline = time.monotonic() + 300
    while rows(run) < count:
        assert process.poll() is None, f"finished before step {count}: {finish(process)[1][-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def resume_args(run: Path) -> list[str]:
    last = run / "ckpt" / "last.ckpt"
    return ["--ckpt_path", str(last)] if last.is_file() else []


def assert_same_final_state(run: Path, straight: subprocess.Popen) -> None:
    code, err = finish(straight)
    assert code == 0, err[-2000:]
    a = torch.load(run.parent / "straight" / "ckpt" / "last.ckpt", weights_only=True)
    b = torch.load(run / "ckpt" / "last.ckpt", weights_only=True)
    assert a["g_step"] == b["g_step"] == MAX_G_STEPS
    assert a["loops"]["fit_loop"]["state_dict"] == b["loops"]["fit_loop"]["state_dict"]  # data stream position
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for state_a, state_b in zip(opt_a["state"].values(), opt_b["state"].values(), strict=True):
            assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_sigint_and_sigterm_save_where_training_stood_and_resume_exactly(config, straight):
    run = config.parent / "signalled"
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        process = start_gan("fit", "--config", str(config), "--run.name", run.name, *resume_args(run))
        wait_for_rows(process, run, rows(run) + 3)
        process.send_signal(signum)
        returncode, err = finish(process)
        saved = read_checkpoint(run / "ckpt" / "last.ckpt")["g_step"]
        assert returncode == code, err[-2000:]
        assert f"interrupted by {signum.name} after G step {saved}; saved" in err
        assert 3 <= saved < MAX_G_STEPS and rows(run) == saved  # every logged step is in the checkpoint
    process = start_gan("fit", "--config", str(config), "--run.name", run.name, *resume_args(run))
    returncode, err = finish(process)
    assert returncode == 0, err[-2000:]
    assert rows(run) == MAX_G_STEPS
    assert_same_final_state(run, straight)


def temp_files(run: Path) -> set[str]:
    return {p.name for p in (run / "ckpt").glob(".*.tmp")}


def wait_for_a_checkpoint_write(process: subprocess.Popen, run: Path) -> None:
    """Until a new checkpoint temp file exists: the process is inside a write (temp written, not yet renamed)."""
    before, deadline = temp_files(run), time.monotonic() + 300
    while not temp_files(run) - before:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.0005)


def test_sigkill_at_random_moments_then_resume_ends_bit_identical(config, straight, tmp_path):
    run, rng = config.parent / "killed", random.Random(8)
    temp = tmp_path / "tmp"  # where Lightning's own checkpoint writes used to leave their temp files
    temp.mkdir()
    for moment in ("random", "random", "in a checkpoint write", "random"):
        process = start_gan("fit", "--config", str(config), "--run.name", run.name, "--run.ckpt_every", "1",
                            *resume_args(run), TMPDIR=str(temp))
        if moment == "random":
            wait_for_rows(process, run, rows(run) + rng.randint(1, 4))
            time.sleep(rng.uniform(0.0, 0.3))  # somewhere in a step: compute, logging, or a checkpoint write
        else:
            wait_for_rows(process, run, rows(run) + 1)
            wait_for_a_checkpoint_write(process, run)
        os.kill(process.pid, signal.SIGKILL)
        assert finish(process)[0] == -signal.SIGKILL
        if (run / "ckpt" / "last.ckpt").is_file():
            assert read_checkpoint(run / "ckpt" / "last.ckpt")["g_step"] < MAX_G_STEPS  # whole, and mid-run
    process = start_gan("fit", "--config", str(config), "--run.name", run.name, "--run.ckpt_every", "1",
                        *resume_args(run), TMPDIR=str(temp))
    returncode, err = finish(process)
    assert returncode == 0, err[-2000:]
    assert_same_final_state(run, straight)
    assert not list((run / "ckpt").glob(".*.tmp")) and not [p for p in temp.rglob("*") if p.is_file()]
