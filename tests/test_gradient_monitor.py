"""The gradient-norm monitor: D's input-gradient norms on real and fake images, logged against the G step, exact,
and without side effects on training."""

import json

import pytest
import torch
from torch import nn

from gan.callbacks.gradients import GradientNormMonitor, input_gradient_norms


def test_gradient_norms_are_per_image_and_exact():
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))  # D(x) = w.x + b: the gradient is w for every image
    norms = input_gradient_norms(linear, torch.randn(5, 3, 2, 2))
    assert torch.allclose(norms, linear[1].weight.norm().expand(5))
    quadratic = lambda x: x.flatten(1).square().sum(1)  # noqa: E731 - gradient 2x: norm 2||x||, per image
    x = torch.randn(4, 1, 3, 3)
    assert torch.allclose(input_gradient_norms(quadratic, x), 2 * x.flatten(1).norm(dim=1))


@pytest.mark.parametrize("norm", ["spectral", "convnorm"])
def test_monitor_logs_real_and_fake_against_g_step(tmp_path, norm, tiny_fit):
    monitor = GradientNormMonitor(every_n_g_steps=2, num_images=6, dirpath=tmp_path)
    tiny_fit(tmp_path, callbacks=[monitor], norm=norm)
    rows = [json.loads(line) for line in open(tmp_path / "gradient_norms.jsonl")]
    assert [r["g_step"] for r in rows] == [2, 4]
    for row in rows:
        assert 0 < row["grad/real_mean"] <= row["grad/real_max"] and 0 < row["grad/fake_mean"] <= row["grad/fake_max"]
    logged = [line for line in open(tmp_path / "metrics.csv")][0]
    assert "grad/real_mean" in logged and "grad/fake_max" in logged


@pytest.mark.parametrize("options", [None, {"bn": True}])
def test_monitoring_does_not_change_training(tmp_path, options, tiny_fit):
    plain, _ = tiny_fit(tmp_path / "a", norm="convnorm+spectral", convnorm=options)
    monitor = GradientNormMonitor(every_n_g_steps=1, num_images=4, dirpath=tmp_path / "b")
    monitored, _ = tiny_fit(tmp_path / "b", callbacks=[monitor], norm="convnorm+spectral", convnorm=options)
    assert len(monitor.history) == 4
    for (name, a), b in zip(plain.state_dict().items(), monitored.state_dict().values()):
        assert torch.equal(a, b), name
