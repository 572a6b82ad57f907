"""Intra-class FID (Miyato & Koyama 2018): the FID of each class's generated images against the same class of the
reference set, reported per class and as their mean. It tells a conditional model that draws good images of the
wrong class (plain FID over all classes cannot) from one that follows its labels."""

from __future__ import annotations

from pathlib import Path

import torch

from gan.errors import UserError
from gan.metrics.adapters import GeneratorAdapter
from gan.metrics.compute import compute_metrics
from gan.metrics.inception import INCEPTION, InceptionWeights, resolve_weights
from gan.metrics.protocols import EVAL_SEED, fake_per_class
from gan.metrics.reference import Reference


def check_intra_class_fid(fake: GeneratorAdapter, reference: Reference, num_fake: int,
                          option: str = "--num-fake") -> int:
    """One-line UserErrors for an intra-class FID that cannot be measured (checked before any image is generated);
    returns the generated images per class."""
    classes = fake.classes
    if classes is None:
        raise UserError("intra-class FID needs a class-conditional generator (model.num_classes); this one is "
                        "unconditional")
    found = reference.num_classes()
    if found is None:
        raise UserError(f"intra-class FID needs a labelled reference; {reference.name} has no class labels "
                        "(choose a labelled split with --split / --dataset)")
    if found != classes:
        raise UserError(f"reference {reference.name} has {found} classes but the generator {classes}; choose the "
                        "dataset the model was trained on")
    per_class = fake_per_class(num_fake, classes)
    if per_class < 2:
        raise UserError(f"{option} {num_fake} gives {per_class} generated images per class ({classes} classes); "
                        f"intra-class FID needs at least {2 * classes}")
    return per_class


def intra_class_fid(
fake: GeneratorAdapter, reference: Reference, *, num_fake: int,
                    weights: str | InceptionWeights = "default", feature_extractor: str = INCEPTION,
                    seed: int = EVAL_SEED, batch_size: int = 64, device: str | torch.device = "cpu",
                    cache: Path | None = None, verbose: bool = True) -> dict:
    """Per-class FIDs of a conditional generator and their mean.

    Class k: ``num_fake // num_classes`` images, all labelled k, from the latents of ``seed`` (the same latents for
    every class, so classes differ by their label alone), against the class-k images of ``reference``'s seeded
    subset, whose statistics are cached per class like any reference's. Returns the ``result["intra_fid"]`` record.
    """
    per_class = check_intra_class_fid(fake, reference, num_fake)
    classes = fake.classes
    if feature_extractor == INCEPTION:
        weights = resolve_weights(weights, cache, verbose)  # once, not per class
    fids, reals = {}, {}
    for k in range(classes):
        result = compute_metrics(fake.for_class(k), reference.for_class(k), num_fake=per_class, fid=True,
                                 weights=weights, feature_extractor=feature_extractor, seed=seed,
                                 batch_size=batch_size, device=device, cache=cache, verbose=verbose)
        fids[str(k)], reals[str(k)] = result["metrics"]["fid"], result["protocol"]["num_real_used"]
    return {
        "mean": sum(fids.values()) / classes,
        "per_class": fids,
        "num_fake_per_class": per_class,
        "num_real_per_class": reals,
        "fake": f"{per_class} images per class, every one labelled with its class, the same latents (seed {seed}) "
                "for every class",
        "real": f"each class's images among the reference's {reference.num_samples or 'whole split'} (subset seed "
                f"{reference.seed})",
    }
