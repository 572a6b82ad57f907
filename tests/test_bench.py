"""``gan bench`` smoke tests at tiny sizes: every benchmark runs, times every case and reports ratios that follow
from its own timings. (Speed targets are checked by running the benchmarks, not here.)"""

import json
import re

import pytest
import torch

from gan.bench import convnorm as bench_convnorm
from gan.bench.convnorm import CHOSEN_SLACK, LAYERS, sweep_cases
from gan.cli import main
from gan.layers.convnorm import CHOICES, choice_name
from gan.layers.norms import NORMS
from gan.models import ARCHS


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]
    return [row for row in rows if row[0].startswith(first_cell)]


def test_convnorm_times_every_cnn_layer_and_the_whole_discriminator(tmp_path, capsys):
    out = tmp_path / "convnorm.json"
    assert main(["bench", "convnorm", "--batch", "2", "--repeats", "1", "--models", "cnn", "--json", str(out)]) == 0
    result, printed = json.loads(out.read_text()), capsys.readouterr().out
    assert [r["layer"] for r in result["layers"]] == [case.label for case in LAYERS if case.model == "cnn"]
    for row in result["layers"]:
        assert all(row[k] > 0 for k in ("conv", "fast", "reference", "spectral")), row["layer"]
        (shown,) = table_rows(printed, row["layer"])
        assert float(shown[5].split()[0]) == pytest.approx(row["fast"] / row["conv"], abs=0.006)
    assert set(result["whole"]) == {"cnn"} and min(result["whole"]["cnn"].values()) > 0
    assert table_rows(printed, "cnn D (fwd+bwd)")


STEP_ARGS = ["bench", "step", "--width", "4", "--image-size", "8", "--channels", "1", "--batch-size", "4",
             "--n-dis", "1", "--steps", "1", "--warmup", "1"]


def test_step_compares_lightning_with_a_plain_loop_and_conditioning_with_none(capsys):
    main([*STEP_ARGS, "--num-classes", "3"])
    printed = capsys.readouterr().out
    (plain,) = [row for row in table_rows(printed, "plain PyTorch") if row[0] == "plain PyTorch"]
    (conditional,) = table_rows(printed, "plain PyTorch, 3 classes")
    (light,) = table_rows(printed, "LightningModule")
    ratio = float(re.search(r"Lightning / plain = ([0-9.]+)x", printed).group(1))
    assert ratio == pytest.approx(float(light[1]) / float(plain[1]), abs=0.01)
    cost = float(re.search(r"conditional / unconditional \(plain loops\) = ([0-9.]+)x", printed).group(1))
    assert cost == pytest.approx(float(conditional[1]) / float(plain[1]), abs=0.01)


@pytest.mark.parametrize("limit,code", [(1e9, 0), (0.0, 1)])
def test_step_exit_code_says_whether_lightning_is_within_the_limit(monkeypatch, capsys, limit, code):
    monkeypatch.setattr("gan.bench.step.LIMIT", limit)
    assert main(STEP_ARGS) == code
    assert ("OK" if code == 0 else "OVER") in capsys.readouterr().out


def test_step_table_gives_g_steps_per_second_for_every_arch_and_norm(capsys):
    assert main(["bench", "step", "--table", "--width", "4", "--image-size", "32", "--channels", "1",
                 "--batch-size", "2", "--n-dis", "1", "--steps", "1", "--warmup", "1"]) == 0
    printed = capsys.readouterr().out
    for arch in ARCHS:
        (row,) = table_rows(printed, arch)
        assert len(row) == 1 + len(NORMS) and all(float(cell) > 0 for cell in row[1:])


@pytest.mark.slow
def test_fid_times_the_three_ways_to_evaluate(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GAN_CACHE", str(tmp_path))
    main(["bench", "fid", "--inception-weights", "random", "--num-fake", "4", "--num-real", "4", "--repeats", "1",
          "--image-size", "8", "--batch-size", "4", "--json", str(tmp_path / "fid.json")])
    result, printed = json.loads((tmp_path / "fid.json").read_text()), capsys.readouterr().out
    assert len(result["seconds"]) == 3 and min(result["seconds"].values()) > 0
    base = result["seconds"]["torch-fidelity: features of the generated images"]
    assert result["ratio"] == pytest.approx(result["seconds"]["gan compute_metrics, reference cached"] / base)
    assert f"= {result['ratio']:.3f}" in printed
    for name, seconds in result["seconds"].items():
        (row,) = table_rows(printed, name)
        assert float(row[1]) == pytest.approx(seconds, abs=0.006)


def test_convnorm_sweep_times_every_algorithm_the_choice_and_whole_discriminators(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    assert main(["bench", "convnorm", "--sizes", "8,9", "--batches", "2", "--channels", "4", "--whole-sizes", "32,128",
                 "--whole-batches", "2", "--d-width", "16", "--repeats", "1", "--json", str(out)]) == 0
    result, printed = json.loads(out.read_text()), capsys.readouterr().out
    cases = sweep_cases((8, 9), (4,))
    assert len(result["layers"]) == len(cases) == 4
    offered = {choice_name(c) for c in CHOICES if c[1] != "fft"}  # the CPU's algorithms
    for row in result["layers"]:
        assert set(row["times"]) == {"conv", "auto", *offered} and min(row["times"].values()) > 0, row["layer"]
        assert row["chosen"] in offered
        (shown,) = table_rows(printed, row["layer"])
        best, chosen, auto = min(row["times"][a] for a in offered), row["times"][row["chosen"]], row["times"]["auto"]
        assert float(shown[-2].split()[0]) == pytest.approx(chosen / best, abs=0.006)  # the choice, forced
        assert shown[-2].endswith("(ok)") == (chosen <= CHOSEN_SLACK * best)
        assert float(shown[-1]) == pytest.approx(auto / chosen, abs=0.006)  # the same algorithm run twice
    assert [(w["size"], w["batch"]) for w in result["whole"]] == [(32, 2), (128, 2)]
    for w in result["whole"]:
        (shown,) = table_rows(printed, f"resnet D {w['size']}px, batch 2")
        assert float(shown[3].split()[0]) == pytest.approx(w["convnorm"] / w["spectral"], abs=0.006)
    assert re.search(rf"chosen within {CHOSEN_SLACK} x the best single algorithm: \d of 4 layers", printed)


def test_a_sweep_stopped_midway_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    out = tmp_path / "sweep.json"
    measured = []
    real = bench_convnorm.bench_algorithms

    def stop_after_two(*args, **kwargs):
        if len(measured) == 2:
            raise KeyboardInterrupt
        measured.append(real(*args, **kwargs))
        return measured[-1]

    monkeypatch.setattr(bench_convnorm, "bench_algorithms", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        main(["bench", "convnorm", "--sizes", "8,9", "--batches", "2", "--channels", "4", "--repeats", "1",
              "--json", str(out)])
    saved = json.loads(out.read_text())
    assert [row["chosen"] for row in saved["layers"]] == [r["chosen"] for r in measured]
    assert [row["times"] for row in saved["layers"]] == [r["times"] for r in measured] and saved["whole"] == []


def test_a_layer_bench_takes_a_configs_convnorm_options_algorithm_included():
    """``model.convnorm`` may force an algorithm; the bench's own fast / reference variants still run as named."""
    case = bench_convnorm.LayerCase("t", 3, 4, 3, 1, 1, 8)
    times = bench_convnorm.bench_layer(case, 2, 1, torch.device("cpu"), {"algorithm": "spatial", "bn": False})
    assert set(times) == {"conv", "fast", "reference", "spectral"} and all(t > 0 for t in times.values())
