"""The scores from features: FID (torch-fidelity's formula, evaluated with a cached covariance square root),
IS and KID (torch-fidelity's own functions), under the names results use."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric

from gan.errors import UserError


def gaussian_statistics(features: Tensor) -> dict[str, Tensor]:
    """Mean, covariance trace and the covariance's PSD square root (float64): all an FID against this set
    needs (the covariance itself is ``sqrt_sigma @ sqrt_sigma``)."""
    x = features.double()
    sigma = torch.cov(x.T).reshape(x.shape[1], x.shape[1])
    w, v = torch.linalg.eigh(sigma)
    sqrt_sigma = (v * w.clamp_min(0).sqrt()) @ v.T
    return {"mu": x.mean(0), "trace_sigma": torch.trace(sigma), "sqrt_sigma": sqrt_sigma}


def frechet_distance(features: Tensor, reference: dict[str, Tensor]) -> float:
    """FID of ``features`` against cached reference statistics, as torch-fidelity defines it.

    ``tr sqrt(S_r S_f)`` is the sum of singular values of ``Xc S_r^(1/2) / sqrt(n - 1)`` (Xc: centred fake
    features), so with ``S_r^(1/2)`` cached the cost is a few matrix products instead of a 2048x2048
    non-symmetric eigen-decomposition per evaluation (15 s on a 2-core CPU).
    """
    x = features.double()
    n = x.shape[0]
    if n < 2:
        raise UserError("FID needs at least 2 generated images")
    mu = x.mean(0)
    xc = x - mu
    y = xc @ reference["sqrt_sigma"].to(x.device) / math.sqrt(n - 1)
    if n <= y.shape[1]:
        tr_covmean = torch.linalg.svdvals(y).sum()
    else:
        tr_covmean = torch.linalg.eigvalsh(y.T @ y).clamp_min(0).sqrt().sum()
    diff = mu - reference["mu"].to(x.device)
    tr_fake = xc.pow(2).sum() / (n - 1)
    return float(diff @ diff + reference["trace_sigma"].to(x.device) + tr_fake - 2 * tr_covmean)


def inception_score(logits: Tensor, splits: int, seed: int) -> dict[str, float]:
    """IS over ``splits`` splits of the classifier logits (torch-fidelity's, shuffled with ``seed``)."""
    out = isc_features_to_metric(logits, splits, True, seed)
    return {"is_mean": out["inception_score_mean"], "is_std": out["inception_score_std"]}


def kernel_inception_distance(features: Tensor, reference: Tensor, subsets: int, subset_size: int, seed: int,
                              verbose: bool) -> dict[str, float]:
    """KID: polynomial-kernel MMD over ``subsets`` random subsets of ``subset_size`` (torch-fidelity's)."""
    out = kid_features_to_metric(features, reference, kid_subsets=subsets, kid_subset_size=subset_size,
                                 rng_seed=seed, verbose=verbose)
    return {"kid_mean": out["kernel_inception_distance_mean"], "kid_std": out["kernel_inception_distance_std"]}
