"""gan.metrics against torch-fidelity itself: same FID / IS / KID, caches that survive damage, clear refusals.

Fast tests use the tiny feature extractor of conftest.py; ``test_metrics_inception.py`` holds the checks with the
real (offline) Inception weights.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torch_fidelity
from torch import nn
from torch.utils.data import Dataset

from gan import metrics as M
from gan.errors import UserError


@pytest.fixture
def reference(tiny_images):
    """A factory of references over ``n`` tiny images, counting in ``calls`` each time the set is built."""

    def make(n: int = 60, calls: list | None = None, name: str = "tiny/train") -> M.Reference:
        def build() -> Dataset:
            if calls is not None:
                calls.append(1)
            return M.UInt8Images(tiny_images(n))

        return M.Reference(name, build, 8, None)

    return make


@pytest.fixture
def tf_metrics(tiny_extractor):
    """torch-fidelity's calculate_metrics, called directly (no cache) on the same images."""

    def run(fake, real, n_fake: int, **kw) -> dict:
        extra = {"input1_model_num_samples": n_fake} if isinstance(fake, M.GeneratorAdapter) else {}
        return torch_fidelity.calculate_metrics(
            input1=fake, input2=real, feature_extractor=tiny_extractor, cuda=False, cache=False, verbose=False,
            save_cpu_ram=True, **extra, **kw,
        )

    return run


def test_to_uint8_rgb_rounds_like_save_image_and_greys_to_rgb():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.999, 1.0, 2.0]).view(1, 1, 1, 6)
    out = M.to_uint8_rgb(x)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 1, 6)
    expected = ((x + 1) / 2).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)  # torchvision.utils.save_image
    assert torch.equal(out[:, 0:1], expected) and torch.equal(out[:, 0], out[:, 2])
    assert out[0, 0, 0].tolist() == [0, 64, 128, 255, 255, 255]
    with pytest.raises(UserError, match="float"):
        M.to_uint8_rgb(torch.zeros(2, 2, 8, 8))


@pytest.mark.parametrize("n_fake", [20, 100])  # fewer and more samples than feature dimensions (32)
def test_fid_is_kid_equal_torch_fidelity(tmp_path: Path, n_fake: int, tiny_extractor, tiny_generator, tiny_images,
                                         reference, tf_metrics):
    torch.manual_seed(0)
    adapter = M.GeneratorAdapter(tiny_generator().eval(), 8)  # torch-fidelity does not switch to eval mode
    kw = {"kid_subset_size": 15, "kid_subsets": 20}
    ours = M.compute_metrics(adapter, reference(), num_fake=n_fake, fid=True, isc=True, kid=True,
                             feature_extractor=tiny_extractor, seed=7, cache=tmp_path, verbose=False,
                             kid_subsets=20, kid_subset_size=15)
    theirs = tf_metrics(adapter, M.UInt8Images(tiny_images(60)), n_fake, fid=True, isc=True, kid=True, rng_seed=7, **kw)
    got = ours["metrics"]
    assert got["fid"] > 1
    assert got["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert got["is_mean"] == pytest.approx(theirs["inception_score_mean"], rel=1e-9)
    assert got["is_std"] == pytest.approx(theirs["inception_score_std"], rel=1e-9)
    assert got["kid_mean"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert ours["protocol"]["num_fake"] == n_fake and ours["protocol"]["seed"] == 7
    assert ours["protocol"]["kid_subset_size"] == 15 and ours["protocol"]["reference"] == "tiny/train"
    assert ours["weights"]["ident"] == tiny_extractor


def test_fid_of_a_set_with_itself_is_zero(tmp_path: Path, tiny_extractor, tiny_images, reference, tf_metrics):
    ours = M.compute_metrics(M.UInt8Images(tiny_images(60)), reference(), feature_extractor=tiny_extractor,
                             cache=tmp_path, verbose=False)
    theirs = tf_metrics(M.UInt8Images(tiny_images(60)), M.UInt8Images(tiny_images(60)), 60, fid=True)
    assert abs(ours["metrics"]["fid"]) < 1e-9
    assert abs(theirs["frechet_inception_distance"]) < 1e-6
    assert ours["protocol"]["fake"] == "images" and ours["protocol"]["num_fake"] == 60


def test_generator_is_scored_in_eval_mode_and_training_state_comes_back(tmp_path: Path, tiny_extractor,
                                                                        tiny_generator, reference):
    gen = tiny_generator().train()
    adapter = M.GeneratorAdapter(gen, 8)
    rng = torch.get_rng_state()
    first = M.compute_metrics(adapter, reference(), num_fake=30, feature_extractor=tiny_extractor, cache=tmp_path,
                              verbose=False)["metrics"]["fid"]
    assert torch.equal(torch.get_rng_state(), rng)  # training's random stream is untouched
    assert gen.training and all(m.training for m in gen.modules())
    again = M.compute_metrics(adapter, reference(), num_fake=30, feature_extractor=tiny_extractor, cache=tmp_path,
                              verbose=False)["metrics"]["fid"]
    assert first == again  # same seed, eval-mode BatchNorm: reproducible


def test_ema_generator_is_preferred(tiny_generator):
    class Gan(nn.Module):
        def __init__(self, ema: bool) -> None:
            super().__init__()
            self.generator, self.z_dim = tiny_generator(), 8
            self.generator_ema = tiny_generator() if ema else None

    with_ema = Gan(ema=True)
    assert M.GeneratorAdapter.from_gan(with_ema).generator is with_ema.generator_ema
    assert M.GeneratorAdapter.from_gan(with_ema).ema
    assert M.GeneratorAdapter.from_gan(with_ema, ema=False).generator is with_ema.generator
    plain = M.GeneratorAdapter.from_gan(Gan(ema=False))
    assert not plain.ema and plain.z_size == 8


def test_reference_statistics_are_cached_and_damage_is_rebuilt(tmp_path: Path, capsys, tiny_extractor, tiny_images,
                                                                reference):
    calls: list[int] = []
    fake = M.UInt8Images(tiny_images(40, seed=1))
    run = lambda: M.compute_metrics(fake, reference(calls=calls), feature_extractor=tiny_extractor,  # noqa: E731
                                    cache=tmp_path)["metrics"]["fid"]
    fid = run()
    assert len(calls) == 1
    assert run() == fid and len(calls) == 1  # served from the cache: the reference set is not even built
    (path,) = (tmp_path / "reference").glob("*.pt")
    good = path.read_bytes()
    for damaged in (good[: len(good) // 2], good[:-10] + b"0123456789", b"", flip(good, 100), flip(good, 3)):
        path.write_bytes(damaged)
        capsys.readouterr()
        assert run() == fid
        assert "damaged" in capsys.readouterr().err
        assert path.read_bytes() == good  # rebuilt to the same bytes
    assert len(calls) == 6


def flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]


def test_cache_key_separates_protocols(tmp_path: Path, tiny_extractor, reference):
    a = reference().cache_path(tmp_path, tiny_extractor, "feat", "w1")
    assert a == reference().cache_path(tmp_path, tiny_extractor, "feat", "w1")
    assert a != reference().cache_path(tmp_path, tiny_extractor, "feat", "w2")
    assert a != reference(name="tiny/test").cache_path(tmp_path, tiny_extractor, "feat", "w1")
    assert a != M.Reference("tiny/train", lambda: None, 8, 50).cache_path(tmp_path, tiny_extractor, "feat", "w1")
    assert a != M.Reference("tiny/train", lambda: None, 16).cache_path(tmp_path, tiny_extractor, "feat", "w1")


def test_real_subset_is_seeded_and_sized(tmp_path: Path, tiny_images):
    ref = M.Reference("tiny/train", lambda: M.UInt8Images(tiny_images(60)), 8, 25, seed=3)
    data = ref.dataset()
    assert len(data) == 25 and data.indices == M.Reference("tiny/train", ref.build, 8, 25, seed=3).dataset().indices
    with pytest.raises(UserError, match="asks for more"):
        M.Reference("tiny/train", ref.build, 8, 61).dataset()


def test_folder_fingerprint_changes_with_content(tmp_path: Path):
    (tmp_path / "a.png").write_bytes(b"x")
    before = M.folder_fingerprint(tmp_path)
    (tmp_path / "b.png").write_bytes(b"y")
    assert M.folder_fingerprint(tmp_path) != before
    with pytest.raises(UserError, match="does not exist"):
        M.folder_fingerprint(tmp_path / "missing")


def test_inception_score_is_refused_without_logits(tmp_path: Path, tiny_images):
    offline = M.InceptionWeights("offline", str(tmp_path / "w.pth"), "fid-inception-torchscript:x", False)
    with pytest.raises(UserError, match="Inception Score needs"):
        M.compute_metrics(M.UInt8Images(tiny_images(4)), None, fid=False, isc=True, weights=offline, cache=tmp_path)


def test_default_weights_without_network_point_to_offline(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    with pytest.raises(UserError, match="--inception-weights offline"):
        M.resolve_weights("default", tmp_path)
    with pytest.raises(UserError, match="no such file"):
        M.resolve_weights(str(tmp_path / "missing.pth"), tmp_path)
    junk = tmp_path / "junk.pth"
    torch.save({"a": torch.zeros(1)}, junk)
    with pytest.raises(UserError, match="not a torch-fidelity Inception state dict"):
        M.resolve_weights(str(junk), tmp_path)


def test_bad_requests_are_user_errors(tmp_path: Path, tiny_extractor, tiny_generator, reference):
    adapter = M.GeneratorAdapter(tiny_generator(), 8)
    with pytest.raises(UserError, match="at least one metric"):
        M.compute_metrics(adapter, reference(), fid=False, feature_extractor=tiny_extractor, cache=tmp_path)
    with pytest.raises(UserError, match="need a reference"):
        M.compute_metrics(adapter, None, num_fake=10, feature_extractor=tiny_extractor, cache=tmp_path)
    with pytest.raises(UserError, match="num_fake"):
        M.compute_metrics(adapter, reference(), feature_extractor=tiny_extractor, cache=tmp_path, verbose=False)
