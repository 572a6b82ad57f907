"""Every shipped config parses into the LightningCLI schema (a typo in a config would otherwise surface only
when a user starts a long run), and every study grid expands into run configs that parse."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

import gan
from gan.cli import main
from gan.errors import UserError
from gan.models import ARCHS
from gan.study.grid import load_grid

ROOT = Path(__file__).parents[1]
GRIDS = sorted(p for p in ROOT.glob("configs/studies/*.yaml")
               if {"variants", "regimes"} & set(yaml.safe_load(p.read_text())))
CONFIGS = sorted(p for p in ROOT.glob("configs/**/*.yaml") if p not in GRIDS)  # a study's base config is one


def printed_config(path: Path, capsys: pytest.CaptureFixture) -> dict:
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(path), "--print_config"])
    assert exit_.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_the_expected_configs_exist():
    names = {str(p.relative_to(p.parents[1] if p.parent.name != "configs" else p.parent)) for p in CONFIGS}
    for norm in ("none", "spectral", "convnorm", "convnorm_spectral"):
        assert {f"cifar10/cnn_{norm}.yaml", f"cifar10/resnet_{norm}.yaml", f"stl10/resnet_{norm}.yaml",
                f"cifar10/resnet_{norm}_cond.yaml"} <= names
    assert {"fashion_mnist.yaml", "fashion_mnist_conditional.yaml"} <= names and GRIDS


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_parses(config, capsys):
    resolved = printed_config(config, capsys)
    if config.parent.name not in ("configs", "studies"):  # <dataset>/<arch>_<norm>[_cond].yaml: what it trains
        stem = config.stem.removesuffix("_cond")
        arch, norm = stem.split("_", 1)
        assert (resolved["model"]["arch"], resolved["model"]["norm"]) == (arch, norm.replace("_", "+"))
        assert (resolved["model"]["num_classes"] is not None) == (stem != config.stem)


@pytest.mark.parametrize("grid", GRIDS, ids=lambda p: p.stem)
def test_study_grid_expands_into_configs_that_parse(grid, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # a grid names its base config relative to the repository
    study = load_grid(grid, tmp_path)
    for run in (r for r in study.runs() if r.seed == r.regime.seeds[0]):  # one seed: the variants are what differ
        path = tmp_path / f"{run.name.replace('/', '-')}.yaml"
        path.write_text(yaml.safe_dump(run.config))
        resolved = printed_config(path, capsys)
        assert resolved["model"]["norm"] == run.config["model"]["norm"], run.name
        assert resolved["seed_everything"] == resolved["model"]["seed"] == run.seed
        monitors = {c["class_path"].rsplit(".", 1)[1] for c in resolved["trainer"]["callbacks"]}
        assert {"SpectralNormMonitor", "GradientNormMonitor"} <= monitors, run.name  # every study run logs both


def test_the_regimes_grid_trains_the_two_older_grids_runs(monkeypatch):
    """fashion_mnist_regimes.yaml puts the norm study's two grids into one: the same run configs and protocols."""
    monkeypatch.chdir(ROOT)
    combined = {run.name: run for run in load_grid("configs/studies/fashion_mnist_regimes.yaml").runs()}
    older = [(regime, run) for regime, name in (("ndis1", "fashion_mnist_norms"), ("sngan", "fashion_mnist_sngan"))
             for run in load_grid(f"configs/studies/{name}.yaml").runs()]
    assert sorted(combined) == sorted(f"{regime}/{run.name}" for regime, run in older)
    for regime, run in older:
        new = combined[f"{regime}/{run.name}"]
        assert new.config["run"].pop("out_dir").endswith(f"fashion_mnist_regimes/{regime}")
        run.config["run"].pop("out_dir")
        assert new.config == run.config, run.name
        assert (new.regime.curve, new.regime.final, new.regime.curve_every) == (
            run.regime.curve, run.regime.final, run.regime.curve_every)


def test_bench_gpu_finds_its_configs_inside_the_package():
    from gan.bench.gpu_cells import CONFIGS, DEFAULT_NORMS

    assert CONFIGS.parent.parent == Path(gan.__file__).resolve().parent
    for arch in ARCHS:
        for norm in DEFAULT_NORMS:
            assert (CONFIGS / f"{arch}_{norm}.yaml").is_file()


@pytest.mark.slow
def test_the_wheel_ships_every_config(tmp_path):
    """A non-editable install has no checkout around it: the configs travel inside the package."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(root)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("gan-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("gan/configs/")}
    expected = {f"gan/{p.relative_to(root).as_posix()}" for p in (root / "configs").rglob("*.yaml")}
    assert expected and shipped == expected


@pytest.mark.parametrize("grid", GRIDS, ids=lambda p: p.stem)
def test_a_shipped_grid_finds_its_base_outside_a_checkout(grid, tmp_path, monkeypatch):
    """From another folder (as after ``pip install .``), the packaged grid's ``configs/...`` base resolves inside
    the package, to the same file as in the checkout."""
    monkeypatch.chdir(tmp_path)
    packaged = Path(gan.__file__).parent / "configs" / "studies" / grid.name
    base = load_grid(packaged, tmp_path).base
    assert base.is_file() and base.read_text() == (ROOT / yaml.safe_load(grid.read_text())["base"]).read_text()
    (tmp_path / "grid.yaml").write_text(grid.read_text().replace("base: configs/", "base: nowhere/"))
    with pytest.raises(UserError, match="does not exist"):
        load_grid(tmp_path / "grid.yaml")
