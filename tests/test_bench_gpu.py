"""`gan bench gpu` on the CPU at tiny sizes: every cell runs or says in one line why not, the budget stops and skips
cells, the report and JSON are written, and gan's code needs neither torch-fidelity nor jsonargparse (the GPU
machine has neither) outside the Inception cell."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from gan.bench.harness import Cell, run_cells
from gan.cli import main

TINY = ["--tiny", "--archs", "cnn", "--norms", "none", "convnorm", "--methods", "eager", "cuda_graphs",
        "--layers", "1", "--steps", "2", "--warmup", "1"]


def test_tiny_run_measures_every_cell_or_names_why_not(tmp_path):
    out = tmp_path / "bench_gpu.md"
    assert main(["bench", "gpu", *TINY, "--inception-images", "8", "--out", str(out)]) == 0
    cells = json.loads(out.with_suffix(".json").read_text())["cells"]
    by_section = {}
    for cell in cells:
        by_section.setdefault(cell["section"], []).append(cell)
    steps = by_section["g_steps"]
    assert {(c["method"], c["precision"], c["norm"]) for c in steps} == {
        (m, p, n) for m in ("eager", "cuda_graphs") for p in ("32-true", "bf16-mixed") for n in ("none", "convnorm")}
    cuda = torch.cuda.is_available()
    for cell in steps:
        if cell["method"] == "eager" or cuda:
            assert cell["status"] == "ok" and cell["g_steps_per_s"] > 0
        else:  # no CUDA here: the module's own refusal, one line, and the run went on
            assert cell["status"].startswith("failed: model.cuda_graphs records CUDA graphs, which need a CUDA")
    assert (by_section["check"][0]["status"] == "ok") if cuda else \
        by_section["check"][0]["status"].startswith("failed: model.cuda_graphs")
    assert all(c["status"] == "ok" and c["ratio"] > 0 for c in by_section["loop"])
    assert {(c["norm"], c["steps"]) for c in by_section["loop"]} == {
        ("none", "direct"), ("none", "wrappers"), ("convnorm", "direct")}
    assert by_section["layers"][0]["status"] == "ok" and by_section["layers"][0]["fast/conv"] > 0
    assert by_section["inception"][0]["status"] == "ok" and by_section["inception"][0]["images_per_s"] > 0
    report = out.read_text()
    assert "| eager | 32-true | cnn |" in report and "## Lightning against a plain loop" in report
    assert cuda or "failed: model.cuda_graphs records CUDA graphs" in report


def test_the_budget_stops_a_running_cell_and_skips_the_rest():
    writes = []
    slow = Cell("g_steps", {"what": "slow"}, lambda: time.sleep(30) or {})
    after = Cell("g_steps", {"what": "after"}, lambda: {"x": 1.0})
    began = time.monotonic()
    run_cells([slow, after], budget_s=2.0, write=lambda: writes.append(1))
    assert time.monotonic() - began < 10
    assert slow.status == "failed: stopped at the time budget after 2 s"
    assert after.status.startswith("skipped: time budget") and writes


def test_a_failing_cell_is_one_line_and_the_next_runs():
    def broken():
        raise RuntimeError("first line of the reason\nsecond line")

    cells = [Cell("layers", {"n": "1"}, broken), Cell("layers", {"n": "2"}, lambda: {"x": 2.0})]
    run_cells(cells, budget_s=60, write=lambda: None)
    assert cells[0].status == "failed: RuntimeError: first line of the reason"
    assert cells[1].status == "ok" and cells[1].result == {"x": 2.0}


@pytest.mark.slow
def test_runs_where_torch_fidelity_and_jsonargparse_are_not_installed(tmp_path):
    # in a child process both packages vanish: imports fail and their installed metadata is gone (libraries such as
    # torchmetrics decide from the metadata whether to import them, as they would on the GPU machine)
    script = textwrap.dedent(f"""
        import importlib.metadata, sys
        MISSING = ("torch_fidelity", "torch-fidelity", "jsonargparse")
        class Missing:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in MISSING:
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
        sys.meta_path.insert(0, Missing())
        for function in ("distribution", "version", "metadata"):
            original = getattr(importlib.metadata, function)
            def hidden(name, original=original):
                if name.replace("-", "_") in MISSING or name in MISSING:
                    raise importlib.metadata.PackageNotFoundError(name)
                return original(name)
            setattr(importlib.metadata, function, hidden)
        from gan.cli import main
        sys.exit(main(["bench", "gpu", *{TINY!r}, "--norms", "convnorm", "--precisions", "32-true",
                       "--inception-images", "8", "--out", {str(tmp_path / "b.md")!r}]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                            cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr[-3000:]
    cells = {(c["section"], c.get("method")): c for c in json.loads((tmp_path / "b.json").read_text())["cells"]}
    assert all(cells[key]["status"] == "ok" for key in (("g_steps", "eager"), ("loop", None), ("layers", None)))
    assert cells["inception", None]["status"] == "failed: ModuleNotFoundError: No module named 'torch_fidelity'"


def test_the_consistency_check_tells_rounding_from_a_wrong_replay():
    from gan.bench.gpu_report import check_verdict

    rounding = {"rounding_max_loss_difference": 1.1e-2, "rounding_max_relative_weight_difference": 0.25}
    # the H200 run: replays differed from eager about as much as a 1e-7 perturbation makes eager differ from itself
    assert check_verdict({"max_loss_difference": 3.6e-3, "max_relative_weight_difference": 0.35, **rounding}) \
        .startswith("same")
    assert check_verdict({"max_loss_difference": 3e-5, "max_relative_weight_difference": 2e-4}).startswith("same")
    assert check_verdict({"max_loss_difference": 0.4, "max_relative_weight_difference": 2e-4}).startswith("DIFF")
    tight = {"rounding_max_loss_difference": 1e-6, "rounding_max_relative_weight_difference": 1e-6}
    assert check_verdict({"max_loss_difference": 3.6e-3, "max_relative_weight_difference": 0.35, **tight}) \
        .startswith("DIFF")


def test_convnorm_backend_reaches_the_convnorm_models(tmp_path, monkeypatch):
    from gan.bench import gpu
    from gan.layers.convnorm import ConvNorm2d

    built = []
    real_model = gpu.Settings.model

    def model(self, arch, norm, **switches):
        gan, batch = real_model(self, arch, norm, **switches)
        built.append({m.backend for m in gan.discriminator.modules() if isinstance(m, ConvNorm2d)})
        return gan, batch

    monkeypatch.setattr(gpu.Settings, "model", model)
    out = tmp_path / "bench_gpu.md"
    assert main(["bench", "gpu", "--tiny", "--archs", "cnn", "--norms", "none", "convnorm", "--methods", "eager",
                 "--precisions", "32-true", "--layers", "0", "--inception-images", "0", "--steps", "1", "--warmup",
                 "1", "--convnorm-backend", "dft", "--out", str(out)]) == 0
    assert {"dft"} in built and set() in built  # the convnorm model uses the forced backend, the plain one has none
    assert "backend dft" in out.read_text()
