"""``gan bench WHAT``: dispatch to the benchmark modules in ``gan.bench``."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "convnorm": "ConvNorm2d (each algorithm, the dispatch's choice) vs nn.Conv2d and SN, per layer and whole D",
    "step": "one G step + n_dis D steps: LightningModule vs a plain PyTorch loop; G-steps/s per config",
    "fid": "evaluation with cached reference statistics vs torch-fidelity's own feature extraction",
    "gpu": "G-steps/s by method (eager, CUDA graphs, compile) and precision, loop overhead, ConvNorm layers, "
           "Inception features: one robust run for a GPU (--tiny on a CPU)",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: gan bench WHAT [options]   (gan bench WHAT --help)\n\nbenchmarks:")
        for name, text in BENCHMARKS.items():
            print(f"  {name:<9} {text}")
        return 0
    if argv[0] not in BENCHMARKS:
        print(f"gan bench: unknown benchmark {argv[0]!r}; choose one of: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    return int(importlib.import_module(f"gan.bench.{argv[0]}").main(argv[1:]) or 0)
