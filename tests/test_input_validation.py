"""Every numeric setting is range-checked before any work: a bad value is one line naming the field and the range,
exit code 2, and nothing written (no run folder, image, JSON or cache entry). Also: damaged images in a folder
dataset are named at setup, ``gan compare`` refuses a folder that is not a run, and the reference-statistics cache
never keeps statistics that are not finite."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from conftest import TINY_EXTRACTOR, files_of, write_config
from PIL import Image

from gan.cli import main
from gan.errors import UserError
from gan.metrics import GeneratorAdapter, Reference, compute_metrics
from gan.training.module import load_gan
from gan.utils.validate import at_least, in_range, positive


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    assert main(["fit", "--config", str(write_config(out / "tiny.yaml", out, model={"max_g_steps": 1})),
                 "--run.name", "tiny"]) == 0
    return out / "tiny"


def one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("gan ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("override,message", [
    (("--data.batch_size", "-4"), "data.batch_size=-4 is out of range; use an integer >= 1"),
    (("--data.batch_size", "0"), "data.batch_size=0 is out of range"),
    (("--data.num_workers", "-1"), "data.num_workers=-1 is out of range; use an integer >= 0"),
    (("--data.num_samples", "0"), "data.num_samples=0 is out of range"),
    (("--data.channels", "2"), "channels=2 is not supported; use 1 (grey) or 3 (RGB)"),
    (("--model.z_dim", "0"), "model.z_dim=0 is out of range"),
    (("--model.g_batch_size", "0"), "model.g_batch_size=0 is out of range"),
    (("--model.lr_g", "-1"), "model.lr_g=-1.0 is out of range; use a number in (0, inf)"),
    (("--model.lr_d", "0"), "model.lr_d=0.0 is out of range"),
    (("--model.betas", "[0.5, 1.5]"), "model.betas[1]=1.5 is out of range; use a number in [0, 1)"),
    (("--model.ema_decay", "2"), "model.ema_decay=2.0 is out of range; use a number in [0, 1]"),
    (("--model.n_dis", "0"), "model.n_dis=0 is out of range"),
    (("--run.sample_num", "0"), "run.sample_num=0 is out of range"),
    (("--run.ckpt_every", "-1"), "run.ckpt_every=-1 is out of range"),
    (("--data.batch_size", "1000000000"), "data.batch_size=1000000000 exceeds the dataset's"),
    (("--data.image_size", "100000"), "image_size=100000 is out of range; use at most 1024 pixels a side"),
    (("--model.lr_g", "nan"), "model.lr_g=nan is not a finite number; give one, e.g. --model.lr_g 0.0002"),
    (("--model.lr_d=inf",), "model.lr_d=inf is not a finite number"),
])
def test_fit_refuses_out_of_range_settings(run, tmp_path, capsys, override, message):
    assert main(["fit", "--config", str(run.parent / "tiny.yaml"), "--run.out_dir", str(tmp_path), *override]) == 2
    one_line_error(capsys, message)
    assert files_of(tmp_path) == {}


@pytest.mark.parametrize("callback,message", [
    ({"class_path": "gan.callbacks.fidelity.FidelityCallback", "init_args": {"num_real": 1}},
     "FidelityCallback.num_real=1 is out of range; use an integer >= 2"),
    ({"class_path": "gan.callbacks.spectral.SpectralNormMonitor", "init_args": {"every_n_g_steps": 0}},
     "SpectralNormMonitor.every_n_g_steps=0 is out of range"),
    ({"class_path": "gan.callbacks.gradients.GradientNormMonitor", "init_args": {"num_images": -1}},
     "GradientNormMonitor.num_images=-1 is out of range"),
])
def test_fit_refuses_out_of_range_callback_settings(tmp_path, capsys, callback, message):
    """jsonargparse builds the callbacks and wraps their errors; the user still gets the one line."""
    config = write_config(tmp_path / "callbacks.yaml", tmp_path / "out", trainer={"callbacks": [callback]})
    assert main(["fit", "--config", str(config)]) == 2
    one_line_error(capsys, message)
    assert not (tmp_path / "out").exists()


def test_fit_names_a_damaged_image_of_a_folder_dataset_before_training(run, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(8):
        Image.new("L", (12, 12), 30 * i).save(images / f"{i}.png")
    whole = (images / "3.png").read_bytes()
    (images / "3.png").write_bytes(whole[: len(whole) // 2])  # cut off, as by an interrupted copy
    out = tmp_path / "out"
    assert main(["fit", "--config", str(run.parent / "tiny.yaml"), "--run.out_dir", str(out), "--data.name", "folder",
                 "--data.root", str(images)]) == 2
    one_line_error(capsys, f"1 of 8 images cannot be read (first: {images / '3.png'}", "remove or replace them")
    assert not out.exists()


@pytest.mark.parametrize("args,message", [
    (["--out", "name"], "--out 'name' has no image extension; name the grid e.g. name.png"),
    (["--num", "0"], "--num=0 is out of range"),
    (["--batch-size", "-2"], "--batch-size=-2 is out of range"),
])
def test_sample_refuses_bad_arguments(run, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(run / "ckpt" / "last.ckpt"), *args]) == 2
    one_line_error(capsys, message)
    assert files_of(tmp_path) == {}


@pytest.mark.parametrize("args,message", [
    (["--num-real", "-5"], "--num-real=-5 is out of range; use an integer >= 2"),
    (["--num-real", "0"], "--num-real=0 is out of range"),
    (["--num-real", "1"], "--num-real=1 is out of range"),
    (["--num-fake", "0"], "--num-fake=0 is out of range"),
    (["--batch-size", "0"], "--batch-size=0 is out of range"),
    (["--kid-subset-size", "0"], "--kid-subset-size=0 is out of range"),
])
def test_eval_refuses_bad_counts_before_any_feature_work(run, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.setenv("GAN_CACHE", str(tmp_path / "cache"))
    assert main(["eval", str(run / "ckpt" / "last.ckpt"), "--feature-extractor", TINY_EXTRACTOR, "--num-fake", "8",
                 "--num-real", "8", *args, "--json", str(tmp_path / "eval.json")]) == 2
    one_line_error(capsys, message)
    assert files_of(tmp_path) == {}


def test_a_one_image_reference_is_never_cached(run, tmp_path):
    reference = Reference.from_data("synthetic", "train", 8, 1, num_samples=1)
    with pytest.raises(UserError, match="from 1 images are not finite"):
        compute_metrics(GeneratorAdapter.from_gan(load_gan(run / "ckpt" / "last.ckpt")), reference, num_fake=4,
                        feature_extractor=TINY_EXTRACTOR, cache=tmp_path / "cache", verbose=False)
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_compare_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "holiday").mkdir()
    (tmp_path / "holiday" / "beach.jpg").write_bytes(b"not a run")
    assert main(["compare", str(tmp_path / "holiday"), "--plot", str(tmp_path / "fid.png")]) == 2
    one_line_error(capsys, "is not a run folder")
    assert not (tmp_path / "fid.png").exists()


def test_range_checks_reject_nan_bools_and_wrong_types():
    for call in (lambda: positive("lr", float("nan")), lambda: positive("lr", float("inf")),
                 lambda: in_range("beta", float("nan"), 0.0, 1.0), lambda: at_least("n", True, 0),
                 lambda: at_least("n", 2.5, 1), lambda: in_range("beta", 1.0, 0.0, 1.0, high_open=True)):
        with pytest.raises(UserError, match="is out of range"):
            call()
    at_least("n", None, 1)  # unset: the default applies
    in_range("beta", 0.0, 0.0, 1.0, high_open=True)
    positive("lr", 1e-12)


@pytest.mark.parametrize("where", ["config.yaml", "a checkpoint"])
def test_a_full_disk_is_one_line_naming_the_run_folder(run, tmp_path, capsys, monkeypatch, where):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "full" / "x"))

    if where == "config.yaml":
        monkeypatch.setattr(Path, "write_text", full)
    else:
        monkeypatch.setattr("gan.runs.checkpoints.atomic_write", full)
    assert main(["fit", "--config", str(run.parent / "tiny.yaml"), "--run.out_dir", str(tmp_path),
                 "--run.name", "full"]) == 2
    one_line_error(capsys, f"run folder {tmp_path / 'full'}: cannot write", "No space left on device",
                   "free space or make the folder writable")
