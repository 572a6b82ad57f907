"""Bad input to the data root, ``gan eval`` and ``--device`` is refused with one line, before any long work, and
without touching what is already on disk."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

import gan.data
from gan.cli import main
from gan.commands import evaluate
from gan.data import build_dataset
from gan.errors import UserError
from gan.utils import devices
from gan.utils.devices import resolve_device


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_CACHE", str(tmp_path / "cache"))


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` refuses new files, to root too (root ignores permission bits, not the immutable flag)."""
    root = os.geteuid() == 0
    if root and (not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)]).returncode):
        pytest.skip("cannot make a folder read-only for root here (chattr +i)")
    if not root:
        folder.chmod(0o555)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)]) if root else folder.chmod(0o755)


@pytest.fixture
def fashion_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A two-image Debian-package copy of Fashion-MNIST, where gan.data looks for it."""
    src = tmp_path / "deb"
    src.mkdir()
    for prefix in ("train", "t10k"):  # IDX files: magic number, dimensions, then the bytes
        images = struct.pack(">IIII", 2051, 2, 28, 28) + bytes(2 * 28 * 28)
        (src / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (src / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(struct.pack(">II", 2049, 2) + bytes(2)))
    monkeypatch.setattr(gan.data, "DEBIAN_FASHION_MNIST", src)
    return src


def test_fashion_mnist_on_a_root_that_cannot_be_written_names_data_root(tmp_path: Path, fashion_source: Path):
    """It used to raise PermissionError / FileExistsError from the unpack lock: a traceback."""
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    with pytest.raises(UserError, match=r"data.root='.*a-file': cannot unpack Fashion-MNIST .*writable folder"):
        build_dataset("fashion-mnist", root=str(a_file), image_size=8, channels=1, download=False)
    assert a_file.read_text() == "mine"
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked), pytest.raises(UserError, match=r"data.root='.*locked': cannot unpack.*writable folder"):
        build_dataset("fashion-mnist", root=str(locked), image_size=8, channels=1, download=False)
    unpacked = tmp_path / "unpacked"  # a read-only root that already holds the files still trains
    assert len(build_dataset("fashion-mnist", root=str(unpacked), image_size=8, channels=1, download=False)) == 2
    with read_only(unpacked):
        assert len(build_dataset("fashion-mnist", root=str(unpacked), image_size=8, channels=1, download=False)) == 2


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Six small grey PNGs to score (against the synthetic reference: no checkpoint, no download)."""
    images = tmp_path / "gen" / "images"
    images.mkdir(parents=True)
    for i in range(6):
        Image.new("L", (8, 8), 40 * i).save(images / f"{i}.png")
    return images


def eval_folder(folder: Path, tiny_extractor: str, *extra: str) -> int:
    return main(["eval", "--folder", str(folder), "--dataset", "synthetic", "--channels", "1", "--num-real", "8",
                 "--metrics", "fid", "--feature-extractor", tiny_extractor, *extra])


@pytest.fixture
def no_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused input must stop gan eval before it scores anything."""
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("gan eval scored images it should have refused first")

    monkeypatch.setattr(evaluate, "compute_metrics", fail)


def test_eval_checks_where_the_result_goes_before_scoring(folder: Path, tiny_extractor: str, no_scoring, capsys):
    """A --json under a file, or a read-only folder for the default path, used to fail after the whole evaluation."""
    a_file = folder.parent / "a-file"
    a_file.write_text("mine")
    assert eval_folder(folder, tiny_extractor, "--json", str(a_file / "out.json")) == 2
    err = capsys.readouterr().err
    assert f"--json '{a_file / 'out.json'}'" in err and "is a file, not a folder" in err
    assert err.count("\n") == 1 and a_file.read_text() == "mine"
    assert eval_folder(folder, tiny_extractor, "--json", str(folder)) == 2
    assert "is a folder" in capsys.readouterr().err
    with read_only(folder.parent):
        assert eval_folder(folder, tiny_extractor) == 2  # default: beside the folder, in gen/
    err = capsys.readouterr().err
    assert f"the default result path '{folder}.eval.json'" in err and "cannot write in" in err
    assert err.count("\n") == 1


def test_eval_prints_the_scores_and_keeps_the_old_result_when_the_write_fails(folder: Path, tiny_extractor: str,
                                                                              monkeypatch, capsys):
    out = folder.parent / "result.json"
    out.write_text('{"old": true}\n')

    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(evaluate, "atomic_write", disk_full)
    assert eval_folder(folder, tiny_extractor, "--json", str(out)) == 2
    captured = capsys.readouterr()
    assert "| FID |" in captured.out
    last = captured.err.splitlines()[-1]  # after the scoring's progress lines
    assert last.startswith("gan eval: error: --json") and "cannot write the result (No space left on device" in last
    assert json.loads(out.read_text()) == {"old": True}
    monkeypatch.undo()
    assert eval_folder(folder, tiny_extractor, "--json", str(out)) == 0
    assert "fid" in json.loads(out.read_text())["metrics"]


def test_eval_names_a_damaged_image_and_mixed_sizes_before_scoring(folder: Path, tiny_extractor: str, no_scoring,
                                                                   capsys):
    """They used to raise UnidentifiedImageError / 'stack expects each tensor to be equal size' mid-scoring."""
    (folder / "3.png").write_bytes(b"\x89PNG but not really")
    assert eval_folder(folder, tiny_extractor) == 2
    err = capsys.readouterr().err
    assert f"--folder '{folder}': 1 of 6 images cannot be read (first: {folder / '3.png'}: " in err
    assert "remove or replace them" in err and err.count("\n") == 1
    Image.new("L", (10, 12)).save(folder / "3.png")
    assert eval_folder(folder, tiny_extractor) == 2
    err = capsys.readouterr().err
    assert f"({folder / '0.png'} is 8x8, {folder / '3.png'} is 10x12); resize them all to one size" in err


def test_device_strings_are_checked(monkeypatch: pytest.MonkeyPatch):
    """'foo' used to be torch's RuntimeError; 'cuda' on a CPU-only machine a traceback from loading a checkpoint."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    for spec in ("foo", "cuda:x", "meta"):
        with pytest.raises(UserError, match=rf"--device '{spec}'.*use {re.escape(devices.FORMS)}"):
            resolve_device(spec)
    for spec in ("cuda", "cuda:0"):
        with pytest.raises(UserError, match=rf"--device '{spec}': no CUDA GPU is available here; use --device cpu"):
            resolve_device(spec)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(UserError, match=r"--device 'cuda:2': this machine has 2 CUDA GPU\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")


def test_sample_and_eval_refuse_a_device_in_one_line(folder: Path, tmp_path: Path, tiny_extractor: str, no_scoring,
                                                    monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["sample", str(tmp_path / "any.ckpt"), "--device", "foo", "--out", str(tmp_path / "s.png")]) == 2
    assert "gan sample: error: --device 'foo' is not a device" in capsys.readouterr().err
    assert eval_folder(folder, tiny_extractor, "--device", "cuda") == 2
    err = capsys.readouterr().err
    assert "gan eval: error: --device 'cuda': no CUDA GPU" in err and err.count("\n") == 1
    assert not (tmp_path / "s.png").exists()


def test_a_damaged_offline_fashion_mnist_file_is_named_not_data_root(tmp_path: Path, fashion_source: Path):
    (fashion_source / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte.gz: the offline Fashion-MNIST file is damaged"):
        build_dataset("fashion-mnist", root=str(tmp_path / "data"), image_size=8, channels=1, download=False)
    assert not list((tmp_path / "data").rglob("*.tmp"))  # no half-written file left behind


def test_a_resume_writes_into_its_own_folder_below_a_read_only_out_dir(tmp_path: Path):
    """run.out_dir itself may be read-only (a shared parent) when the run's folder inside it is writable."""
    from gan.runs.folder import run_folder

    (tmp_path / "shared" / "mine").mkdir(parents=True)
    with read_only(tmp_path / "shared"):
        assert run_folder(tmp_path / "shared", "mine") == tmp_path / "shared" / "mine"
        with pytest.raises(UserError, match=r"run.out_dir=.*: cannot write in .*shared'"):
            run_folder(tmp_path / "shared", "new")  # a new run would be made there
