"""The one reader of a run folder (gan.runs.layout) as ``gan compare`` and the study report use it: damaged or
wrong-typed files end in one line naming the file, a folder of runs is told from a run, both tools read the same
curve, and named protocols reach the FID callback and study grids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gan.callbacks.fidelity import FidelityCallback
from gan.cli import main
from gan.commands.compare import read_run
from gan.errors import UserError
from gan.metrics.protocols import CUSTOM, PROTOCOLS
from gan.runs.layout import step_checkpoints
from gan.study.report import summarize_run
from gan.study.runner import eval_argv

PROTOCOL = {"num_fake": 100, "reference": "fashion-mnist/test/grey", "num_real_used": 200, "seed": 2020}
WEIGHTS = {"kind": "offline"}


def result(step: int, fid: float) -> dict:
    return {"g_step": step, "metrics": {"fid": fid}, "protocol": PROTOCOL, "weights": WEIGHTS}


def make_run(folder: Path, fids: dict[int, float] | None = None) -> Path:
    """A run folder as gan fit, its callbacks and gan study write it (no training needed to read it)."""
    fids = fids or {100: 90.0, 200: 70.0}
    (folder / "logs").mkdir(parents=True)
    (folder / "ckpt").mkdir()
    (folder / "eval").mkdir()
    (folder / "config.yaml").write_text("model:\n  arch: cnn\n  norm: spectral\n")
    (folder / "logs" / "metrics.csv").write_text(
        "g_step,loss/d,d/real,d/fake\n" + "".join(f"{s},1.5,0.{s // 100},-0.1\n" for s in fids))
    (folder / "fidelity.jsonl").write_text("".join(json.dumps(result(s, f)) + "\n" for s, f in fids.items()))
    (folder / "ckpt" / "g0000200.eval.json").write_text(json.dumps(result(200, 71.0)))
    (folder / "eval" / "final.json").write_text(json.dumps(result(200, 69.0)))
    (folder / "study.json").write_text(json.dumps({"study": "s", "variant": "spectral", "seed": 0}))
    (folder / "spectral_norms.jsonl").write_text(json.dumps({"g_step": 200, "net.0": 1.5}) + "\n")
    return folder


DAMAGE = {  # file -> (damaged text, what the message must say); plain compare reads the first four, --group all
    "ckpt/g0000200.eval.json": ('{"g_step": 200, "metrics": {"fid": "low"}', "not valid JSON"),
    "fidelity.jsonl": ('{"g_step": 100, "metrics": {"fid": 1.0}}\n{"g_step": 200}\n', "line 1: has no 'protocol'"),
    "logs/metrics.csv": ("g_step,loss/d\n100,1.5\n200,high\n", "line 3"),
    "config.yaml": ("model: [unclosed", "not valid YAML"),
    "eval/final.json": ('{"g_step": 200, "metrics": {"fid": "low"}, "protocol": {}, "weights": {}}', "'fid'"),
    "study.json": ('["spectral"]', "not an object"),
    "spectral_norms.jsonl": ('{"g_step": 200, "net.0": "big"}\n', "'net.0'"),
}


PLAIN = list(DAMAGE)[:4]


@pytest.mark.parametrize("name, command", [*((n, "plain") for n in PLAIN), *((n, "group") for n in DAMAGE)])
def test_a_damaged_file_is_one_line_naming_it(tmp_path: Path, capsys, name: str, command: str):
    run = make_run(tmp_path / "run")
    text, message = DAMAGE[name]
    (run / name).write_text(text)
    if name.startswith("ckpt/"):
        (run / "fidelity.jsonl").unlink()  # the checkpoints' gan eval files are read when the callback did not run
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    extra = ["--group", str(tmp_path / "report")] if command == "group" else ["--plot", str(tmp_path / "p.png")]
    assert main(["compare", str(run), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(run / name) in err and message in err, err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing rewritten


def test_the_undamaged_run_reads(tmp_path: Path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["compare", str(run), "--plot", str(tmp_path / "p.png")]) == 0
    assert "| run | spectral | cnn | 200 | 70.00 (@200) | 70.00 |" in capsys.readouterr().out


def test_a_folder_of_runs_is_refused_naming_its_runs(tmp_path: Path, capsys):
    for name in ("a", "b"):
        make_run(tmp_path / "checkpoints" / name)
    make_run(tmp_path / "checkpoints" / "studies" / "s" / "c")
    assert main(["compare", str(tmp_path / "checkpoints")]) == 2
    err = capsys.readouterr().err
    assert "is a folder of 3 runs, not a run" in err and str(tmp_path / "checkpoints" / "studies" / "s" / "c") in err
    (tmp_path / "file").write_text("x")
    assert main(["compare", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_compare_and_the_report_read_the_same_curve(tmp_path: Path):
    """The callback's fidelity.jsonl wins over the checkpoints' gan eval files in both tools."""
    run = make_run(tmp_path / "run", {100: 90.0, 200: 70.0, 300: 65.0})
    compared = {step: v["fid"] for step, v in read_run(run).curve.items()}
    assert summarize_run(run).curve == compared == {100: 90.0, 200: 70.0, 300: 65.0}
    (run / "fidelity.jsonl").unlink()  # without the callback: the gan eval files, in both
    assert summarize_run(run).curve == {step: v["fid"] for step, v in read_run(run).curve.items()} == {200: 71.0}


def test_step_checkpoints_parse_only_step_names(tmp_path: Path):
    for name in ("g0000400.ckpt", "g0012000.ckpt", "last.ckpt", "best_fid.ckpt", "gx.ckpt", "g12.ckpt"):
        (tmp_path / "ckpt").mkdir(exist_ok=True)
        (tmp_path / "ckpt" / name).write_text("")
    assert [(step, path.name) for step, path in step_checkpoints(tmp_path)] == [
        (400, "g0000400.ckpt"), (12000, "g0012000.ckpt")]


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_the_fid_callback_takes_a_named_protocol(name: str):
    callback = FidelityCallback(protocol=name)
    assert (callback.protocol, callback.num_fake, callback.num_real) == (
        name, PROTOCOLS[name].num_fake, PROTOCOLS[name].num_real)
    overridden = FidelityCallback(protocol=name, num_fake=64)  # counts that are not the protocol's: say so
    assert (overridden.protocol, overridden.num_fake, overridden.num_real) == (CUSTOM, 64, PROTOCOLS[name].num_real)


def test_the_fid_callback_refuses_an_unknown_protocol_and_keeps_its_default():
    with pytest.raises(UserError, match="'fast' is not a named protocol; choose from"):
        FidelityCallback(protocol="fast")
    plain = FidelityCallback()
    assert (plain.protocol, plain.num_fake, plain.num_real) == (CUSTOM, 5000, None)


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_a_grid_names_a_protocol_and_gan_eval_gets_it(tmp_path: Path, name: str):
    from gan.study.grid import load_grid

    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"model": {"arch": "cnn"}, "data": {"name": "synthetic"}}))
    grid = {"name": "g", "base": str(tmp_path / "base.yaml"), "out_dir": str(tmp_path / "out"), "seeds": [0],
            "variants": {"none": {"model.norm": "none"}}, "eval": {"final": {"protocol": name, "split": "test"}}}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    final = load_grid(tmp_path / "grid.yaml").runs()[0].regime.final
    argv = eval_argv(Path("last.ckpt"), final, Path("final.json"))
    assert argv[argv.index("--protocol") + 1] == name and "--num-fake" not in argv
    grid["eval"]["final"]["protocol"] = "fast"
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    with pytest.raises(UserError, match="eval.final.protocol='fast' is not a named protocol"):
        load_grid(tmp_path / "grid.yaml")


@pytest.mark.parametrize("step", ["nan", "inf", "-100", "2.5"])
def test_a_logged_step_that_is_not_a_step_is_one_line(tmp_path: Path, capsys, step: str):
    run = make_run(tmp_path / "run")
    (run / "logs" / "metrics.csv").write_text(f"g_step,loss/d\n100,1.5\n{step},1.4\n")
    assert main(["compare", str(run), "--plot", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metrics.csv: line 3: the step" in err, err
