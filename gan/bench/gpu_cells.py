"""The measurements of ``gan bench gpu`` (what each cell runs) and the plan of cells for a run's settings."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from gan.bench.convnorm import LAYERS, bench_layer
from gan.bench.harness import Cell
from gan.bench.step import fit_timed, lightning_seconds, lightning_vs_plain, random_images
from gan.errors import UserError
from gan.models import build_generator
from gan.training.module import GAN

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "cifar10"  # gan/configs: in a checkout a link to configs/
DEFAULT_NORMS = ("none", "spectral", "convnorm")  # the kinds the report's targets name
PRECISIONS = ("32-true", "bf16-mixed")
COMPILE_NEEDS_S = 60.0  # budget a torch.compile cell needs to start (compiling G and D takes most of it)
METHODS = ("eager", "cuda_graphs", "compile:reduce-overhead", "compile:default+cuda_graphs")


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
