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
    assert len(rows) == 6  # two variants in the final-FID, summary and spectral-norm tables, mean +- std over 2 seeds
    first, second = yaml.safe_load(grid.read_text())["variants"]  # Welch's test of every pair, in grid order
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
    assert "| a | 1 | 400 | - | 3.00 | never |" in table  # no run has a curve: no best-FID column
    assert "| b | 1 | 400 | - | - | 50 |" in table
    learned.curve, learned.final_fid, learned.final_metrics = {400: 80.0}, 90.0, {"fid": 90.0, "precision": 0.25}
    table = summary_table({"a": [stuck, waiting], "b": [learned]})
    assert "| final FID | best FID (curve) | precision | G-steps/s |" in table  # a metric some run has: a column
    assert "| b | 1 | 400 | 90.0 | 80.0 | 0.250 | - | 50 |" in table and "| a | 1 | 400 | - | - | - | 3.00 |" in table


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


# ---- launchers: submitit's local executor end to end, the SLURM submission without a cluster ------------------
def _tiny_grid(root: Path, extractor: str, seeds: tuple[int, ...] = (0, 1), **extra: object) -> dict:
    """The grid of the ``study`` fixture (same runs, so the same weights; ``seeds`` picks some), under ``root``."""
    (root / "base.yaml").write_text(yaml.safe_dump(BASE))
    return {"name": "tiny", "base": str(root / "base.yaml"), "out_dir": str(root / "out"), "seeds": list(seeds),
            "variants": {"none": {"model.norm": "none"}, "convnorm-identity": {
                "model.norm": "convnorm", "model.convnorm": {"affine_init": "identity"}}},
            "eval": {"curve": {"every": 2, "num_fake": 10, "num_real": 40, "feature_extractor": extractor},
                     "final": {"num_fake": 20, "num_real": 40, "feature_extractor": extractor}}, **extra}


def test_submitit_jobs_run_the_grid_and_a_killed_run_resumes_alone(tmp_path, tiny_extractor, monkeypatch, capsys):
    import os
    import subprocess

    import torch

    from gan.study.grid import load_grid

    checkout = str(Path(__file__).parents[1])  # submitit's job processes import this checkout's gan
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([checkout, os.environ.get("PYTHONPATH", "")]))
    kill = {"class_path": "conftest.SigtermOnce", "init_args": {"run": "none-s1", "at_g_step": 2}}
    # one seed: every job is a process importing torch (21 of them with two seeds: 3 of the suite's 11 minutes)
    grid_text = yaml.safe_dump(_tiny_grid(tmp_path, tiny_extractor, seeds=(1,), callbacks=[kill]))
    (tmp_path / "grid.yaml").write_text(grid_text)
    command = ["study", str(tmp_path / "grid.yaml"), "--launcher", "submitit-local"]
    assert main(command) == 1  # none-s1 was stopped by SIGTERM: its job fails, the others finish
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith("FAILED none-s1-train ") and "none-s1-train.log" in failed[0]
    assert "stopped by a signal" in failed[0]
    grid = load_grid(tmp_path / "grid.yaml")
    jobs = {run.name: [job.label for job in runner.plan(grid, [run])] for run in grid.runs()}
    # everything else trained and scored, as separate jobs
    assert jobs == {"convnorm-identity-s1": [], "none-s1": ["none-s1-train-resume"]}
    assert main(command) == 0
    submitted = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("submit ")]
    assert submitted == ["none-s1-train-resume", "none-s1-g0000002", "none-s1-g0000004", "none-s1-final"]
    reference = yaml.safe_load((grid.dir / "configs" / "none-s1.yaml").read_text())  # the same run, uninterrupted
    reference["trainer"]["callbacks"] = [c for c in reference["trainer"]["callbacks"] if c != kill]
    reference["run"]["out_dir"] = str(tmp_path / "reference")
    (tmp_path / "reference.yaml").write_text(yaml.safe_dump(reference))
    subprocess.run([*runner.GAN_COMMAND, "fit", "--config", str(tmp_path / "reference.yaml")], check=True,
                   capture_output=True, env={**os.environ, **runner.job_env(1)})  # the jobs' thread count
    ours = torch.load(grid.dir / "none-s1" / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    local = torch.load(tmp_path / "reference" / "none-s1" / "ckpt" / "last.ckpt", map_location="cpu",
                       weights_only=False)
    assert ours["g_step"] == local["g_step"] == 4
    assert all(torch.equal(ours["state_dict"][k], local["state_dict"][k]) for k in local["state_dict"])
    report = (grid.dir / "report.md").read_text()
    assert all(f"| {variant} | 1 | 4 |" in report for variant in grid.regimes[0].variants)  # both runs, 4 G steps


def test_slurm_submission_is_what_the_grid_asks(tmp_path, tiny_extractor, monkeypatch):
    """sbatch and srun are stand-ins that record the submission file: submitit writes it as for a real cluster."""
    from gan.study import cluster
    from gan.study.grid import load_grid

    slurm = {"partition": "gpu", "gpus_per_run": 2, "cpus_per_task": 6, "time_min": 240, "account": "lab",
             "constraint": "a100", "array_parallelism": 3}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(_tiny_grid(tmp_path, tiny_extractor, slurm=slurm)))
    grid = load_grid(tmp_path / "grid.yaml")
    assert main(["study", str(tmp_path / "grid.yaml"), "--launcher", "slurm"]) == 2  # no srun here: one line
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ncp \"$1\" {tmp_path}/sbatch-$$.sh\necho Submitted batch job 4242\n")
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for tool in ("sbatch", "srun"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    runs = grid.runs()
    runner.write_configs(grid, runs)
    jobs = runner.plan(grid, runs)
    handles = cluster.submit(grid, "slurm", jobs, cluster.resources(grid, {"time_min": 90}), threads=4)
    [script] = list(tmp_path.glob("sbatch-*.sh"))  # every training in one array
    text = script.read_text()
    expected = [f"--partition={slurm['partition']}", f"--gpus-per-node={slurm['gpus_per_run']}",
                f"--ntasks-per-node={slurm['gpus_per_run']}", f"--cpus-per-task={slurm['cpus_per_task']}",
                "--time=90", f"--account={slurm['account']}", f"--constraint={slurm['constraint']}",
                f"--array=0-{len(jobs) - 1}%{slurm['array_parallelism']}", "--signal=USR2@"]
    assert all(f"#SBATCH {option}" in text for option in expected), text  # the flag's time beats the grid's
    assert "submitit.core._submit" in text
    for job, handle in handles:
        call = handle.submission().function  # what the array task will run: the local launcher's command
        assert isinstance(call, cluster.GanJob) and call.job.command() == job.command()
        assert call.gan_command == runner.GAN_COMMAND and call.env["OMP_NUM_THREADS"] == "4"


def test_a_requeued_training_resumes_from_what_the_signal_saved(tmp_path):
    """checkpoint() (submitit's handler of SLURM's time-limit signal) stops gan fit through SIGTERM, then requeues
    the same job, whose command now resumes from last.ckpt."""
    import pickle
    import signal
    import subprocess

    from gan.study import cluster
    from gan.study.runner import Job

    last = tmp_path / "ckpt" / "last.ckpt"
    job = Job("train", runner.Run("none", 0, tmp_path, {}), ["fit", "--config", "c.yaml"], "none-s0-train",
              resume_from=last)
    call = cluster.GanJob(job, tmp_path / "log", {}, [sys.executable])
    saver = (f"import pathlib, signal, sys, time\ndef save(*a):\n    p = pathlib.Path({str(last)!r})\n"
             "    p.parent.mkdir(); p.write_text('saved'); sys.exit(143)\n"
             "signal.signal(signal.SIGTERM, save)\nprint('ready', flush=True)\ntime.sleep(60)\n")
    call._process = subprocess.Popen([sys.executable, "-c", saver], stdout=subprocess.PIPE, text=True)
    assert call._process.stdout.readline().strip() == "ready"
    assert job.command() == ["fit", "--config", "c.yaml"]
    again = call.checkpoint()
    assert call._process.returncode == 128 + signal.SIGTERM and last.read_text() == "saved"
    requeued = pickle.loads(pickle.dumps(again.function))  # what submitit stores for the requeued job
    assert requeued.job.command() == ["fit", "--config", "c.yaml", "--ckpt_path", str(last)]


def test_regimes_share_a_grid_and_old_grids_keep_their_run_names(tmp_path, tiny_extractor, capsys, monkeypatch):
    from gan.errors import UserError
    from gan.study.grid import load_grid

    grid = _tiny_grid(tmp_path, tiny_extractor)
    del grid["variants"]
    grid["regimes"] = {"adam05": {"variants": {"none": {"model.norm": "none"}, "spectral": {"model.norm": "spectral"}}},
                       "sngan": {"overrides": {"model.n_dis": 5, "model.betas": [0.0, 0.9]}, "seeds": [3],
                                 "variants": {"none": {"model.norm": "none"}},
                                 "eval": {"final": {"num_fake": 12, "num_real": 40}}}}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    loaded = load_grid(tmp_path / "grid.yaml")
    runs = {run.name: run for run in loaded.runs()}
    assert list(runs) == ["adam05/none-s0", "adam05/none-s1", "adam05/spectral-s0", "adam05/spectral-s1",
                          "sngan/none-s3"]
    sngan = runs["sngan/none-s3"]
    assert sngan.dir == loaded.dir / "sngan" / "none-s3" and sngan.config["model"]["n_dis"] == 5
    assert runs["adam05/none-s0"].config["model"]["n_dis"] == BASE["model"]["n_dis"]
    assert sngan.regime.final == {"num_fake": 12, "num_real": 40}  # its own final protocol, the grid's curve
    assert sngan.regime.curve == {k: v for k, v in grid["eval"]["curve"].items() if k != "every"}
    assert sngan.regime.curve_every == grid["eval"]["curve"]["every"]
    assert [r.name for r in loaded.runs("sngan")] == ["sngan/none-s3"]
    with pytest.raises(UserError, match="unknown regime 'adam'"):
        loaded.runs("adam")
    assert main(["study", str(tmp_path / "grid.yaml"), "--dry-run"]) == 0
    todo = [line for line in capsys.readouterr().out.splitlines() if line.startswith("would run:")]
    assert len(todo) == len(runs) and str(loaded.dir / "configs" / "sngan" / "none-s3.yaml") in todo[-1]
    marker = json.loads((sngan.dir / "study.json").read_text())
    assert marker["regime"] == "sngan" and marker["variant"] == "none" and marker["seed"] == 3
    monkeypatch.chdir(Path(__file__).parents[1])  # the grids name their base relative to the checkout
    for path in sorted(Path("configs/studies").glob("*.yaml")):  # grids without regimes: flat <variant>-s<seed>
        spec = yaml.safe_load(path.read_text())
        if "variants" not in spec:
            continue  # a base config, or a grid with regimes
        old = load_grid(path)
        assert [r.dir for r in old.runs()] == [old.dir / f"{v}-s{s}" for v in spec["variants"] for s in spec["seeds"]]
        assert all(r.name == r.dir.name for r in old.runs())


@pytest.mark.parametrize("args, message", [
    (["--launcher", "pbs"], "--launcher 'pbs' is not known"),
    (["--launcher", "slurm"], "needs a time limit per job"),
    (["--partition", "gpu"], "need --launcher slurm"),
    (["--launcher", "submitit-local", "--jobs", "2"], "--jobs is for the local launcher"),
])
def test_bad_launcher_input_is_one_line(tmp_path, tiny_extractor, capsys, args, message):
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(_tiny_grid(tmp_path, tiny_extractor)))
    assert main(["study", str(tmp_path / "grid.yaml"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_export_keeps_what_the_report_reads_and_regenerates_it(study, tmp_path, capsys):
    grid_file, out = study
    assert main(["study", str(grid_file), "--export", str(tmp_path / "results")]) == 0
    copy = tmp_path / "results" / "tiny"
    assert not list(copy.rglob("*.ckpt")) and not list(copy.rglob("*.png")) and (copy / "grid.yaml").is_file()
    assert main(["study", str(grid_file), "--report-only", "--out-dir", str(tmp_path / "results")]) == 0
    tables = [(d / "report.md").read_text().split("![")[0] for d in (out, copy)]
    assert tables[0] == tables[1]  # every number of the report, from the small files alone


def test_update_doc_writes_the_report_table_between_the_markers(study, tmp_path, capsys):
    from gan.study.doc_tables import marked_table, markers
    from gan.study.grid import load_grid
    from gan.study.report import read_runs, study_table

    grid_file, out = study
    begin, end = markers("tiny")
    doc, bad = tmp_path / "README.md", tmp_path / "other.md"
    doc.write_text(f"# intro\n{begin}\nstale\n{end}\nmore text\n")
    bad.write_text("no markers here\n")
    assert main(["study", str(grid_file), "--report-only", "--update-doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith(f"# intro\n{begin}\n| variant |") and text.endswith(f"{end}\nmore text\n")
    assert marked_table(text, "tiny") == study_table(read_runs([run.dir for run in load_grid(grid_file).runs()]))
    assert "**" in marked_table(text, "tiny") and "| best |" in marked_table(text, "tiny")
    assert main(["study", str(grid_file), "--report-only", "--update-doc", str(bad)]) == 2
    assert "other.md: no '<!-- gan study: tiny -->'" in capsys.readouterr().err
    assert bad.read_text() == "no markers here\n"
    written = doc.read_text()  # a mistyped --out-dir: nothing to report, the table stays
    assert main(["study", str(grid_file), "--report-only", "--out-dir", str(tmp_path / "typo"),
                 "--update-doc", str(doc)]) == 2
    assert "--report-only: no run of study tiny in" in capsys.readouterr().err
    assert doc.read_text() == written and not (tmp_path / "typo").exists()
    partial = tmp_path / "partial"  # one run's folder only: a report, but no table in README
    first = load_grid(grid_file).runs()[0].dir
    shutil.copytree(first, partial / "tiny" / first.name)
    assert main(["study", str(grid_file), "--report-only", "--out-dir", str(partial), "--update-doc", str(doc)]) == 1
    assert "--update-doc: not done, since 3 of the grid's 4 runs have no folder" in capsys.readouterr().out
    assert doc.read_text() == written


@pytest.mark.skipif(sys.platform != "linux", reason="the kernel's parent-death signal is Linux's")
def test_a_killed_study_takes_its_jobs_with_it(tmp_path):
    """``kill -9`` of ``gan study`` leaves no ``gan fit`` training on as an orphan: the job gets SIGTERM, saves
    ``last.ckpt`` as on Ctrl-C and stops."""
    import os
    import signal
    import time

    import torch
    from conftest import start_gan

    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    grid = {"name": "long", "base": str(tmp_path / "base.yaml"), "out_dir": str(tmp_path / "out"), "seeds": [0],
            "overrides": {"model.max_g_steps": 1_000_000}, "variants": {"none": {"model.norm": "none"}}}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    study = start_gan("study", str(tmp_path / "grid.yaml"))
    run = tmp_path / "out" / "long" / "none-s0"

    def children() -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == study.pid:
                    found.append(int(stat.parent.name))
            except (OSError, IndexError, ValueError):
                pass
        return found

    deadline = time.monotonic() + 120
    while not (run / "logs" / "metrics.csv").is_file() and time.monotonic() < deadline:
        time.sleep(0.5)  # training has started (its SIGTERM handler is in place)
    jobs = children()
    assert len(jobs) == 1 and (run / "logs" / "metrics.csv").is_file(), study.stderr.read() if study.poll() else ""
    os.kill(study.pid, signal.SIGKILL)
    study.wait()

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 60
    while alive(jobs[0]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive(jobs[0]), "the study's gan fit trains on after the study was killed"
    saved = torch.load(run / "ckpt" / "last.ckpt", map_location="cpu", weights_only=False)
    assert 0 < saved["g_step"] < 1_000_000


@pytest.mark.parametrize("seeds", [[], [-1], [2**32], [True], "0"])
def test_grid_seeds_must_fit_every_runs_seed_everything(tmp_path, capsys, seeds):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump({"base": str(tmp_path / "base.yaml"), "seeds": seeds,
                                                        "variants": {"a": {}}}))
    assert main(["study", str(tmp_path / "grid.yaml"), "--dry-run"]) == 2
    assert f"seeds={seeds!r} must be a non-empty list of integers from 0 to {2**32 - 1}" in capsys.readouterr().err
