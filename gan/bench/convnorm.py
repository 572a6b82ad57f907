"""``gan bench convnorm``: ConvNorm2d's cost against nn.Conv2d, per discriminator layer and for a whole D.

Every row times forward + backward (input and weight gradients) of one layer, round-robin in one run; ratios are
to nn.Conv2d measured alongside. Each run first touches the weights, as an optimizer step does, so ConvNorm
recomputes V as it does on every D step of training. Two modes:

* by default, every layer at its real place in the SNGAN discriminators (batch 64, 32x32 images): nn.Conv2d,
  ConvNorm2d on its fast and reference algorithms, and nn.Conv2d with spectral norm;
* ``--sizes`` / ``--batches``: a sweep of 64->64 and 128->128 layers (3x3 stride 1, 4x4 stride 2) over image
  sizes and batches, for every algorithm and the one the dispatch chooses (``algorithm="auto"``, checked to be
  within 5 % of the best single algorithm), then whole ResNet discriminators, convnorm against spectral.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan.bench import device_description, interleaved_medians
from gan.layers.convnorm import CHOICES, ConvNorm2d, choice_name
from gan.utils.devices import resolve_device
from gan.utils.files import atomic_write
from gan.utils.markdown import markdown_table


@dataclass(frozen=True)
class LayerCase:
    model: str
    c_in: int
    c_out: int
    kernel: int
    stride: int
    padding: int
    size: int

    @property
    def label(self) -> str:
        k, n = self.kernel, self.size
        return f"{self.model} {self.c_in}->{self.c_out} {k}x{k} s{self.stride} @{n}x{n}"


# The distinct conv layers of the SNGAN standard-CNN and ResNet discriminators on 32x32 images (gan.models).
LAYERS = [
    LayerCase("cnn", 3, 64, 3, 1, 1, 32),
    LayerCase("cnn", 64, 64, 4, 2, 1, 32),
    LayerCase("cnn", 64, 128, 3, 1, 1, 16),
    LayerCase("cnn", 128, 128, 4, 2, 1, 16),
    LayerCase("cnn", 128, 256, 3, 1, 1, 8),
    LayerCase("cnn", 256, 256, 4, 2, 1, 8),
    LayerCase("cnn", 256, 512, 3, 1, 1, 4),
    LayerCase("resnet", 3, 128, 3, 1, 1, 32),
    LayerCase("resnet", 128, 128, 3, 1, 1, 32),
    LayerCase("resnet", 3, 128, 1, 1, 0, 16),
    LayerCase("resnet", 128, 128, 3, 1, 1, 16),
    LayerCase("resnet", 128, 128, 1, 1, 0, 16),
    LayerCase("resnet", 128, 128, 3, 1, 1, 8),
]
TARGETS = {1: 2.5, 2: 4.0}  # the most fast / nn.Conv2d may cost, by stride (docs/speed.md)
SWEEP_TARGETS = {1: 2.0, 2: 3.0}  # the most the chosen algorithm / nn.Conv2d may cost, by stride (issue 17)
CHOSEN_SLACK = 1.05  # the chosen algorithm may be this much slower than the best single one (timing noise)
WHOLE_TARGET = 1.8  # the most a whole ResNet D with ConvNorm may cost over spectral norm


def _fwd_bwd(module: nn.Module, x: torch.Tensor):
    params = list(module.parameters())

    def run() -> None:
        with torch.no_grad():  # a new version of every weight, as after an optimizer step: V is recomputed
            for p in params:
                p.add_(0)
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).sum().backward()

    return run


def bench_layer(case: LayerCase, batch: int, repeats: int, device: torch.device,
                convnorm: dict | None = None) -> dict[str, float]:
    """Medians of forward + backward of one layer: conv, ConvNorm fast / reference (``convnorm``: the variant's
    options, e.g. a config's ``model.convnorm``), and spectral-normed conv."""
    torch.manual_seed(0)
    conv = nn.Conv2d(case.c_in, case.c_out, case.kernel, case.stride, case.padding).to(device)
    options = convnorm or {}
    variants = {
        "conv": conv,
        "fast": ConvNorm2d.from_conv(conv, **{**options, "algorithm": "fast"}),
        "reference": ConvNorm2d.from_conv(conv, **{**options, "algorithm": "reference"}),
        "spectral": spectral_norm(nn.Conv2d(case.c_in, case.c_out, case.kernel, case.stride, case.padding)),
    }
    x = torch.randn(batch, case.c_in, case.size, case.size, device=device, requires_grad=True)
    return interleaved_medians({k: _fwd_bwd(m.to(device), x) for k, m in variants.items()}, repeats=repeats)


def bench_discriminator(arch: str, batch: int, repeats: int, device: torch.device, size: int = 32,
                        width: int | None = None) -> dict[str, float]:
    """Medians of forward + backward of a whole D, spectral norm and ConvNorm (its default, dispatched algorithm:
    the first forward, untimed, makes the layers choose)."""
    from gan.models import build_discriminator

    x = torch.randn(batch, 3, size, size, device=device, requires_grad=True)
    fns = {}
    for norm in ("spectral", "convnorm"):
        torch.manual_seed(0)
        fns[norm] = _fwd_bwd(build_discriminator(arch, size, 3, norm=norm, width=width).to(device), x)
    return interleaved_medians(fns, repeats=repeats)


def sweep_cases(sizes: tuple[int, ...], channels: tuple[int, ...]) -> list[LayerCase]:
    """The sweep's layers: for every channel count and size, a 3x3 stride-1 and a 4x4 stride-2 conv (padding 1)."""
    return [LayerCase("sweep", c, c, k, s, 1, n) for c in channels for n in sizes for k, s in ((3, 1), (4, 2))]


def bench_algorithms(case: LayerCase, batch: int, repeats: int, device: torch.device) -> dict:
    """Medians of forward + backward for nn.Conv2d, ConvNorm2d with every algorithm the device offers (forced),
    and with ``algorithm="auto"``, whose choice (made by its first train forward, before the timed runs) is
    returned too."""
    torch.manual_seed(0)
    conv = nn.Conv2d(case.c_in, case.c_out, case.kernel, case.stride, case.padding).to(device)
    x = torch.randn(batch, case.c_in, case.size, case.size, device=device, requires_grad=True)
    offered = [c for c in CHOICES if c[1] != "fft" or device.type == "cuda"]  # cuFFT: the GPU's transforms
    variants = {"conv": conv, "auto": ConvNorm2d.from_conv(conv)}
    for algorithm, transforms in offered:
        layer = ConvNorm2d.from_conv(conv, algorithm=algorithm, backend=transforms)
        variants[choice_name((algorithm, transforms))] = layer
    _fwd_bwd(variants["auto"], x)()  # the dispatch times its candidates here, once
    chosen = variants["auto"].choice(x)
    times = interleaved_medians({k: _fwd_bwd(m, x) for k, m in variants.items()}, repeats=repeats)
    return {"chosen": choice_name(chosen), "times": times}


def run_sweep(sizes: tuple[int, ...], batches: tuple[int, ...], channels: tuple[int, ...], repeats: int,
              device: str, whole_sizes: tuple[int, ...], whole_batches: tuple[int, ...],
              width: int | None, save: Callable[[dict], None] = lambda result: None) -> dict:
    """The sweep's timings; ``save`` gets the result so far after every row, so an hour-long sweep stopped late
    keeps what it measured."""
    dev = resolve_device(device)
    layers, whole = [], []
    result = {"device": device_description(), "matmul_precision": torch.get_float32_matmul_precision(),
              "repeats": repeats, "width": width, "layers": layers, "whole": whole}
    for case in sweep_cases(sizes, channels):
        for batch in batches:
            r = bench_algorithms(case, batch, repeats, dev)
            t = r["times"]
            layers.append({"layer": f"{case.c_in}->{case.c_out} {case.kernel}x{case.kernel} s{case.stride} "
                                    f"@{case.size}x{case.size} b{batch}", "stride": case.stride, **r})
            print(f"  {layers[-1]['layer']}: conv {t['conv'] * 1e3:.1f} ms, chose {r['chosen']} "
                  f"x{t['auto'] / t['conv']:.2f}", flush=True)
            save(result)
    for size in whole_sizes:
        for batch in whole_batches:
            whole.append({"size": size, "batch": batch,
                          **bench_discriminator("resnet", batch, repeats, dev, size, width)})
            print(f"  resnet D {size}px b{batch}: x{whole[-1]['convnorm'] / whole[-1]['spectral']:.2f}", flush=True)
            save(result)
    return result


def report_sweep(result: dict) -> str:
    """The sweep's table. chosen/conv is the ``auto`` layer's time, what a user runs. The choice itself is judged by
    its algorithm's forced time against the best forced one: the ``auto`` layer runs that same algorithm, so its
    time differs from the forced one only by timing noise and the lookup of its choice (the last column)."""
    algorithms = [k for k in result["layers"][0]["times"] if k not in ("conv", "auto")] if result["layers"] else []
    rows, misses = [], 0
    for r in result["layers"]:
        t = r["times"]
        forced, best = t[r["chosen"]], min(t[a] for a in algorithms)  # the chosen algorithm forced; the quickest
        auto_cost, chosen_ok = t["auto"] / t["conv"], forced <= CHOSEN_SLACK * best
        target = SWEEP_TARGETS[r["stride"]]
        misses += not chosen_ok
        rows.append([r["layer"], f"{t['conv'] * 1e3:.2f}", *(f"{t[a] / t['conv']:.2f}" for a in algorithms),
                     r["chosen"], f"{auto_cost:.2f} ({'ok' if auto_cost <= target else 'over'} <= {target})",
                     f"{forced / best:.2f} ({'ok' if chosen_ok else 'SLOWER'})", f"{t['auto'] / forced:.2f}"])
    header = ["layer (fwd+bwd)", "conv ms", *(f"{a}/conv" for a in algorithms), "chosen", "chosen/conv",
              f"chosen/best (<= {CHOSEN_SLACK})", "auto/forced"]
    width = f", D width {result['width']}" if result["width"] else ""
    text = [f"Device: {result['device']}; float32 matmul precision {result['matmul_precision']}; median of "
            f"{result['repeats']} round-robin runs{width}", "", markdown_table(header, rows), "",
            f"chosen within {CHOSEN_SLACK} x the best single algorithm: {len(rows) - misses} of {len(rows)} layers "
            "(both forced; auto/forced: the auto layer, which runs the chosen algorithm, over that algorithm forced)"]
    whole_rows = [[f"resnet D {w['size']}px, batch {w['batch']} (fwd+bwd)", f"{w['spectral'] * 1e3:.1f}",
                   f"{w['convnorm'] * 1e3:.1f}", f"{w['convnorm'] / w['spectral']:.2f} "
                   f"({'ok' if w['convnorm'] / w['spectral'] <= WHOLE_TARGET else 'over'} <= {WHOLE_TARGET})"]
                  for w in result["whole"]]
    if whole_rows:
        text += ["", markdown_table(["whole discriminator", "spectral ms", "convnorm ms", "convnorm/spectral"],
                                    whole_rows)]
    return "\n".join(text)


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be >= 1")
    return values


def run(batch: int = 64, repeats: int = 7, device: str = "auto", models: tuple[str, ...] = ("cnn", "resnet")) -> dict:
    dev = resolve_device(device)
    layers = []
    for case in (c for c in LAYERS if c.model in models):
        t = bench_layer(case, batch, repeats, dev)
        layers.append({"layer": case.label, "stride": case.stride, "kernel": case.kernel, **t})
        print(f"  {case.label}: conv {t['conv'] * 1e3:.1f} ms, fast x{t['fast'] / t['conv']:.2f}", flush=True)
    whole = {arch: bench_discriminator(arch, batch, repeats, dev) for arch in models}
    precision = torch.get_float32_matmul_precision()
    return {
        "device": device_description(),
        "matmul_precision": precision,
        "batch": batch,
        "repeats": repeats,
        "layers": layers,
        "whole": whole,
    }


def report(result: dict) -> str:
    rows = []
    for r in result["layers"]:
        target = TARGETS[r["stride"]]
        ratio = r["fast"] / r["conv"]
        rows.append(
            [
                r["layer"],
                f"{r['conv'] * 1e3:.2f}",
                f"{r['fast'] * 1e3:.2f}",
                f"{r['reference'] * 1e3:.2f}",
                f"{r['spectral'] * 1e3:.2f}",
                f"{ratio:.2f} ({'ok' if ratio <= target else 'over'} <= {target})",
                f"{r['reference'] / r['fast']:.2f}",
                f"{r['spectral'] / r['conv']:.2f}",
            ]
        )
    header = ["layer (fwd+bwd)", "conv ms", "fast ms", "ref ms", "SN ms", "fast/conv", "ref/fast", "SN/conv"]
    text = [
        f"Device: {result['device']}; float32 matmul precision {result['matmul_precision']}; batch {result['batch']}, "
        f"median of {result['repeats']} round-robin runs",
        "",
    ]
    text.append(markdown_table(header, rows))
    whole_rows = [
        [
            f"{arch} D (fwd+bwd)",
            f"{t['spectral'] * 1e3:.1f}",
            f"{t['convnorm'] * 1e3:.1f}",
            f"{t['convnorm'] / t['spectral']:.2f}",
        ]
        for arch, t in result["whole"].items()
    ]
    text += ["", markdown_table(["whole discriminator", "spectral ms", "convnorm ms", "convnorm/spectral"], whole_rows)]
    return "\n".join(text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gan bench convnorm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64, as in SNGAN)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per variant (median reported)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda if available)")
    parser.add_argument("--models", nargs="+", default=["cnn", "resnet"], choices=["cnn", "resnet"])
    parser.add_argument(
        "--matmul-precision",
        default="highest",
        choices=["highest", "high", "medium"],
        help="torch.set_float32_matmul_precision (high: TF32 matmuls on recent GPUs, which the fast path uses)",
    )
    parser.add_argument("--json", help="also write the raw timings to this JSON file")
    sweep = parser.add_argument_group("sweep (with --sizes): every algorithm and the dispatch's choice")
    sweep.add_argument("--sizes", type=_ints, help="image sizes of the sweep, e.g. 16,32,64,128")
    sweep.add_argument("--batches", type=_ints, default=(8, 32, 64), help="batches of the sweep (default 8,32,64)")
    sweep.add_argument("--channels", type=_ints, default=(64, 128), help="C_in = C_out of its layers (default 64,128)")
    sweep.add_argument("--whole-sizes", type=_ints, default=(32, 48, 64, 128),
                       help="ResNet D layouts timed whole (default 32,48,64,128)")
    sweep.add_argument("--whole-batches", type=_ints, default=(8, 64), help="their batches (default 8,64)")
    sweep.add_argument("--d-width", type=int, help="ResNet D width (default: each layout's own; small = quick)")
    args = parser.parse_args(argv)
    torch.set_float32_matmul_precision(args.matmul_precision)

    def save(result: dict) -> None:
        if args.json:
            atomic_write(Path(args.json), json.dumps(result, indent=2).encode())

    if args.sizes:
        result = run_sweep(args.sizes, args.batches, args.channels, args.repeats, args.device, args.whole_sizes,
                           args.whole_batches, args.d_width, save)
        print(report_sweep(result))
    else:
        result = run(args.batch, args.repeats, args.device, tuple(args.models))
        print(report(result))
    save(result)
    return 0
