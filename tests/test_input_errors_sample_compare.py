"""Bad input to `gan sample` and `gan compare` (output paths, checkpoints that are not whole `gan fit` ones, seeds):
one-line errors before any work, and nothing written before them lost."""

from pathlib import Path

import pytest
import torch

import gan.commands.sample as sample_command
from gan.cli import main
from gan.training.module import GAN, load_gan


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tiny_fit) -> Path:
    """A real `gan fit`-style checkpoint of the tiny GAN (2 G steps)."""
    folder = tmp_path_factory.mktemp("fit")
    tiny_fit(folder, max_g_steps=2)
    return folder / "ckpt" / "last.ckpt"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def no_sampling(*args, **kwargs):
    raise AssertionError("the checkpoint was loaded before --out was checked")


@pytest.mark.parametrize("folder,out,message", [
    (False, "existing", "is a folder; name the grid file"),  # an existing folder as the grid
    (False, "afile/x.png", "'afile' is a file, not a folder"),
    (True, "afile/x", "'afile' is a file, not a folder"),
])
def test_sample_checks_out_before_sampling(ckpt, tmp_path, monkeypatch, capsys, folder, out, message):
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / "kept.png").write_bytes(b"earlier output")
    (tmp_path / "afile").write_text("a file")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sample_command, "load_gan", no_sampling)
    assert main(["sample", str(ckpt), "--num", "4", "--out", out, *(["--folder"] if folder else [])]) == 2
    err = one_line_error(capsys)
    assert f"--out '{out}'" in err and message in err
    assert (tmp_path / "existing" / "kept.png").read_bytes() == b"earlier output"
    assert (tmp_path / "afile").read_text() == "a file"


@pytest.mark.parametrize("seed", [str(2**70), "-1"])
def test_sample_refuses_a_seed_out_of_range_before_sampling(ckpt, tmp_path, monkeypatch, capsys, seed):
    monkeypatch.setattr(sample_command, "load_gan", no_sampling)
    assert main(["sample", str(ckpt), "--out", str(tmp_path / "s.png"), "--seed", seed]) == 2
    assert f"--seed={seed} is out of range; use an integer from 0 to {2**63 - 1}" in one_line_error(capsys)


def test_sample_takes_the_largest_seed(ckpt, tmp_path):
    assert main(["sample", str(ckpt), "--num", "1", "--out", str(tmp_path / "s.png"), "--seed", str(2**63 - 1)]) == 0
    assert (tmp_path / "s.png").is_file()


def damaged(checkpoint: dict, how: str) -> dict:
    if how == "another project":
        return {"state_dict": {}, "hyper_parameters": {}}
    if how == "foreign hyper_parameters":
        return {**checkpoint, "hyper_parameters": {"foo": 1}}
    if how == "no discriminator":
        return {**checkpoint, "state_dict": {k: v for k, v in checkpoint["state_dict"].items()
                                             if not k.startswith("discriminator.")}}
    return {**checkpoint, "hyper_parameters": [1]}  # not a mapping


@pytest.mark.parametrize("how,detail", [
    ("another project", "not a complete gan fit checkpoint (no 'pytorch-lightning_version' entry)"),
    ("foreign hyper_parameters", "not a complete gan fit checkpoint (Missing key(s) in state_dict"),
    ("no discriminator", "not a complete gan fit checkpoint (Missing key(s) in state_dict: \"discriminator."),
    ("hyper_parameters not a mapping", "is not a gan fit checkpoint"),
])
def test_sample_refuses_an_incomplete_checkpoint_in_one_line(ckpt, tmp_path, capsys, how, detail):
    bad = tmp_path / "bad.ckpt"
    torch.save(damaged(torch.load(ckpt, weights_only=True), how), bad)
    assert main(["sample", str(bad), "--num", "4", "--out", str(tmp_path / "x.png")]) == 2
    err = one_line_error(capsys)
    assert f"checkpoint '{bad}' " in err and detail in err and "checkpoints/<run>/ckpt/" in err
    assert not (tmp_path / "x.png").exists()


def test_load_gan_keeps_errors_that_are_not_about_the_checkpoint(ckpt, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(GAN, "load_from_checkpoint", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):
        load_gan(ckpt)


@pytest.fixture
def runs(tmp_path) -> list[str]:
    """Two run folders as gan compare reads them (a config, no FID: no plot)."""
    for name in ("run-a", "run-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text("model:\n  arch: cnn\n  norm: spectral\n")
    return [str(tmp_path / "run-a"), str(tmp_path / "run-b")]


def test_compare_out_creates_missing_folders(runs, tmp_path, capsys):
    out = tmp_path / "missing" / "deeper" / "t.md"
    assert main(["compare", *runs, "--out", str(out), "--plot", str(tmp_path / "fid.png")]) == 0
    assert out.read_text() == capsys.readouterr().out.split("\n\n")[0] + "\n"


@pytest.mark.parametrize("option,value,message", [
    ("--out", "existing", "is a folder; name a file in it"),
    ("--out", "afile/t.md", "'afile' is a file, not a folder"),
    ("--plot", "existing", "is a folder; name a file in it"),
    ("--plot", "afile/fid.png", "'afile' is a file, not a folder"),
])
def test_compare_checks_out_and_plot_before_the_table(runs, tmp_path, monkeypatch, capsys, option, value, message):
    for run in runs:  # a logged FID: there will be a plot
        (Path(run) / "logs").mkdir()
        (Path(run) / "logs" / "metrics.csv").write_text("g_step,eval/fid\n2,150.5\n")
    (tmp_path / "existing").mkdir()
    (tmp_path / "afile").write_text("a file")
    monkeypatch.chdir(tmp_path)
    assert main(["compare", *runs, option, value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the table
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and f"{option} '{value}'" in err and message in err
    assert (tmp_path / "afile").read_text() == "a file" and not any((tmp_path / "existing").iterdir())


def test_compare_without_fid_does_not_check_the_plot_it_will_not_write(runs, tmp_path, monkeypatch, capsys):
    (tmp_path / "existing").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["compare", *runs, "--plot", "existing"]) == 0
    assert "no plot" in capsys.readouterr().out and not any((tmp_path / "existing").iterdir())
