"""ConvNorm computes V once per weight update (gan.layers.weight_cache): the numbers are bit-identical to computing
it on every forward, every way of changing the weights is noticed, and the authors' EMA still advances on every
train forward."""

import copy
import subprocess
import sys

import pytest
import torch

from gan.layers.convnorm import ConvNorm2d
from gan.layers.weight_cache import WeightCache, forget_all

GET = WeightCache.get


class Hits:
    """Counts the forwards that reused a kept V (spies on WeightCache.get)."""

    def __init__(self, monkeypatch, enabled: bool = True) -> None:
        self.count = 0

        def get(cache, param, key):
            value = GET(cache, param, key) if enabled else None
            self.count += value is not None
            return value

        monkeypatch.setattr(WeightCache, "get", get)


def fresh_output(layer: ConvNorm2d, x: torch.Tensor) -> torch.Tensor:
    """The layer's output with V computed from the weights now, bypassing the cache."""
    with torch.no_grad():
        return layer._affine(layer.normalize(x)[0])


def test_training_with_the_cache_is_bit_identical_to_recomputing_V(tmp_path, monkeypatch, tiny_fit):
    runs = {}
    for enabled in (False, True):
        hits = Hits(monkeypatch, enabled)
        model, trainer = tiny_fit(tmp_path / str(enabled), norm="convnorm", n_dis=3, max_g_steps=3)
        runs[enabled] = (model.state_dict(), [o.state_dict() for o in trainer.optimizers], hits.count)
    (plain, plain_opt, _), (cached, cached_opt, hit_count) = runs[False], runs[True]
    # each G step's D forward and the next iteration's first D step share weights: 2 reuses per layer, 3 G steps
    assert hit_count == 2 * 7
    assert any(key.endswith("running_V") for key in cached)
    for key, value in plain.items():
        assert torch.equal(value, cached[key]), key
    assert int(cached["discriminator.net.0.num_steps"]) == 3 * (3 + 1)  # every train forward folded V in
    for a, b in zip(plain_opt, cached_opt):
        for state_a, state_b in zip(a["state"].values(), b["state"].values()):
            assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def changes():
    def adam(**kw):
        def change(layer, x):
            opt = torch.optim.Adam(layer.parameters(), lr=0.1, **kw)
            layer(x).square().sum().backward()
            opt.step()
        return change

    def load_state(layer, x):
        other = copy.deepcopy(layer)
        with torch.no_grad():
            other.weight.mul_(torch.linspace(0.5, 2.0, 4).view(-1, 1, 1, 1)).add_(0.1)
        layer.load_state_dict(other.state_dict())

    def in_place(layer, x):
        with torch.no_grad():
            layer.weight[0].neg_()

    def data_assignment(layer, x):
        layer.weight.data = torch.randn_like(layer.weight)

    def to_float64(layer, x):
        layer.double()

    def announced_untracked_write(layer, x):  # what a CUDA graph replay does; gan.training.cuda_graphs announces it
        layer.weight.data.mul_(-1.5)
        forget_all()

    return {"adam": adam(), "adam foreach": adam(foreach=True), "adam fused": adam(fused=True),
            "load_state_dict": load_state, "in-place write": in_place, ".data assignment": data_assignment,
            ".double()": to_float64, "announced untracked write": announced_untracked_write}


@pytest.mark.parametrize("path", ["fast", "reference"])
@pytest.mark.parametrize("change", list(changes()))
def test_every_kind_of_weight_change_is_noticed(change, path, monkeypatch):
    hits = Hits(monkeypatch)
    torch.manual_seed(0)
    layer = ConvNorm2d(3, 4, 3, padding=1, algorithm=path).eval()
    x = torch.randn(2, 3, 8, 8)
    layer(x)
    assert torch.equal(layer(x), fresh_output(layer, x)) and hits.count == 1  # unchanged weights: reused
    changes()[change](layer, x)
    x = x.to(layer.weight.dtype)
    before = hits.count
    assert torch.equal(layer(x), fresh_output(layer, x))
    assert hits.count == before  # recomputed, not reused


def test_a_spectral_normed_weight_is_never_kept(monkeypatch):
    hits = Hits(monkeypatch)
    layer = torch.nn.utils.parametrizations.spectral_norm(ConvNorm2d(3, 4, 3, padding=1))
    x = torch.randn(2, 3, 8, 8)
    for _ in range(3):
        layer(x)
    assert hits.count == 0 and layer._weight_V._entry is None


def test_eval_mode_and_other_resolutions_do_not_mix_up_V(monkeypatch):
    torch.manual_seed(0)
    layer = ConvNorm2d(3, 4, 4, stride=2, padding=1)
    small, large = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 12, 12)
    layer(small)
    assert torch.equal(layer(large), layer._affine(layer.normalize(large)[0]))  # another grid: its own V
    layer.eval()
    expected = layer._affine(layer.normalize(small, layer._eval_V(layer.grid(8, 8)))[0])
    assert torch.equal(layer(small), expected)  # eval uses running_V, not the kept V of the weights


def test_the_private_version_counter_it_relies_on_still_counts_in_place_writes():
    # torch has no public reader of autograd's version counter; an upgrade that changes it must fail here, loudly
    param = torch.nn.Parameter(torch.ones(3))
    before = param._version
    with torch.no_grad():
        param.add_(1.0)
    assert isinstance(before, int) and param._version > before


def test_importing_installs_no_optimizer_hook_and_the_first_cache_does():
    code = ("import gan.layers.weight_cache as w; assert w._optimizer_hook is None; "
            "w.WeightCache(); assert w._optimizer_hook is not None")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
