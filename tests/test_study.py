"""``gan study`` end to end on a 2x2 grid of tiny synthetic runs: training as separate processes, evaluation of
every checkpoint, the grouped report, and continuing an interrupted study."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from gan.cli import main
from gan.study import runner
from gan.study.grid import load_grid

BASE = {
    "model": {"arch": "cnn", "z_dim": 8, "g_width": 4, "d_width": 4, "n_dis": 1, "max_g_steps": 4,
              "log_every_n_g_steps": 1},
    "data": {"name": "synthetic", "image_size": 8, "channels": 1, "batch_size": 4, "num_workers": 0,
             "num_samples": 32},
    "run": {"sample_every": 2, "ckpt_every": 1},
    "trainer": {"accelerator": "cpu", "enable_model_summary": False},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, tiny_extractor: str) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("study")
    (root / "base.yaml").write_text(yaml.safe_dump(BASE))
    grid = {
        "name": "tiny", "base": str(root / "base.yaml"), "out_dir": str(root / "out"), "seeds": [0, 1],
        "variants": {"none": {"model.norm": "none"}, "convnorm-identity": {
            "model.norm": "convnorm", "model.convnorm": {"affine_init": "identity"}}},
        "callbacks": [{"class_path": "gan.callbacks.spectral.SpectralNormMonitor", "init_args": {"every_n_g_steps": 2}},
                      {"class_path": "gan.callbacks.gradients.GradientNormMonitor",
                       "init_args": {"every_n_g_steps": 2, "num_images": 4}}],
        "eval": {"curve": {"every": 2, "num_fake": 10, "num_real": 40, "feature_extractor": tiny_extractor},
                 "final": {"num_fake": 20, "num_real": 40, "feature_extractor": tiny_extractor}},
    }
    (root / "grid.yaml").write_text(yaml.safe_dump(grid))
    return root / "grid.yaml", root / "out" / "tiny"


@pytest.fixture(autouse=True)
def tiny_gan(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    launcher = Path(__file__).with_name("gan_with_tiny_extractor.py")
    monkeypatch.setattr(runner, "GAN_COMMAND", [sys.executable, str(launcher)])
    monkeypatch.setenv("GAN_CACHE", str(tmp_path_factory.getbasetemp() / "study-cache"))


def test_study_trains_scores_and_reports_every_run(study, capsys):
    grid, out = study
    assert main(["study", str(grid), "--jobs", "2"]) == 0
    started = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("start ")]
    assert len(started) == len(set(started)) == 4 * (1 + 2 + 1)  # per run: training, 2 curve points, final
    runs = sorted(p.name for p in out.iterdir() if (p / "study.json").is_file())
    assert runs == ["convnorm-identity-s0", "convnorm-identity-s1", "none-s0", "none-s1"]
    for name in runs:
        run = out / name
        config = yaml.safe_load((run / "config.yaml").read_text())
        seed = int(name[-1])
        assert config["seed_everything"] == config["model"]["seed"] == config["data"]["seed"] == seed
        assert config["model"]["norm"] == ("none" if name.startswith("none") else "convnorm")
        curve = {json.loads(p.read_text())["g_step"]: json.loads(p.read_text())["protocol"]["num_fake"]
                 for p in (run / "ckpt").glob("g*.eval.json")}
        assert curve == {2: 10, 4: 10}  # checkpoints at 1..4, the curve scores every 2nd
        final = json.loads((run / "eval" / "final.json").read_text())
        assert final["g_step"] == 4 and final["protocol"]["num_fake"] == 20
        assert len((run / "gradient_norms.jsonl").read_text().splitlines()) == 2
    report = (out / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith(("| none ", "| convnorm-")) and " ± " in line]
    assert len(rows) == 4  # two variants in the summary and in the spectral-norm table, mean +- std over two seeds
    first, second = load_grid(grid).regimes[0].variants  # pairs are named in the grid's order
    assert "## Statistics over seeds" in report and f"| final FID | {first} vs {second} |" in report
    for plot in ("fid_vs_step.png", "spectral_norms.png"):
        assert (out / plot).stat().st_size > 5000


def test_study_skips_what_is_done_and_resumes_what_was_interrupted(study, capsys):
    grid, out = study
    run = out / "none-s1"
    finished = (run / "ckpt" / "last.ckpt").read_bytes()
    shutil.copy(run / "ckpt" / "g0000002.ckpt", run / "ckpt" / "last.ckpt")  # as if killed after step 2
    (run / "eval" / "final.json").unlink()
    (out / "convnorm-identity-s0" / "ckpt" / "g0000002.eval.json").unlink()
    capsys.readouterr()
    assert main(["study", str(grid), "--jobs", "2"]) == 0
    started = sorted(line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("start "))
    assert started == ["convnorm-identity-s0-g0000002", "none-s1-final", "none-s1-g0000004", "none-s1-train-resume"]
    resumed = runner.trained_steps(runner.Run("none", 1, run, {}))
    assert resumed == 4
    import torch

    a = torch.load(run / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    b = torch.load(__import__("io").BytesIO(finished), map_location="cpu", weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # the resumed run ends where the uninterrupted one did


def test_report_counts_only_runs_that_trained(tmp_path):
    from gan.study.report import RunSummary, summary_table

    stuck = RunSummary(tmp_path / "a-s0", "a", 0, g_steps=400, speed=3.0)
    waiting = RunSummary(tmp_path / "a-s1", "a", 1)  # queued: folder made, nothing logged
    learned = RunSummary(tmp_path / "b-s0", "b", 0, g_steps=400, separates_at=50)
    table = summary_table({"a": [stuck, waiting], "b": [learned, RunSummary(tmp_path / "b-s1", "b", 1)]})
    assert "| a | 1 | 400 | - | - | 3.00 | never |" in table
    assert "| b | 1 | 400 | - | - | - | 50 |" in table


def test_train_only_trains_and_a_plain_run_then_only_scores(tmp_path, tiny_extractor, capsys):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    grid = {"name": "gpu", "base": str(tmp_path / "base.yaml"), "out_dir": str(tmp_path / "out"), "seeds": [0],
            "variants": {"none": {"model.norm": "none"}},
            "eval": {"curve": {"every": 4, "num_fake": 10, "num_real": 40, "feature_extractor": tiny_extractor},
                     "final": {"num_fake": 10, "num_real": 40, "feature_extractor": tiny_extractor}}}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    assert main(["study", str(tmp_path / "grid.yaml"), "--train-only", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "start  none-s0-train" in out and "-final" not in out and "report:" not in out
    run = tmp_path / "out" / "gpu" / "none-s0"
    assert (run / "ckpt" / "last.ckpt").is_file() and not (run / "eval").exists()
    assert main(["study", str(tmp_path / "grid.yaml"), "--dry-run"]) == 0
    todo = [line for line in capsys.readouterr().out.splitlines() if line.startswith("would run: gan ")]
    assert len(todo) == 2 and all(line.startswith("would run: gan eval ") for line in todo)  # g4 curve, final
    assert main(["study", str(tmp_path / "grid.yaml"), "--train-only", "--report-only"]) == 2
    assert main(["compare", str(run), "--group", str(tmp_path / "report")]) == 0  # no curve, no spectral monitor
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| none | 1 | 4 |" in text and "spectral norms of D" not in text and ".png" not in text
    assert not list((tmp_path / "report").glob("*.png"))


def test_bad_grid_is_one_line(tmp_path, capsys):
    (tmp_path / "grid.yaml").write_text("base: nowhere.yaml\nseeds: [0]\nvariants: {a: {}}\n")
    assert main(["study", str(tmp_path / "grid.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "base='nowhere.yaml' does not exist" in err and len(err.splitlines()) == 1


def test_compare_groups_runs_by_variant(study, tmp_path):
    _, out = study
    runs = sorted(str(p) for p in out.iterdir() if (p / "study.json").is_file())
    assert main(["compare", *runs, "--group", str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "| none | 2 | 4 |" in text and "| convnorm-identity | 2 | 4 |" in text
    assert (tmp_path / "fid_vs_step.png").is_file() and (tmp_path / "spectral_norms.png").is_file()
