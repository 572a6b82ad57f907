"""Every shipped config parses into the LightningCLI schema (a typo in a config would otherwise surface only
when a user starts a long run)."""

from pathlib import Path

import pytest
import yaml

from gan.cli import main
from gan.study.grid import load_grid

ROOT = Path(__file__).parents[1]
GRIDS = sorted(ROOT.glob("configs/studies/*.yaml"))  # gan study grids, not gan fit configs
CONFIGS = sorted(set(ROOT.glob("configs/**/*.yaml")) - set(GRIDS))


def test_the_expected_configs_exist():
    names = {str(p.relative_to(p.parents[1] if p.parent.name != "configs" else p.parent)) for p in CONFIGS}
    for norm in ("none", "spectral", "convnorm", "convnorm_spectral"):
        assert {f"cifar10/cnn_{norm}.yaml", f"cifar10/resnet_{norm}.yaml", f"stl10/resnet_{norm}.yaml"} <= names
    assert "fashion_mnist.yaml" in names


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)
    if config.parent.name != "configs":  # <dataset>/<arch>_<norm>.yaml says what it trains
        arch, norm = config.stem.split("_", 1)
        assert (resolved["model"]["arch"], resolved["model"]["norm"]) == (arch, norm.replace("_", "+"))


@pytest.mark.parametrize("grid", GRIDS, ids=lambda p: p.stem)
def test_study_grid_loads(grid, monkeypatch):
    monkeypatch.chdir(ROOT)  # a grid names its base config relative to the checkout
    assert load_grid(grid).runs()
