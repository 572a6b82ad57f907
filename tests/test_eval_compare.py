"""The FID callback in a real (tiny) ``gan fit``, ``gan eval`` of its checkpoint and of a PNG folder, and
``gan compare``; the tiny feature extractor of conftest.py stands in for Inception."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import fit_tiny_run
from torchvision.utils import save_image

from gan.callbacks.fidelity import FidelityCallback
from gan.cli import main
from gan.commands import evaluate
from gan.errors import UserError
from gan.metrics import EVAL_SEED, PROTOCOLS, InceptionWeights, Protocol
from gan.training.module import load_gan

CONFIG = """
model: {{arch: cnn, g_width: 16, d_width: 16, z_dim: 8, n_dis: 1, max_g_steps: 4, log_every_n_g_steps: 1}}
data: {{name: synthetic, image_size: 8, channels: 1, batch_size: 8, num_workers: 0, num_samples: 64}}
run: {{name: tiny, sample_every: 2, ckpt_every: 2}}
trainer:
  accelerator: cpu
  callbacks:
    - class_path: gan.callbacks.fidelity.FidelityCallback
      init_args: {{every_n_g_steps: 2, num_fake: 20, num_real: 40, feature_extractor: {extractor}, verbose: false}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_extractor: str) -> Path:
    """A 4-G-step run on synthetic data with the FID callback every 2 G steps."""
    return fit_tiny_run(tmp_path_factory.mktemp("runs"), CONFIG, tiny_extractor)


@pytest.fixture
def eval_args(tiny_extractor: str) -> list[str]:
    """gan eval options shared by the tests: the tiny extractor against 40 reference images, seed 2020."""
    return ["--feature-extractor", tiny_extractor, "--num-real", "40", "--seed", "2020"]


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_CACHE", str(tmp_path / "cache"))


def test_callback_logs_fid_against_g_step_and_keeps_the_best(run: Path, tiny_extractor):
    lines = [json.loads(x) for x in (run / "fidelity.jsonl").read_text().splitlines()]
    assert [x["g_step"] for x in lines] == [2, 4]
    assert lines[0]["protocol"]["num_fake"] == 20 and lines[0]["protocol"]["num_real_used"] == 40
    assert lines[0]["protocol"]["reference"] == "synthetic/train/grey"
    assert lines[0]["weights"]["ident"] == tiny_extractor
    rows = [r for r in (run / "logs" / "metrics.csv").read_text().splitlines()[1:] if r.split(",")[2]]
    header = (run / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    fid_col, step_col, g_col = header.index("eval/fid"), header.index("step"), header.index("g_step")
    logged = {int(r.split(",")[g_col]): float(r.split(",")[fid_col]) for r in rows if r.split(",")[fid_col]}
    assert logged == {x["g_step"]: x["metrics"]["fid"] for x in lines}
    assert all(r.split(",")[step_col] == r.split(",")[g_col] for r in rows)
    best = torch.load(run / "ckpt" / "best_fid.ckpt", map_location="cpu", weights_only=False)
    state = next(v for k, v in best["callbacks"].items() if "FidelityCallback" in k)
    assert state["best_fid"] == min(x["metrics"]["fid"] for x in lines)
    assert best["g_step"] == state["best_step"]


def test_eval_of_the_checkpoint_reproduces_the_callback(run: Path, capsys, eval_args):
    out = run / "eval.json"
    assert main(["eval", str(run / "ckpt" / "last.ckpt"), "--num-fake", "20", *eval_args, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    last = json.loads((run / "fidelity.jsonl").read_text().splitlines()[-1])
    assert result["metrics"]["fid"] == pytest.approx(last["metrics"]["fid"], rel=1e-12)
    assert result["g_step"] == 4 and result["protocol"]["reference"] == "synthetic/train/grey"  # from the ckpt
    table = capsys.readouterr().out
    assert "| FID |" in table and "synthetic/train/grey 8px, n=40" in table and "| 2020 |" in table


def test_a_protocol_is_one_registry_entry(run: Path, tmp_path: Path, tiny_extractor, monkeypatch, capsys):
    monkeypatch.setitem(PROTOCOLS, "tiny", Protocol("tiny", 12, 30, "these tests"))
    evaluate.parser().print_help()
    assert "tiny = 12 generated vs 30 real (these tests)" in capsys.readouterr().out
    out = tmp_path / "tiny.json"
    argv = ["eval", str(run / "ckpt" / "last.ckpt"), "--protocol", "tiny", "--feature-extractor", tiny_extractor]
    assert main([*argv, "--json", str(out)]) == 0
    protocol = json.loads(out.read_text())["protocol"]
    assert (protocol["name"], protocol["num_fake"], protocol["num_real_used"]) == ("tiny", 12, 30)
    assert protocol["seed"] == EVAL_SEED


def test_eval_of_a_png_folder_equals_eval_of_the_generator(run: Path, tmp_path: Path, eval_args):
    gan = load_gan(run / "ckpt" / "last.ckpt")
    z = torch.from_numpy(np.random.RandomState(2020).randn(30, gan.z_dim)).float()  # torch-fidelity's noise
    images = gan.generate(z)
    for i, image in enumerate(images):
        save_image((image + 1) / 2, tmp_path / f"{i:03d}.png")
    kw = [*eval_args, "--metrics", "fid,kid,isc", "--kid-subset-size", "20"]
    assert main(["eval", str(run / "ckpt" / "last.ckpt"), "--num-fake", "30", *kw, "--json", str(tmp_path / "a")]) == 0
    assert main(["eval", "--folder", str(tmp_path), "--dataset", "synthetic", "--channels", "1", *kw,
                 "--json", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in "ab")
    assert b["protocol"]["num_fake"] == 30 and b["folder"] == str(tmp_path.resolve())
    for key in ("fid", "kid_mean", "is_mean"):
        assert b["metrics"][key] == pytest.approx(a["metrics"][key], rel=1e-9), key


def test_eval_refuses_bad_requests(run: Path, tmp_path: Path, monkeypatch, capsys):
    assert main(["eval"]) == 2
    assert "either a checkpoint or --folder" in capsys.readouterr().err
    assert main(["eval", "--folder", str(tmp_path), "--dataset", "synthetic"]) == 2
    assert "holds no PNG" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    no_logits = InceptionWeights("offline", "unused", "fid-inception-torchscript:x", False)
    monkeypatch.setattr(evaluate, "resolve_weights", lambda spec: no_logits)
    assert main(["eval", str(run / "ckpt" / "last.ckpt"), "--metrics", "fid,isc", "--num-fake", "20",
                 "--num-real", "40", "--inception-weights", "offline"]) == 2
    err = capsys.readouterr().err
    assert "Inception Score needs" in err and "\n" == err[-1] and err.count("\n") == 1  # one line, no traceback


def test_compare_tables_and_plots_runs(run: Path, tmp_path: Path, capsys):
    other = tmp_path / "convnorm-run"
    other.mkdir()
    (other / "config.yaml").write_text("model:\n  arch: resnet\n  norm: convnorm\n")
    with open(other / "fidelity.jsonl", "w") as f:
        for step, fid, isc in ((100, 80.0, 3.0), (200, 40.0, 4.5), (300, 50.0, 4.0)):
            entry = {"g_step": step, "metrics": {"fid": fid, "is_mean": isc},
                     "protocol": {"num_fake": 5000, "reference": "cifar10/train", "num_real_used": 50000},
                     "weights": {"kind": "default"}}
            f.write(json.dumps(entry) + "\n")
    evaluated = tmp_path / "evaluated-run"  # trained without the callback, checkpoints scored by gan eval
    (evaluated / "ckpt").mkdir(parents=True)
    for step, fid in ((500, 90.0), (1000, 60.0)):
        entry = {"g_step": step, "metrics": {"fid": fid}, "weights": {"kind": "offline"},
                 "protocol": {"num_fake": 1000, "reference": "fashion-mnist/test/grey", "num_real_used": 1000}}
        (evaluated / "ckpt" / f"g{step:07d}.eval.json").write_text(json.dumps(entry))
    plot = tmp_path / "fid.png"
    runs = [str(run), str(other), str(evaluated)]
    assert main(["compare", *runs, "--plot", str(plot), "--out", str(tmp_path / "t.md")]) == 0
    out = capsys.readouterr().out
    assert "| evaluated-run | ? | ? | 1000 | 60.00 (@1000) | 60.00 | - | - | 1000 vs fashion-mnist/test/grey" in out
    assert "| convnorm-run | convnorm | resnet | 300 | 40.00 (@200) | 50.00 | 4.50 (@200) | 4.00 |" in out
    assert "| tiny | spectral | cnn | 4 |" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000
    assert (tmp_path / "t.md").read_text().startswith("| run |")
    assert main(["compare", str(tmp_path / "nope")]) == 2


def test_callback_on_other_ranks_takes_rank_zeros_fid_and_saves_the_best(tmp_path: Path, tiny_extractor,
                                                                          monkeypatch):
    import gan.callbacks.fidelity as fidelity

    evaluations = []  # a rank other than 0 extracts its share (tests/test_distributed_fid.py) and gets None back
    monkeypatch.setattr(fidelity, "compute_metrics", lambda *args, **kwargs: evaluations.append(kwargs) and None)
    monkeypatch.setattr(fidelity.GeneratorAdapter, "from_gan", staticmethod(lambda module, ema: None))
    monkeypatch.setattr(FidelityCallback, "reference", lambda self, trainer, module: None)
    saved: list[Path] = []

    def save_checkpoint(path, weights_only):
        assert weights_only is False  # the best checkpoint keeps optimizer state, so a run can resume from it
        saved.append(path)

    trainer = SimpleNamespace(
        is_global_zero=False, strategy=SimpleNamespace(broadcast=lambda value, src: 12.5), callbacks=[],
        default_root_dir=str(tmp_path), save_checkpoint=save_checkpoint, should_stop=False, world_size=2,
        global_rank=1,
    )
    module = SimpleNamespace(g_step=10, device="cpu")
    callback = FidelityCallback(every_n_g_steps=5, feature_extractor=tiny_extractor)
    callback.on_train_batch_end(trainer, module)
    assert len(evaluations) == 1 and evaluations[0]["verbose"] is False  # took part, quietly
    assert callback.best_fid == 12.5 and saved == [tmp_path / "ckpt" / "best_fid.ckpt"]
    callback.on_train_batch_end(trainer, module)  # same G step again: no second evaluation
    module.g_step = 11
    callback.on_train_batch_end(trainer, module)  # off schedule
    assert len(saved) == 1 and len(evaluations) == 1
    restored = FidelityCallback(feature_extractor=tiny_extractor)
    restored.load_state_dict(callback.state_dict())
    assert (restored.best_fid, restored.best_step, restored.last_step) == (12.5, 10, 10)


def test_callback_refuses_inception_score_without_logits_before_training(monkeypatch):
    import gan.callbacks.fidelity as fidelity

    no_logits = InceptionWeights("offline", "unused", "fid-inception-torchscript:x", False)
    monkeypatch.setattr(fidelity, "resolve_weights", lambda spec, verbose: no_logits)
    trainer = SimpleNamespace(is_global_zero=True, local_rank=0, strategy=SimpleNamespace(barrier=lambda name: None))
    with pytest.raises(UserError, match="isc needs Inception weights with a classifier"):
        FidelityCallback(isc=True, inception_weights="offline").on_fit_start(trainer, None)
    FidelityCallback(isc=False, inception_weights="offline").on_fit_start(trainer, None)  # FID alone is fine
