"""``gan bench gpu``: what makes SNGAN training fast on one GPU, measured side by side in one run (< 6 minutes).

Cells, in order of importance (each runs in try/except: a failure becomes one line in its place; a cell that
would start after ``--budget`` seconds is skipped, and a cell still running then is stopped):

1. G-steps/s of the CIFAR-10 configs' models (configs/cifar10/<arch>_<norm>.yaml: paper widths, batch 64, n_dis 5,
   the ConvNorm variant they name) in the LightningModule, for D norms none / spectral / convnorm, by method:
   ``eager``; ``cuda_graphs`` (whole D and G steps replayed as CUDA graphs); ``compile:<mode>`` (torch.compile of
   G and D); ``compile:<mode>+cuda_graphs``; in fp32 (``32-true``) and ``bf16-mixed``;
2. a consistency check: cuda_graphs training against eager training from the same start;
3. the LightningModule against the same step as a plain PyTorch loop, interleaved step by step;
4. ConvNorm (fast path) against nn.Conv2d per discriminator layer (the layers of ``gan bench convnorm``);
5. Inception features of generated images, as an evaluation extracts them (a randomly initialised torch-fidelity
   Inception: the time does not depend on the weights, and the machine needs no weights file).

Data are random 32x32 images in memory (no network). The markdown tables and a JSON of every number are rewritten
to ``--out`` (and ``--out`` with ``.json``) after every cell, so a run cut short still leaves what it measured.
``--tiny`` shrinks models and batches so that the whole command also runs on a CPU.
"""


from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import torch
import yaml

from gan.bench import device_description
from gan.bench.convnorm import LAYERS
from gan.bench.gpu_cells import CONFIGS, DEFAULT_NORMS, METHODS, PRECISIONS, Settings, method_switches, plan
from gan.bench.gpu_report import report
from gan.bench.harness import run_cells
from gan.layers.norms import NORMS
from gan.models import ARCHS


def main(argv: list[str]) -> int:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(prog="gan bench gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="bench_gpu.md", help="markdown report (the JSON goes beside it)")
    p.add_argument("--budget", type=float, default=330.0, help="seconds for all cells (default 330)")
    p.add_argument("--steps", type=int, default=20 if cuda else 2, help="timed G steps per cell")
    p.add_argument("--warmup", type=int, default=5 if cuda else 1,
                   help="G steps before timing (cuda_graphs records at the 4th)")
    p.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    p.add_argument("--norms", nargs="+", default=list(DEFAULT_NORMS), choices=NORMS)
    p.add_argument("--convnorm-backend", choices=("fft", "dft"),
                   help="the ConvNorm models' fast-path transforms (default: by device, cuFFT on a GPU); dft = real "
                        "matmuls, one more candidate once CUDA graphs remove the launch cost")
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    p.add_argument("--methods", nargs="+", default=list(METHODS),
                   help="eager, cuda_graphs, compile:<mode>, compile:<mode>+cuda_graphs")
    p.add_argument("--layers", type=int, default=len(LAYERS), help="ConvNorm layers to time (0: none)")
    p.add_argument("--layer-repeats", type=int, default=10 if cuda else 2)
    p.add_argument("--inception-images", type=int, default=10_000 if cuda else 64, help="0: skip")
    p.add_argument("--configs", type=Path, default=CONFIGS, help="folder of <arch>_<norm>.yaml (default: cifar10)")
    p.add_argument("--tiny", action="store_true", help="widths 8 and batch 8: a CPU runs every cell in minutes")
    args = p.parse_args(argv)
    for method in args.methods:
        method_switches(method)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*dataloader_iter.*")
    settings = Settings(args.steps, args.warmup, args.tiny, args.configs, args.layer_repeats, args.inception_images,
                        args.convnorm_backend)
    cells = plan(settings, args.archs, args.norms, args.precisions, args.methods, args.layers)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    convnorm = yaml.safe_load((args.configs / "cnn_convnorm.yaml").read_text())["model"].get("convnorm") \
        if (args.configs / "cnn_convnorm.yaml").is_file() else None
    started = time.monotonic()
    header = (f"Device: {device_description()}; configs: {args.configs} (ConvNorm variant: "
              f"{convnorm or 'ConvNorm2d defaults'}"
              f"{f', backend {args.convnorm_backend}' if args.convnorm_backend else ''})"
              f"{'; --tiny: widths 8, batch 8' if args.tiny else ''}; "
              f"32x32x3 random images in memory; median of {args.steps} G steps after {args.warmup} warm-up")

    def write() -> None:
        used = time.monotonic() - started
        text = report(cells, f"{header}; {used:.0f} s of the {args.budget:.0f} s budget used.", settings.layer_batch)
        out.write_text(text + "\n")
        out.with_suffix(".json").write_text(json.dumps({
            "device": device_description(), "torch": torch.__version__, "settings": vars(args) | {
                "configs": str(args.configs), "out": str(out)}, "convnorm": convnorm, "seconds": used,
            "cells": [{"section": c.section, **c.key, "status": c.status, "seconds": round(c.seconds, 2),
                       **c.result} for c in cells]}, indent=1))

    write()
    run_cells(cells, args.budget, write)
    write()
    print(f"\nwrote {out} and {out.with_suffix('.json')}")
    return 0
