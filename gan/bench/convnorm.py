"""``gan bench convnorm``: ConvNorm2d's cost against nn.Conv2d, per discriminator layer and for a whole D.

Every row times forward + backward (input and weight gradients) of one layer at its real place in the SNGAN
discriminators (batch 64, 32x32 images), for nn.Conv2d, ConvNorm2d on its fast and reference paths, and
nn.Conv2d with spectral norm, round-robin in one run; ratios are to nn.Conv2d measured alongside.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan.bench import device_description, interleaved_medians
from gan.layers.convnorm import ConvNorm2d
from gan.utils.devices import resolve_device
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
TARGETS = {1: 2.5, 2: 4.0}  # the most fast / nn.Conv2d may cost, by stride (README: Speed)


def _fwd_bwd(module: nn.Module, x: torch.Tensor):
    def run() -> None:
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
        "fast": ConvNorm2d.from_conv(conv, **options),
        "reference": ConvNorm2d.from_conv(conv, path="reference", **options),
        "spectral": spectral_norm(nn.Conv2d(case.c_in, case.c_out, case.kernel, case.stride, case.padding)),
    }
    x = torch.randn(batch, case.c_in, case.size, case.size, device=device, requires_grad=True)
    return interleaved_medians({k: _fwd_bwd(m.to(device), x) for k, m in variants.items()}, repeats=repeats)


def bench_discriminator(arch: str, batch: int, repeats: int, device: torch.device) -> dict[str, float]:
    from gan.models import build_discriminator

    x = torch.randn(batch, 3, 32, 32, device=device, requires_grad=True)
    fns = {}
    for norm in ("spectral", "convnorm"):
        torch.manual_seed(0)
        fns[norm] = _fwd_bwd(build_discriminator(arch, 32, 3, norm=norm).to(device), x)
    return interleaved_medians(fns, repeats=repeats)


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
    args = parser.parse_args(argv)
    torch.set_float32_matmul_precision(args.matmul_precision)
    result = run(args.batch, args.repeats, args.device, tuple(args.models))
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0
