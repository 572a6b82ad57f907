""":func:`compute_metrics`: FID / IS / KID / precision and recall of generated images against a reference set, in
one call whose arguments are the protocol and whose result states it."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import (
    create_feature_extractor,
    get_featuresdict_from_dataset,
    get_featuresdict_from_generative_model,
)

from gan.errors import UserError
from gan.metrics.adapters import GeneratorAdapter
from gan.metrics.inception import INCEPTION, InceptionWeights, resolve_weights
from gan.metrics.protocols import EVAL_SEED
from gan.metrics.reference import Reference, reference_statistics
from gan.metrics.scores import frechet_distance, inception_score, kernel_inception_distance
from gan.metrics.shards import Shard, shared_fake_features
from gan.utils.modes import eval_mode


def feature_layer(extractor: str, metric: str) -> str:
    """The layer of a torch-fidelity extractor that ``metric`` (fid, isc, kid, prc) reads."""
    if extractor not in FEATURE_EXTRACTORS_REGISTRY:
        raise UserError(f"feature extractor {extractor!r} is not registered with torch-fidelity")
    return FEATURE_EXTRACTORS_REGISTRY[extractor].get_default_feature_layer_for_metric(metric)


def feature_layers(extractor: str, fid: bool, isc: bool, kid: bool, prc: bool = False) -> dict[str, str]:
    """Metric -> layer for the requested metrics; FID, KID and PRC share one layer (and so the reference cache)."""
    wanted = (("fid", fid), ("isc", isc), ("kid", kid), ("prc", prc))
    layers = {m: feature_layer(extractor, m) for m, on in wanted if on}
    if len({layers[m] for m in ("fid", "kid", "prc") if m in layers}) > 1:
        raise UserError("FID, KID and precision/recall must use the same feature layer to share reference statistics")
    return layers


def extractor_weights(extractor: str, weights: str | InceptionWeights, isc: bool, cache: Path | None,
                      verbose: bool) -> InceptionWeights | None:
    """The Inception weights to load (None for other extractors); IS without a classifier is refused here."""
    if extractor != INCEPTION:
        return None
    resolved = resolve_weights(weights, cache, verbose)
    if isc and not resolved.has_logits:
        raise UserError(
            f"Inception Score needs Inception's 1008-way classifier, which the {resolved.kind} weights "
            f"({resolved.ident}) do not have; compute FID/KID only, or use --inception-weights default"
        )
    return resolved


def fake_features(fake: GeneratorAdapter | Dataset, extractor: nn.Module, num_fake: int | None, batch_size: int,
                  cuda: bool, seed: int, verbose: bool) -> tuple[dict[str, Tensor], int]:
    """torch-fidelity's own feature extraction of the generated set (the only cost once statistics are cached)."""
    if isinstance(fake, GeneratorAdapter):
        with eval_mode(fake), torch.no_grad(), fake.sampling(num_fake, seed):
            return get_featuresdict_from_generative_model(fake, extractor, num_fake, batch_size, cuda, seed,
                                                          verbose), num_fake
    return get_featuresdict_from_dataset(fake, extractor, batch_size, cuda, not cuda, verbose), len(fake)


def compute_metrics(
    fake: GeneratorAdapter | Dataset,
    reference: Reference | None,
    *,
    num_fake: int | None = None,
    fid: bool = True,
    isc: bool = False,
    kid: bool = False,
    prc: bool = False,
    weights: str | InceptionWeights = "default",
    feature_extractor: str = INCEPTION,
    seed: int = EVAL_SEED,
    isc_splits: int = 10,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    prc_neighborhood: int = 3,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    cache: Path | None = None,
    verbose: bool = True,
    shard: Shard | None = None,
) -> dict | None:
    """FID / IS / KID / precision and recall of generated images against a reference set, with the protocol in the
    result.

    ``fake`` is a :class:`GeneratorAdapter` (``num_fake`` samples drawn from torch-fidelity's seeded noise,
    in eval mode; a conditional one's labels as :class:`GeneratorAdapter` draws them) or a Dataset of uint8 3xHxW
    images (all of it). FID, KID and PRC need ``reference``; its statistics (and, for KID and PRC, its features)
    come from the disk cache, so only the fake features are extracted. IS, KID and precision / recall
    (Kynkaanniemi et al. 2019: k-th nearest neighbour balls, k = ``prc_neighborhood``) are torch-fidelity's own
    functions; FID is its formula evaluated with a cached covariance square root.
    The caller's random streams are left as they were (training goes on exactly as without evaluation).
    Returns ``{"metrics": {...}, "protocol": {...}, "weights": {...}, "seconds": float}``.

    With ``shard`` (a distributed run, every process calling), each process generates and extracts its share of
    a generator's images (:mod:`gan.metrics.shards`) and rank 0 scores them: the same numbers as one process;
    the other ranks return None.
    """
    if not (fid or isc or kid or prc):
        raise UserError("choose at least one metric: fid, isc, kid or prc")
    if (fid or kid or prc) and reference is None:
        raise UserError("FID, KID and precision/recall need a reference dataset")
    if isinstance(fake, GeneratorAdapter) and (not num_fake or num_fake < 2):
        raise UserError("num_fake (--num-fake) must be at least 2 for a generator")
    start = time.perf_counter()
    device = torch.device(device)
    resolved = extractor_weights(feature_extractor, weights, isc, cache, verbose)
    layers = feature_layers(feature_extractor, fid, isc, kid, prc)
    found = _features(fake, reference, num_fake, layers, feature_extractor, resolved, kid or prc, seed, batch_size,
                      device, cache, verbose, shard)
    if found is None:
        return None  # another rank's share: rank 0 scores
    feats, ref_stats, num_fake = found
    metrics: dict[str, float] = {}
    if fid:
        metrics["fid"] = frechet_distance(feats[layers["fid"]].to(device), ref_stats)
    if isc:
        metrics.update(inception_score(feats[layers["isc"]], isc_splits, seed))
    if kid:
        kid_subset_size = min(kid_subset_size, num_fake, int(ref_stats["features"].shape[0]))
        metrics.update(kernel_inception_distance(feats[layers["kid"]], ref_stats["features"], kid_subsets,
                                                 kid_subset_size, seed, verbose))
    if prc:
        out = prc_features_to_metric(feats[layers["prc"]], ref_stats["features"], prc_neighborhood=prc_neighborhood,
                                     prc_batch_size=10000, save_cpu_ram=True, verbose=False)
        metrics.update(precision=out[KEY_METRIC_PRECISION], recall=out[KEY_METRIC_RECALL])
    protocol = _describe(fake, reference, num_fake, ref_stats, seed, feature_extractor, layers,
                         {"isc_splits": isc_splits} if isc else {},
                         {"kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size} if kid else {},
                         {"prc_neighborhood": prc_neighborhood} if prc else {})
    return {
        "metrics": metrics,
        "protocol": protocol,
        "weights": resolved.describe() if resolved else {"kind": "extractor", "ident": feature_extractor},
        "seconds": time.perf_counter() - start,
    }


def _describe(fake: GeneratorAdapter | Dataset, reference: Reference | None, num_fake: int,
              ref_stats: dict[str, Tensor] | None, seed: int, feature_extractor: str, layers: dict[str, str],
              *options: dict) -> dict:
    """The protocol a result records: what was generated and how many, the reference and its count, the seed, the
    extractor and its layers, and each metric's own options."""
    generator = isinstance(fake, GeneratorAdapter)
    protocol = {
        "fake": ("EMA generator" if fake.ema else "generator") if generator else "images",
        "num_fake": num_fake,
        **(fake.describe_labels() if generator else {}),
        **(reference.describe() if reference is not None else {}),
        "num_real_used": int(ref_stats["num_samples"]) if ref_stats is not None else None,
        "seed": seed,
        "feature_extractor": feature_extractor,
        "feature_layers": layers,
    }
    for option in options:
        protocol.update(option)
    return protocol


def _features(fake: GeneratorAdapter | Dataset, reference: Reference | None, num_fake: int | None,
              layers: dict[str, str], feature_extractor: str, resolved: InceptionWeights | None,
              with_features: bool, seed: int, batch_size: int, device: torch.device, cache: Path | None,
              verbose: bool, shard: Shard | None) -> tuple[dict[str, Tensor], dict[str, Tensor] | None, int] | None:
    """(fake features by layer, the reference's cached statistics or None, the number of fakes), or None on a rank
    that only contributed its share of a sharded evaluation."""
    cuda = device.type == "cuda"
    shared_layer = next((layers[m] for m in ("fid", "kid", "prc") if m in layers), None)
    # building the extractor and iterating a DataLoader draw from torch's global RNG: leave the caller's alone
    with torch.random.fork_rng(devices=[device] if cuda else []):
        extractor = create_feature_extractor(
            feature_extractor, sorted(set(layers.values())), cuda=cuda, verbose=verbose,
            feature_extractor_weights_path=resolved.path if resolved else None,
        )

        def reference_stats() -> dict[str, Tensor] | None:
            if shared_layer is None:
                return None
            return reference_statistics(
                reference, extractor, shared_layer, resolved.ident if resolved else "",
                with_features=with_features, batch_size=batch_size, cuda=cuda, cache=cache, verbose=verbose,
            )

        if shard is None or not isinstance(fake, GeneratorAdapter):
            ref_stats = reference_stats()
            feats, num_fake = fake_features(fake, extractor, num_fake, batch_size, cuda, seed, verbose)
            return feats, ref_stats, num_fake
        feats = shared_fake_features(fake, extractor, num_fake, batch_size, cuda, seed, shard, verbose)
        if feats is None:
            return None
        return feats, reference_stats(), num_fake  # rank 0 alone: from the cache after the first evaluation
