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
import contextlib
import gc
import json
import logging
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from gan.bench import device_description
from gan.bench.convnorm import LAYERS, bench_layer
from gan.bench.step import fit_timed, lightning_seconds, lightning_vs_plain, random_images
from gan.errors import UserError
from gan.layers.norms import NORMS
from gan.models import ARCHS, build_generator
from gan.training.module import GAN
from gan.utils.markdown import markdown_table

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "cifar10"  # gan/configs: in a checkout a link to configs/
DEFAULT_NORMS = ("none", "spectral", "convnorm")  # the kinds the targets below name
PRECISIONS = ("32-true", "bf16-mixed")
METHODS = ("eager", "cuda_graphs", "compile:reduce-overhead", "compile:default+cuda_graphs")
TARGETS = {"cnn convnorm G-steps/s": 25.0, "resnet convnorm G-steps/s": 15.0, "convnorm/spectral": 1.3,
           "spectral/none": 1.2, "Lightning/plain": 1.05}
COMPILE_NEEDS_S = 60.0  # budget a torch.compile cell needs to start (compiling G and D takes most of it)


@dataclass
class Cell:
    """One measurement: ``run()`` returns its numbers; ``status`` is ok, failed: <reason> or skipped: <reason>."""

    section: str
    key: dict[str, str]
    run: Callable[[], dict[str, float]]
    needs_s: float = 1.0
    status: str = "pending"
    result: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class CellTimeout(BaseException):
    """Raised in the main thread when a cell outlives the budget (a BaseException, so that no library's
    ``except Exception`` swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise CellTimeout after ``seconds`` (main thread only; elsewhere the budget is checked between cells)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):  # noqa: ANN001 - signal handler signature
        raise CellTimeout(f"stopped at the time budget after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def one_line(err: BaseException) -> str:
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    text = message if isinstance(err, (UserError, CellTimeout)) else f"{type(err).__name__}: {message}"
    return text[:300]


def run_cells(cells: list[Cell], budget_s: float, write: Callable[[], None]) -> None:
    """Run every cell that can start within the budget, each isolated from the others' failures."""
    start = time.monotonic()
    for cell in cells:
        left = budget_s - (time.monotonic() - start)
        if left < cell.needs_s:
            cell.status = f"skipped: time budget ({max(left, 0):.0f} s left, needs {cell.needs_s:.0f} s)"
            continue
        began = time.monotonic()
        try:
            with deadline(left):
                cell.result = cell.run()
            cell.status = "ok"
        except (Exception, CellTimeout) as err:  # noqa: BLE001 - any failure is reported in the cell's place
            cell.status = f"failed: {one_line(err)}"
        cell.seconds = time.monotonic() - began
        release_memory()
        print(f"[{time.monotonic() - start:5.0f} s] {cell.section} {' '.join(cell.key.values())}: "
              f"{cell.status if cell.status != 'ok' else summary(cell)}", flush=True)
        write()


def release_memory() -> None:
    gc.collect()
    torch._dynamo.reset()  # compiled graphs of the cell's models
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def summary(cell: Cell) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in cell.result.items() if isinstance(v, float | int))


# ---- the measurements -----------------------------------------------------------------------------------------
@dataclass
class Settings:
    steps: int
    warmup: int
    tiny: bool
    configs: Path
    layer_repeats: int
    inception_images: int
    convnorm_backend: str | None = None

    @property
    def layer_batch(self) -> int:
        return 4 if self.tiny else 64

    def model(self, arch: str, norm: str, **switches) -> tuple[GAN, int]:
        """The config's GAN (``--tiny``: widths 8, batch 8) with the switches, and its real batch size."""
        path = self.configs / f"{arch}_{norm}.yaml"
        if not path.is_file():
            raise UserError(f"{path} is missing; pass --configs DIR with <arch>_<norm>.yaml files")
        config = yaml.safe_load(path.read_text())
        model, data = dict(config["model"]), config["data"]
        batch = data["batch_size"]
        if self.tiny:
            model.update(g_width=8, d_width=8, g_batch_size=None)
            batch = 8
        if self.convnorm_backend and str(model.get("norm", "")).startswith("convnorm"):
            model["convnorm"] = {**(model.get("convnorm") or {}), "backend": self.convnorm_backend}
        torch.manual_seed(0)
        gan = GAN(**{**model, "image_size": data["image_size"], "channels": data["channels"],
                     "log_every_n_g_steps": 10**9, **switches})
        return gan, batch


def method_switches(method: str) -> dict:
    """``eager`` | ``cuda_graphs`` | ``compile:<mode>`` | ``compile:<mode>+cuda_graphs`` -> GAN arguments."""
    switches: dict = {"compile": None, "cuda_graphs": False}
    for part in method.split("+"):
        if part == "cuda_graphs":
            switches["cuda_graphs"] = True
        elif part.startswith("compile:"):
            switches["compile"] = part.split(":", 1)[1]
        elif part != "eager":
            raise UserError(f"--methods: {method!r} is not eager, cuda_graphs, compile:<mode> or compile:<mode>+"
                            "cuda_graphs")
    return switches


def method_warmup(method: str, warmup: int) -> int:
    """G steps before timing: compiling happens after the first G step (``gan.training.module``), and a recorded step
    replays from the G step after its 3 warm-up calls."""
    switches = method_switches(method)
    first_fast_step = 2 + (switches["compile"] is not None) + 3 * switches["cuda_graphs"]
    return max(warmup, first_fast_step - 1)


def g_steps(settings: Settings, arch: str, norm: str, precision: str, method: str) -> dict[str, float]:
    model, batch = settings.model(arch, norm, **method_switches(method))
    seconds = lightning_seconds(model, random_images(batch, model.image_size, model.channels), settings.steps,
                                method_warmup(method, settings.warmup), precision)
    return {"g_steps_per_s": 1.0 / seconds, "s_per_g_step": seconds}


def captured_matches_eager(settings: Settings) -> dict[str, float]:
    """cnn / convnorm trained warm-up + capture + a few replays with cuda_graphs and eagerly from the same start, and a
    control: eager again from weights perturbed by 1e-7 (relative), the size of a rounding difference.

    A GAN step amplifies rounding quickly (Adam normalises tiny gradients, BN biases start at zero): on the CPU a
    1e-7 perturbation grew to a 0.25 relative difference in one tensor within 8 G steps. So replayed steps count as
    the eager ones when they differ from them no more than the control does (within 10x), not when they are equal.
    """
    runs = {}
    for name, cuda_graphs, perturb in (("eager", False, 0.0), ("captured", True, 0.0), ("control", False, 1e-7)):
        model, batch = settings.model("cnn", "convnorm", cuda_graphs=cuda_graphs)
        if perturb:
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(1 + perturb * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)).to(p))
        fit_timed(model, random_images(batch, model.image_size, model.channels), g_steps=8)
        runs[name] = model
    captured, control = differences(runs["eager"], runs["captured"]), differences(runs["eager"], runs["control"])
    return {**captured, **{f"rounding_{k}": v for k, v in control.items()}}


def differences(a: torch.nn.Module, b: torch.nn.Module) -> dict[str, float]:
    """Largest relative weight difference (per tensor, against its largest entry) and loss difference of two runs."""
    sa, sb = a.state_dict(), b.state_dict()
    weights = max((sb[k].float() - v.float()).abs().max().item() / max(v.float().abs().max().item(), 1e-12)
                  for k, v in sa.items() if v.is_floating_point())
    losses = [abs(a.last_metrics[k] - b.last_metrics[k]) for k in ("loss/d", "loss/g")]
    return {"max_relative_weight_difference": weights, "max_loss_difference": max(losses),
            "identical": float(all(torch.equal(sb[k], v) for k, v in sa.items()))}


def lightning_against_plain(settings: Settings, arch: str, norm: str, wrappers: bool) -> dict[str, float]:
    model, batch = settings.model(arch, norm)
    times = lightning_vs_plain(model, random_images(batch, model.image_size, model.channels), settings.steps,
                               settings.warmup, wrappers=wrappers)
    return {"lightning_s": times["lightning"], "plain_s": times["plain"], "ratio": times["lightning"] / times["plain"]}


def convnorm_layer(settings: Settings, index: int) -> dict[str, float]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    options = yaml.safe_load((settings.configs / "cnn_convnorm.yaml").read_text())["model"].get("convnorm")
    t = bench_layer(LAYERS[index], settings.layer_batch, settings.layer_repeats, device, options)
    return {"conv_ms": t["conv"] * 1e3, "fast_ms": t["fast"] * 1e3, "spectral_ms": t["spectral"] * 1e3,
            "fast/conv": t["fast"] / t["conv"]}


def inception_features(settings: Settings) -> dict[str, float]:
    """Seconds to extract Inception features of generated images, as ``gan eval`` and the FID callback do."""
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_generative_model

    from gan.metrics import INCEPTION, GeneratorAdapter, inception_layout

    cuda = torch.cuda.is_available()
    n, batch = settings.inception_images, 64
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "inception-random.pth"
        torch.save(inception_layout(), weights)
        extractor = create_feature_extractor(INCEPTION, ["2048"], cuda=cuda, verbose=False,
                                             feature_extractor_weights_path=str(weights))
    generator = build_generator("cnn", 32, 3).to("cuda" if cuda else "cpu").eval()
    adapter = GeneratorAdapter(generator, 128)

    def extract(count: int) -> None:
        with torch.no_grad():
            get_featuresdict_from_generative_model(adapter, extractor, count, batch, cuda, 2020, False)

    extract(min(n, 2 * batch))  # warm-up: cuDNN plans, allocator
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    extract(n)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"images": n, "seconds": seconds, "images_per_s": n / seconds}


def plan(settings: Settings, archs: list[str], norms: list[str], precisions: list[str], methods: list[str],
         layers: int) -> list[Cell]:
    """The cells in order of importance: what decides the method first, then the rest as time allows."""

    def steps_cell(arch: str, norm: str, precision: str, method: str) -> Cell:
        needs = COMPILE_NEEDS_S if "compile:" in method else 1.0
        return Cell("g_steps", {"method": method, "precision": precision, "arch": arch, "norm": norm},
                    lambda: g_steps(settings, arch, norm, precision, method), needs)

    fast_methods = [m for m in methods if "compile:" not in m]
    compile_methods = [m for m in methods if "compile:" in m]
    first_precision, other_precisions = precisions[0], precisions[1:]
    cells = [steps_cell(a, n, first_precision, m) for m in fast_methods for a in archs for n in norms]
    if "cuda_graphs" in methods and "convnorm" in norms:
        cells.append(Cell("check", {"what": "cuda_graphs vs eager, cnn convnorm, 8 G steps"},
                          lambda: captured_matches_eager(settings)))
    loops = [(n, steps) for n, steps in (("none", "direct"), ("none", "wrappers"), ("convnorm", "direct"))
             if n in norms]
    cells += [Cell("loop", {"arch": "cnn", "norm": n, "steps": steps},
                   lambda n=n, steps=steps: lightning_against_plain(settings, "cnn", n, steps == "wrappers"))
              for n, steps in loops]
    key_norm = "convnorm" if "convnorm" in norms else norms[-1]
    early_compile = [steps_cell(archs[0], key_norm, first_precision, m) for m in compile_methods]
    cells += early_compile
    cells += [steps_cell(a, n, p, m) for p in other_precisions for m in fast_methods for a in archs for n in norms]
    cells += [Cell("layers", {"layer": LAYERS[i].label}, lambda i=i: convnorm_layer(settings, i))
              for i in range(min(layers, len(LAYERS)))]
    if settings.inception_images > 0:
        cells.append(Cell("inception", {"what": f"{settings.inception_images} generated 32px images, batch 64"},
                          lambda: inception_features(settings)))
    taken = [c.key for c in early_compile]  # then the other compile cells, the key norm first
    cells += [steps_cell(a, n, p, m) for p in precisions for m in compile_methods
              for n in dict.fromkeys((key_norm, *norms)) for a in archs
              if {"method": m, "precision": p, "arch": a, "norm": n} not in taken]
    return cells


# ---- the report ------------------------------------------------------------------------------------------------
class Notes:
    """Cells that did not measure show ``failed [n]`` / ``skipped [n]``; each distinct reason is listed once."""

    def __init__(self) -> None:
        self.reasons: dict[str, int] = {}

    def shown(self, cell: Cell | None, name: str, fmt: str = "{:.2f}") -> str:
        if cell is None:
            return "-"
        if cell.status == "ok":
            return fmt.format(cell.result[name])
        number = self.reasons.setdefault(cell.status, len(self.reasons) + 1)
        return f"{cell.status.split(':')[0]} [{number}]"

    def lines(self) -> list[str]:
        return [f"[{n}] {reason}  " for reason, n in self.reasons.items()]


def _g_steps_table(cells: list[Cell], notes: Notes) -> list[list[str]]:
    rows = []
    keys = sorted({(c.key["method"], c.key["precision"], c.key["arch"]) for c in cells if c.section == "g_steps"},
                  key=lambda k: (METHODS.index(k[0]) if k[0] in METHODS else 99,
                                 PRECISIONS.index(k[1]) if k[1] in PRECISIONS else 99, k[2]))
    norms = measured_norms(cells)
    for method, precision, arch in keys:
        found = {n: next((c for c in cells if c.section == "g_steps" and c.key == {
            "method": method, "precision": precision, "arch": arch, "norm": n}), None) for n in norms}
        ok = {n: c.result["g_steps_per_s"] for n, c in found.items() if c is not None and c.status == "ok"}
        ratios = [f"{ok[fast] / ok[slow]:.2f}" if slow in ok and fast in ok else "-"
                  for slow, fast in (("convnorm", "spectral"), ("spectral", "none"))]  # step-time ratios
        rows.append([method, precision, arch, *(notes.shown(found[n], "g_steps_per_s") for n in norms), *ratios])
    return rows


def measured_norms(cells: list[Cell]) -> list[str]:
    """The norm kinds of the G-step cells, in the registry's order (the report's columns)."""
    return [n for n in NORMS if any(c.section == "g_steps" and c.key["norm"] == n for c in cells)]


def _fastest(cells: list[Cell]) -> list[list[str]]:
    rows = []
    for arch in ARCHS:
        for norm in NORMS:
            ok = [c for c in cells if c.section == "g_steps" and c.status == "ok" and c.key["arch"] == arch
                  and c.key["norm"] == norm]
            if ok:
                top = max(ok, key=lambda c: c.result["g_steps_per_s"])
                rows.append([arch, norm, f"{top.result['g_steps_per_s']:.2f}", top.key["method"],
                             top.key["precision"]])
    return rows


def check_verdict(result: dict[str, float]) -> str:
    """Replayed steps are the eager ones when they differ from eager no more than rounding does (the control run)."""
    same = all(result[k] <= 10 * max(result.get(f"rounding_{k}", 0.0), 1e-3)
               for k in ("max_loss_difference", "max_relative_weight_difference"))
    return "same steps (within rounding)" if same else "DIFFERENT: the replayed steps are not the eager ones"


def report(cells: list[Cell], header: str, layer_batch: int) -> str:
    notes = Notes()
    text = ["# gan bench gpu", "", header, "", "## G-steps/s in the LightningModule", "",
            markdown_table(["method", "precision", "arch", *measured_norms(cells), "convnorm/spectral (step time)",
                            "spectral/none (step time)"], _g_steps_table(cells, notes)), "",
            f"Targets: cnn convnorm >= {TARGETS['cnn convnorm G-steps/s']:.0f}, resnet convnorm >= "
            f"{TARGETS['resnet convnorm G-steps/s']:.0f} G-steps/s; convnorm/spectral <= "
            f"{TARGETS['convnorm/spectral']}; spectral/none <= {TARGETS['spectral/none']}.", ""]
    if fastest := _fastest(cells):
        text += ["### Fastest method per model", "",
                 markdown_table(["arch", "norm", "G-steps/s", "method", "precision"], fastest), ""]
    sections = {
        "check": ("## cuda_graphs against eager",
                  ["check", "max relative weight difference", "max loss difference",
                   "rounding control: weights / loss", "bit-identical", "verdict"],
                  lambda c: [c.key["what"], notes.shown(c, "max_relative_weight_difference", "{:.2e}"),
                             notes.shown(c, "max_loss_difference", "{:.2e}"),
                             f"{notes.shown(c, 'rounding_max_relative_weight_difference', '{:.2e}')} / "
                             f"{notes.shown(c, 'rounding_max_loss_difference', '{:.2e}')}",
                             *(("yes" if c.result["identical"] else "no", check_verdict(c.result))
                               if c.status == "ok" else (notes.shown(c, "identical"),) * 2)]),
        "loop": ("## Lightning against a plain loop",
                 [f"model (fp32, eager; target Lightning/plain <= {TARGETS['Lightning/plain']})", "module steps",
                  "Lightning s / G step", "plain s / G step", "Lightning/plain"],
                 lambda c: [f"{c.key['arch']} {c.key['norm']}", c.key["steps"],
                            notes.shown(c, "lightning_s", "{:.4f}"), notes.shown(c, "plain_s", "{:.4f}"),
                            notes.shown(c, "ratio", "{:.3f}")]),
        "layers": ("## ConvNorm per layer against nn.Conv2d",
                   [f"layer (fwd+bwd, batch {layer_batch})", "conv ms", "ConvNorm fast ms", "SN conv ms", "fast/conv"],
                   lambda c: [c.key["layer"], *(notes.shown(c, k) for k in ("conv_ms", "fast_ms", "spectral_ms",
                                                                             "fast/conv"))]),
        "inception": ("## Evaluation features",
                      ["Inception features (random-init torch-fidelity Inception)", "seconds", "images/s"],
                      lambda c: [c.key["what"], notes.shown(c, "seconds"), notes.shown(c, "images_per_s", "{:.0f}")]),
    }
    for section, (title, columns, row) in sections.items():
        chosen = [c for c in cells if c.section == section]
        if chosen:
            text += [title, "", markdown_table(columns, [row(c) for c in chosen]), ""]
    if notes.reasons:
        text += ["## Cells that did not measure", "", *notes.lines(), ""]
    return "\n".join(text)


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
