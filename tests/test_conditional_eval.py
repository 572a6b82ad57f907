"""Sampling and evaluating class-conditional models: ``gan sample --class / --classes / --class-grid``, the label
protocol of ``gan eval`` and the FID callback, intra-class FID against torch-fidelity's FID of the same per-class
image sets, precision / recall against torch-fidelity's, ``gan compare`` columns and study eval options. The tiny
feature extractor of conftest.py stands in for Inception."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch_fidelity
import yaml
from conftest import files_of, fit_tiny_run
from PIL import Image
from torch.utils.data import Dataset

from gan import metrics as M
from gan.callbacks import save_grid
from gan.callbacks.samples import class_grid_inputs
from gan.cli import main
from gan.data import SyntheticImages
from gan.errors import UserError
from gan.study.grid import EVAL_FIELDS, EVAL_FLAGS, load_grid
from gan.study.runner import eval_argv
from gan.training.module import load_gan

CLASSES = 3
CONFIG = """
model: {{arch: cnn, g_width: 16, d_width: 16, z_dim: 8, n_dis: 1, max_g_steps: 4, log_every_n_g_steps: 1,
        num_classes: 3, ema: true, ema_decay: 0.5}}
data: {{name: synthetic, image_size: 8, channels: 1, batch_size: 8, num_workers: 0, num_samples: 64}}
run: {{name: cond, sample_every: 2, ckpt_every: 2, sample_num: 6}}
trainer:
  accelerator: cpu
  callbacks:
    - class_path: gan.callbacks.fidelity.FidelityCallback
      init_args: {{every_n_g_steps: 4, num_fake: 20, num_real: 40, feature_extractor: {extractor}, verbose: false}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_extractor: str) -> Path:
    """A 4-G-step conditional run (3 classes) on synthetic data with the FID callback at its end."""
    return fit_tiny_run(tmp_path_factory.mktemp("runs"), CONFIG, tiny_extractor)


@pytest.fixture(scope="module")
def ckpt(run: Path) -> str:
    """The run's last checkpoint with each class's conditional-BatchNorm bias moved apart (4 G steps leave the
    classes nearly alike), so that images of different classes clearly differ."""
    checkpoint = torch.load(run / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    for key, value in checkpoint["state_dict"].items():
        if key.startswith(("generator.", "generator_ema.")) and key.endswith(".bias.weight"):
            value += torch.arange(CLASSES, dtype=value.dtype)[:, None] * 0.5
    path = run / "ckpt" / "classes.ckpt"
    torch.save(checkpoint, path)
    return str(path)


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_CACHE", str(tmp_path / "cache"))


class Images(Dataset):
    """uint8 3xHxW tensors as torch-fidelity reads a dataset."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] grey images as uint8 RGB, written out here (as save_image rounds) rather than through gan.metrics."""
    pixels = ((images + 1) / 2 * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    return pixels.repeat(1, 3, 1, 1)


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


# ---- gan sample ---------------------------------------------------------------------------------------------------
def test_sample_one_class_and_a_class_grid(ckpt: str, tmp_path: Path, capsys):
    gan = load_gan(ckpt)
    assert main(["sample", ckpt, "--class", "2", "--num", "4", "--out", str(tmp_path / "two.png")]) == 0
    z = gan.sample_z(4, torch.Generator().manual_seed(0))  # --class K: the same latents as class-grid rows
    expected = save_grid(gan.generate(z, torch.full((4,), 2)), tmp_path / "expected-two.png")
    assert (tmp_path / "two.png").read_bytes() == expected.read_bytes()
    assert "classes 2" in capsys.readouterr().out

    assert main(["sample", ckpt, "--class-grid", "--num", "6", "--out", str(tmp_path / "grid.png")]) == 0
    z, y = class_grid_inputs(gan, 2, 0)
    assert y.tolist() == [0, 0, 1, 1, 2, 2]
    expected = save_grid(gan.generate(z, y), tmp_path / "expected-grid.png", nrow=2)
    assert (tmp_path / "grid.png").read_bytes() == expected.read_bytes()
    assert Image.open(tmp_path / "grid.png").size == (2 * 8 + 3 * 2, CLASSES * 8 + 4 * 2)  # 3 rows of 2

    assert main(["sample", ckpt, "--classes", "2,0", "--num", "4", "--out", str(tmp_path / "rows.png")]) == 0
    rows = torch.cat([torch.arange(4, 6), torch.arange(0, 2)])  # class 2's row, then class 0's
    expected = save_grid(gan.generate(z[rows], y[rows]), tmp_path / "expected-rows.png", nrow=2)
    assert (tmp_path / "rows.png").read_bytes() == expected.read_bytes()


def test_class_grid_rows_differ_by_class_and_share_latents(ckpt: str, tmp_path: Path):
    assert main(["sample", ckpt, "--class-grid", "--num", "6", "--folder", "--out", str(tmp_path / "f")]) == 0
    files = sorted(str(p.relative_to(tmp_path / "f")) for p in (tmp_path / "f").rglob("*.png"))
    assert files == ["0/000000.png", "0/000001.png", "1/000002.png", "1/000003.png", "2/000004.png", "2/000005.png"]
    gan = load_gan(ckpt)
    z, _ = class_grid_inputs(gan, 2, 0)
    assert torch.equal(z[0:2], z[2:4]) and torch.equal(z[0:2], z[4:6])  # the same latents in every row
    assert not np.array_equal(png(tmp_path / "f/0/000000.png"), png(tmp_path / "f/1/000002.png"))  # class alone


def test_sample_without_a_class_draws_labels_uniformly_after_the_latents(ckpt: str, tmp_path: Path, capsys):
    out = tmp_path / "uniform"
    assert main(["sample", ckpt, "--num", "30", "--seed", "3", "--folder", "--out", str(out), "--batch-size", "7"]) == 0
    assert "labels drawn uniformly" in capsys.readouterr().out
    gan = load_gan(ckpt)
    noise = torch.Generator().manual_seed(3)
    z = gan.sample_z(30, noise)
    y = torch.randint(CLASSES, (30,), generator=noise)  # drawn after the latents, as in training
    assert {p.parent.name for p in out.rglob("*.png")} == {"0", "1", "2"}
    for i in (0, 13, 29):
        (path,) = out.glob(f"*/{i:06d}.png")
        assert path.parent.name == str(int(y[i]))
        save_grid(gan.generate(z[i : i + 1], y[i : i + 1]), tmp_path / "one.png", nrow=1)
        assert np.array_equal(png(path), png(tmp_path / "one.png"))  # a grid of one image is that image


@pytest.mark.parametrize("args,message", [
    (["--class", "3"], "class 3 does not exist; the model has classes 0..2"),
    (["--class", "-1"], "class -1 does not exist"),
    (["--classes", "0,x"], "give class indices like 3 or 0,3,7"),
    (["--class", ""], "--class '': give class indices like 3 or 0,3,7"),  # not silently 'no class asked'
    (["--classes", "1,1"], "a class is listed twice"),
])
def test_sample_bad_classes_are_one_line_and_write_nothing(ckpt: str, tmp_path: Path, capsys, args, message):
    out = tmp_path / "out"
    out.mkdir()
    for target in (["--out", str(out / "g.png")], ["--folder", "--out", str(out / "f")]):
        assert main(["sample", ckpt, *args, *target]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert files_of(out) == {}


def test_class_options_on_an_unconditional_checkpoint_are_refused(tiny_fit, tmp_path: Path, capsys):
    tiny_fit(tmp_path)
    ckpt = str(tmp_path / "ckpt" / "last.ckpt")
    for option in (["--class", "0"], ["--classes", "0,1"], ["--class-grid"]):
        assert main(["sample", ckpt, *option, "--out", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert "unconditional" in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()
    assert main(["eval", ckpt, "--intra-fid", "--feature-extractor", "gan-tiny-test", "--num-fake", "20",
                 "--num-real", "40", "--json", str(tmp_path / "e.json")]) == 2
    assert "needs a class-conditional generator" in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()


# ---- the adapter's labels -------------------------------------------------------------------------------------------
def test_adapter_labels_are_seeded_uniform_and_batch_size_free(ckpt: str):
    adapter = M.GeneratorAdapter.from_gan(load_gan(ckpt))
    assert adapter.classes == CLASSES and adapter.num_classes == 0  # torch-fidelity never draws labels itself
    labels = adapter.labels(3000, 7)
    assert torch.equal(labels, torch.randint(CLASSES, (3000,), generator=torch.Generator().manual_seed(7)))
    assert torch.equal(labels, adapter.labels(3000, 7)) and not torch.equal(labels, adapter.labels(3000, 8))
    assert torch.bincount(labels).tolist() == pytest.approx([1000] * CLASSES, abs=90)
    z = torch.randn(10, adapter.z_size, generator=torch.Generator().manual_seed(0))
    adapter.eval()
    with adapter.sampling(10, 7):
        in_pieces = torch.cat([adapter(z[:4]), adapter(z[4:])])
    assert torch.equal(in_pieces, adapter(z, labels[:10]))
    assert torch.equal(adapter.for_class(1)(z), adapter(z, torch.ones(10, dtype=torch.long)))
    with pytest.raises(RuntimeError, match="inside sampling"):
        adapter(z)
    with pytest.raises(UserError, match="class 3 does not exist"):
        adapter.for_class(3)


# ---- gan eval -------------------------------------------------------------------------------------------------------
def test_eval_records_the_label_protocol_and_reproduces_the_callback(run: Path, tmp_path: Path, tiny_extractor):
    out = tmp_path / "eval.json"
    assert main(["eval", str(run / "ckpt" / "last.ckpt"), "--num-fake", "20", "--num-real", "40",
                 "--feature-extractor", tiny_extractor, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    (callback,) = [json.loads(x) for x in (run / "fidelity.jsonl").read_text().splitlines()]
    for recorded in (result, callback):
        assert recorded["protocol"]["num_classes"] == CLASSES
        assert "drawn uniformly over 3 classes" in recorded["protocol"]["labels"]
        assert recorded["protocol"]["reference"] == "synthetic/train/grey/3-classes"  # the labelled training data
    assert result["metrics"]["fid"] == pytest.approx(callback["metrics"]["fid"], rel=1e-12)


def test_intra_class_fid_equals_torch_fidelity_fid_of_each_class(ckpt: str, tmp_path: Path, tiny_extractor,
                                                                  capsys):
    out = tmp_path / "intra.json"
    assert main(["eval", ckpt, "--num-fake", "300", "--num-real", "300", "--feature-extractor", tiny_extractor,
                 "--intra-fid", "--metrics", "fid", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    intra = result["intra_fid"]
    assert intra["num_fake_per_class"] == M.fake_per_class(300, CLASSES) == 100
    assert set(intra["per_class"]) == {"0", "1", "2"}

    # independently: each class's fakes from torch-fidelity's noise, its reals from the seeded 300-image subset
    gan = load_gan(ckpt)
    z = torch.from_numpy(np.random.RandomState(2020).randn(100, gan.z_dim)).float()
    data = SyntheticImages(1024, 8, 1, num_classes=CLASSES)  # the synthetic reference the checkpoint names
    subset = sorted(torch.randperm(1024, generator=torch.Generator().manual_seed(0))[:300].tolist())
    for k in range(CLASSES):
        fakes = uint8(gan.generate(z, torch.full((100,), k)))
        reals = uint8(torch.stack([data[i][0] for i in subset if data[i][1] == k]))
        theirs = torch_fidelity.calculate_metrics(input1=Images(fakes), input2=Images(reals), fid=True,
                                                  feature_extractor=tiny_extractor, cuda=False, cache=False,
                                                  save_cpu_ram=True, verbose=False)["frechet_inception_distance"]
        assert intra["per_class"][str(k)] == pytest.approx(theirs, rel=1e-6), k
        assert intra["num_real_per_class"][str(k)] == len(reals)
    assert sum(intra["num_real_per_class"].values()) == 300
    assert result["metrics"]["intra_fid"] == pytest.approx(np.mean(list(intra["per_class"].values())), rel=1e-12)
    assert result["metrics"]["intra_fid"] == intra["mean"] > 0
    table = capsys.readouterr().out
    assert f"| intra-class FID (mean) | {intra['mean']:.4f} | 100 per class |" in table
    assert f"| FID of class 2 | {intra['per_class']['2']:.4f} | 100 of class 2 |" in table

    cached = sorted(p.name for p in (tmp_path / "cache" / "reference").glob("*-n300-class*"))
    assert [re.search(r"-n300-class(\d)-", name)[1] for name in cached] == ["0", "1", "2"]  # cached per class
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "reference").iterdir()}
    assert main(["eval", ckpt, "--num-fake", "300", "--num-real", "300", "--feature-extractor", tiny_extractor,
                 "--intra-fid", "--metrics", "fid", "--json", str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text())["intra_fid"]["per_class"] == intra["per_class"]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "reference").iterdir()} == before  # reused


def test_intra_num_fake_sets_the_per_class_images_alone(ckpt: str, tmp_path: Path, tiny_extractor):
    """--intra-num-fake 60 scores 20 images per class, the same ones as --num-fake 60 would, while the plain FID
    keeps its --num-fake images."""
    common = ["eval", ckpt, "--num-real", "300", "--feature-extractor", tiny_extractor, "--intra-fid", "--metrics",
              "fid"]
    assert main([*common, "--num-fake", "300", "--intra-num-fake", "60", "--json", str(tmp_path / "a.json")]) == 0
    assert main([*common, "--num-fake", "60", "--json", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("a", "b"))
    assert a["intra_fid"]["num_fake_per_class"] == 20 and a["protocol"]["num_fake"] == 300
    assert a["intra_fid"]["per_class"] == b["intra_fid"]["per_class"]
    assert a["metrics"]["fid"] != b["metrics"]["fid"]


def test_intra_class_fid_refusals_are_one_line_before_any_work(ckpt: str, tmp_path: Path, tiny_extractor, capsys):
    flat = tmp_path / "flat"  # an unlabelled reference: a flat image folder
    flat.mkdir()
    for i in range(4):
        Image.new("L", (8, 8), 40 * i).save(flat / f"{i}.png")
    base = ["eval", ckpt, "--feature-extractor", tiny_extractor, "--num-real", "4", "--intra-fid"]
    cases = [
        (["--num-fake", "5"], "--num-fake 5 gives 1 generated images per class (3 classes)"),
        (["--num-fake", "20", "--dataset", "folder", "--root", str(flat)], "has no class labels"),
        (["--num-fake", "20", "--intra-num-fake", "4"], "--intra-num-fake 4 gives 1 generated images per class"),
    ]
    for args, message in cases:
        assert main([*base, *args, "--json", str(tmp_path / "r.json")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "cache" / "reference").exists()


def test_intra_class_fid_needs_the_models_classes_and_two_reals_per_class(ckpt: str):
    adapter = M.GeneratorAdapter.from_gan(load_gan(ckpt))
    five = M.Reference.from_data("synthetic", "train", 8, 1, 40, num_classes=5)
    with pytest.raises(UserError, match="has 5 classes but the generator 3"):
        M.check_intra_class_fid(adapter, five, 30)
    assert M.check_intra_class_fid(adapter, M.Reference.from_data("synthetic", "train", 8, 1, 40, num_classes=3),
                                   31) == 10
    few = M.Reference("few", lambda: M.UInt8Images(SyntheticImages(4, 8, 1, num_classes=3)), 8, None)
    assert len(few.for_class(0).dataset()) == 2  # images 0 and 3
    with pytest.raises(UserError, match="has 1 images of class 2 among its 4; raise --num-real"):
        few.for_class(2).dataset()


def test_per_class_references_have_their_own_cache_key_and_the_old_keys_stay(tmp_path: Path, tiny_extractor):
    ref = M.Reference.from_data("fashion-mnist", "test", 32, 1, 2000)
    path = ref.cache_path(tmp_path, tiny_extractor, "feat", "w")
    old_key = {"reference": "fashion-mnist/test/grey", "resolution": 32, "num_real": 2000, "real_subset_seed": 0,
               "fingerprint": "", "extractor": tiny_extractor, "layer": "feat", "weights": "w"}
    digest = hashlib.sha256(json.dumps(old_key, sort_keys=True).encode()).hexdigest()[:16]
    assert path.name == f"fashion-mnist-test-grey-32px-n2000-{tiny_extractor}-{digest}.pt"  # as before classes
    keys = {ref.for_class(k).cache_path(tmp_path, tiny_extractor, "feat", "w") for k in range(10)}
    assert len(keys) == 10 and path not in keys
    assert ref.for_class(3).describe() == {**ref.describe(), "class": 3}


def test_eval_of_a_class_subfolder_sample_folder_scores_all_images(ckpt: str, tmp_path: Path, tiny_extractor,
                                                                    capsys):
    folder = tmp_path / "fakes"
    assert main(["sample", ckpt, "--num", "30", "--folder", "--out", str(folder)]) == 0
    assert len({p.parent for p in folder.rglob("*.png")}) == CLASSES
    common = ["--feature-extractor", tiny_extractor, "--num-real", "40", "--metrics", "fid"]
    assert main(["eval", "--folder", str(folder), "--dataset", "synthetic", "--channels", "1", *common,
                 "--json", str(tmp_path / "folder.json")]) == 0
    result = json.loads((tmp_path / "folder.json").read_text())
    assert result["protocol"]["num_fake"] == 30
    flat = tmp_path / "flat"  # the same images in one flat folder: the same FID
    flat.mkdir()
    for p in folder.rglob("*.png"):
        (flat / p.name).write_bytes(p.read_bytes())
    assert main(["eval", "--folder", str(flat), "--dataset", "synthetic", "--channels", "1", *common,
                 "--json", str(tmp_path / "flat.json")]) == 0
    assert json.loads((tmp_path / "flat.json").read_text())["metrics"]["fid"] == result["metrics"]["fid"]
    capsys.readouterr()
    assert main(["eval", "--folder", str(folder), "--dataset", "synthetic", "--channels", "1", *common,
                 "--intra-fid"]) == 2
    err = capsys.readouterr().err
    assert "--intra-fid scores a conditional checkpoint" in err and err.count("\n") == 1


# ---- precision and recall -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditional", [False, True])
def test_precision_recall_equal_torch_fidelity(ckpt: str, tmp_path: Path, tiny_extractor, tiny_images,
                                               conditional: bool):
    reals = M.UInt8Images(SyntheticImages(60, 8, 1, num_classes=CLASSES) if conditional else tiny_images(60))
    reference = M.Reference("tiny/train", lambda: reals, 8, None)
    if conditional:  # the generator with the adapter's labels; torch-fidelity gets the same images as a set
        gan = load_gan(ckpt)
        fake = M.GeneratorAdapter.from_gan(gan)
        z = torch.from_numpy(np.random.RandomState(5).randn(50, gan.z_dim)).float()
        images = uint8(gan.generate(z, fake.labels(50, 5)))
    else:
        others = M.UInt8Images(tiny_images(50, seed=1))
        images = torch.stack([others[i] for i in range(50)])
        fake = Images(images)
    ours = M.compute_metrics(fake, reference, num_fake=50, fid=True, prc=True, feature_extractor=tiny_extractor,
                             seed=5, cache=tmp_path, verbose=False)
    theirs = torch_fidelity.calculate_metrics(input1=Images(images), input2=reals, prc=True, fid=True,
                                              feature_extractor=tiny_extractor, cuda=False, cache=False,
                                              save_cpu_ram=True, verbose=False)
    assert 0 <= ours["metrics"]["precision"] <= 1 and 0 <= ours["metrics"]["recall"] <= 1
    assert conditional or 0 < ours["metrics"]["precision"] < 1  # a value, not a degenerate 0 or 1
    assert ours["metrics"]["precision"] == theirs["precision"] and ours["metrics"]["recall"] == theirs["recall"]
    assert ours["metrics"]["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert ours["protocol"]["prc_neighborhood"] == 3
    assert ("labels" in ours["protocol"]) == conditional


# ---- gan compare and study grids -----------------------------------------------------------------------------------
def test_compare_shows_intra_fid_precision_recall_when_present(tmp_path: Path, capsys):
    runs = []
    for name, extra in (("plain", {}), ("cond", {"intra_fid": 81.25, "precision": 0.625, "recall": 0.4375})):
        run = tmp_path / name
        (run / "ckpt").mkdir(parents=True)
        (run / "config.yaml").write_text("model:\n  arch: cnn\n  norm: spectral\n")
        for step, fid in ((500, 90.0), (1000, 60.0)):
            metrics = {"fid": fid, **(extra if step == 1000 else {})}
            entry = {"g_step": step, "metrics": metrics, "weights": {"kind": "offline"},
                     "protocol": {"num_fake": 2000, "reference": "fashion-mnist/test/grey", "num_real_used": 2000}}
            (run / "ckpt" / f"g{step:07d}.eval.json").write_text(json.dumps(entry))
        runs.append(str(run))
    assert main(["compare", *runs, "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "| final IS | intra-FID | precision | recall | protocol |" in out
    assert "| cond | spectral | cnn | 1000 | 60.00 (@1000) | 60.00 | - | - | 81.2 (@1000) | 0.625 (@1000) | " \
           "0.438 (@1000) |" in out
    assert "| plain | spectral | cnn | 1000 | 60.00 (@1000) | 60.00 | - | - | - | - | - |" in out
    assert main(["compare", runs[0], "--plot", str(tmp_path / "q.png")]) == 0
    assert "intra-FID" not in capsys.readouterr().out  # no such column when no run has it


def test_study_eval_options_turn_into_gan_eval_flags(tmp_path: Path):
    base = Path(__file__).parents[1] / "configs" / "fashion_mnist_conditional.yaml"
    assert set(EVAL_FLAGS) <= set(EVAL_FIELDS)
    final = {"num_fake": 2000, "num_real": 2000, "split": "test", "inception_weights": "offline",
             "intra_fid": True, "prc": True}
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(yaml.safe_dump({"base": str(base), "seeds": [0], "variants": {"a": {"model.norm": "none"}},
                                         "eval": {"curve": {"num_fake": 500}, "final": final}}))
    grid = load_grid(grid_file, tmp_path).regimes[0]  # a grid without regimes is one unnamed regime
    argv = eval_argv(Path("last.ckpt"), grid.final, Path("final.json"))
    assert argv == ["eval", "last.ckpt", "--json", "final.json", "--metrics", "fid,prc", "--intra-fid",
                    "--inception-weights", "offline", "--num-fake", "2000", "--num-real", "2000", "--split", "test"]
    assert grid.final == final  # eval_argv leaves the grid's protocol as it was
    assert eval_argv(Path("c.ckpt"), grid.curve, Path("c.json"))[4:] == ["--metrics", "fid", "--num-fake", "500"]
    grid_file.write_text(grid_file.read_text().replace("prc: true", "prc: 3"))
    with pytest.raises(UserError, match="intra_fid / prc true or false"):
        load_grid(grid_file, tmp_path)
