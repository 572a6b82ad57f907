"""``gan bench fid``: with cached reference statistics an evaluation should cost only the generated images'
features. Times, in one process and interleaved, (a) torch-fidelity extracting those features, (b)
torch-fidelity's ``calculate_metrics`` with its own cache of the reference statistics, and (c)
``gan.metrics.compute_metrics``; the target is (c) <= 1.05 x (a)."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch_fidelity
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_generative_model

from gan.bench import device_description, interleaved_medians
from gan.data import SyntheticImages
from gan.metrics import (
    EVAL_SEED,
    INCEPTION,
    GeneratorAdapter,
    InceptionWeights,
    Reference,
    UInt8Images,
    compute_metrics,
    inception_layout,
    resolve_weights,
)
from gan.models import build_generator
from gan.utils.markdown import markdown_table

TARGET = 1.05
FEATURES = "torch-fidelity: features of the generated images"
OURS = "gan compute_metrics, reference cached"


def weights_for_timing(spec: str, folder: Path) -> InceptionWeights:
    """``random``: an untrained Inception of the same shape (same cost, no file to fetch: GPU machines
    without network); anything else goes through :func:`gan.metrics.resolve_weights`."""
    if spec != "random":
        return resolve_weights(spec)
    path = folder / "inception-random.pth"
    torch.save(inception_layout(), path)
    return InceptionWeights("random", str(path), "random-init (timing only)", True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(prog="gan bench fid", description=__doc__)
    p.add_argument("--num-fake", type=int, default=5000 if cuda else 128, help="generated images per evaluation")
    p.add_argument("--num-real", type=int, default=2048 if cuda else 256, help="reference images (cached once)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--arch", default="cnn", help="generator architecture (cnn, resnet)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="interleaved timed rounds (median reported)")
    p.add_argument("--inception-weights", default="offline", help="offline, default, random or a file")
    p.add_argument("--json", help="also write the numbers here")
    return p.parse_args(argv)


def evaluations(args: argparse.Namespace, cache: Path) -> tuple[dict[str, Callable[[], object]], InceptionWeights]:
    """The three ways to evaluate one generator against one reference (cached in ``cache``), and the weights."""
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    adapter = GeneratorAdapter(build_generator(args.arch, args.image_size, 3).to(device).eval(), 128)
    weights = weights_for_timing(args.inception_weights, cache)
    real = SyntheticImages(args.num_real, args.image_size, 3)  # needs no download; timing ignores content
    reference = Reference("bench-noise", lambda: UInt8Images(real), args.image_size)
    common = {"batch_size": args.batch_size, "cuda": cuda, "verbose": False}

    def tf_features() -> None:
        extractor = create_feature_extractor(INCEPTION, ["2048"], feature_extractor_weights_path=weights.path,
                                             **common)
        get_featuresdict_from_generative_model(adapter, extractor, args.num_fake, args.batch_size, cuda,
                                               EVAL_SEED, False)

    def tf_metrics() -> None:
        torch_fidelity.calculate_metrics(
            input1=adapter, input2=UInt8Images(real), input2_cache_name="gan-bench-noise", fid=True,
            input1_model_num_samples=args.num_fake, cache_root=str(cache / "tf"), save_cpu_ram=not cuda,
            feature_extractor_weights_path=weights.path, **common,
        )

    def ours() -> None:
        compute_metrics(adapter, reference, num_fake=args.num_fake, weights=weights, batch_size=args.batch_size,
                        device=device, cache=cache, verbose=False)

    return {FEATURES: tf_features, "torch-fidelity calculate_metrics, reference cached": tf_metrics, OURS: ours}, \
        weights


def report(args: argparse.Namespace, seconds: dict[str, float], weights: InceptionWeights) -> None:
    base = seconds[FEATURES]
    rows = [[name, f"{t:.2f}", f"{args.num_fake / t:.1f}", f"{t / base:.3f}"] for name, t in seconds.items()]
    print(f"FID evaluation, {args.num_fake} generated {args.image_size}px images ({args.arch} G), reference "
          f"statistics cached; Inception weights: {weights.kind}; {device_description()}; median of "
          f"{args.repeats} interleaved rounds\n")
    print(markdown_table(["what", "seconds", "images/s", "x torch-fidelity features"], rows))
    ratio = seconds[OURS] / base
    print(f"\ngan evaluation / torch-fidelity feature extraction = {ratio:.3f} "
          f"({'within' if ratio <= TARGET else 'ABOVE'} the {TARGET}x target)")
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": seconds, "ratio": ratio, "num_fake": args.num_fake,
                                               "device": device_description(), "weights": weights.kind}, indent=1))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cases, weights = evaluations(args, Path(tmp))
        # the warm-up call fills both reference caches and loads the weights into the page cache
        seconds = interleaved_medians(cases, repeats=args.repeats, warmup=1)
    report(args, seconds, weights)
    return 0
