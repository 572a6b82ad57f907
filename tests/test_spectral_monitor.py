"""The per-layer spectral-norm monitor: logged against g_step, equal to each layer's norm computed from its explicit
matrix, and without side effects on training."""

import csv
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan.callbacks.spectral import SpectralNormMonitor, conv_input_sizes, spectral_norms
from gan.layers.convnorm import ConvNorm2d
from gan.models import build_discriminator
from gan.utils.modes import eval_mode


def explicit_norm(layer: nn.Module, size: tuple[int, int] | None) -> float:
    """Largest singular value of a layer's stride-1 circular operator on the grid H + k - 1, from its explicit
    matrix: every basis image pushed through circularly padded convolutions (ConvNorm: then its filter V, by
    definition a product in the Fourier domain, and its affine kernel). A linear layer: its weight's."""
    weight = layer.weight.detach().double()
    if isinstance(layer, nn.Linear):
        return torch.linalg.svdvals(weight)[0].item()
    c_in, (kh, kw) = weight.shape[1], weight.shape[-2:]
    grid = (size[0] + kh - 1, size[1] + kw - 1)
    n = c_in * grid[0] * grid[1]

    def circular(x: torch.Tensor, kernel: torch.Tensor, groups: int = 1) -> torch.Tensor:
        return F.conv2d(F.pad(x, (kw - 1, 0, kh - 1, 0), mode="circular"), kernel, groups=groups)

    y = circular(torch.eye(n, dtype=torch.float64).view(n, c_in, *grid), weight)
    if isinstance(layer, ConvNorm2d):
        y = torch.fft.irfft2(torch.fft.rfft2(y) * layer.current_V(grid).double(), s=grid)
        y = circular(y, layer.affine_weight.detach().double(), groups=layer.out_channels)
    return torch.linalg.svdvals(y.reshape(n, -1))[0].item()


@pytest.mark.parametrize("norm", ["spectral", "convnorm+spectral"])
def test_monitor_logs_every_layer_against_g_step_and_plots(tmp_path, norm, tiny_fit):
    monitor = SpectralNormMonitor(every_n_g_steps=2, dirpath=tmp_path)
    model, _ = tiny_fit(tmp_path, callbacks=[monitor], norm=norm)
    history = [json.loads(line) for line in open(tmp_path / "spectral_norms.jsonl")]
    assert [row["g_step"] for row in history] == [2, 4]
    d = model.discriminator
    layers = {name: m for name, m in d.named_modules() if isinstance(m, nn.Conv2d | ConvNorm2d | nn.Linear)}
    assert set(history[0]) - {"g_step"} == set(layers) and len(layers) == 8  # the tiny CNN D: 7 convs, 1 linear
    with eval_mode(d):  # the weights as spectral norm applies them, without a power-iteration step
        for name, layer in layers.items():
            expected = explicit_norm(layer, monitor.sizes.get(name))
            assert history[-1][name] == pytest.approx(expected, rel=1e-4), name
    assert history[-1]["linear"] == pytest.approx(1.0, abs=0.1)  # both norms put SN on D's linear layer
    rows = [r for r in csv.DictReader(open(tmp_path / "metrics.csv")) if r.get("spectral/linear")]
    assert [int(r["g_step"]) for r in rows] == [2, 4]
    assert [float(r["spectral/linear"]) for r in rows] == pytest.approx([row["linear"] for row in history])
    assert (tmp_path / "spectral_norms.png").stat().st_size > 1000


def test_monitoring_does_not_change_training(tmp_path, tiny_fit):
    plain, _ = tiny_fit(tmp_path / "a", norm="convnorm+spectral")
    monitor = SpectralNormMonitor(every_n_g_steps=1, dirpath=tmp_path / "b")
    monitored, _ = tiny_fit(tmp_path / "b", callbacks=[monitor], norm="convnorm+spectral")
    for (name, a), b in zip(plain.state_dict().items(), monitored.state_dict().values()):
        assert torch.equal(a, b), name


def test_plain_conv_norms_equal_their_explicit_matrices():
    torch.manual_seed(0)
    d = build_discriminator("cnn", 8, 1, norm="none", width=4)
    sizes = conv_input_sizes(d, torch.zeros(1, 1, 8, 8))
    convs = [name for name, m in d.named_modules() if isinstance(m, nn.Conv2d)]
    assert [sizes[name] for name in convs] == [(8, 8), (8, 8), (4, 4), (4, 4), (2, 2), (2, 2), (1, 1)]  # 3 halvings
    norms = spectral_norms(d, sizes)
    assert set(norms) == {*convs, "linear"}
    for name, layer in d.named_modules():
        if name in norms:
            assert norms[name] == pytest.approx(explicit_norm(layer, sizes.get(name)), rel=1e-5), name
