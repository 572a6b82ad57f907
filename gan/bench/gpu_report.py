"""The markdown report of ``gan bench gpu``: one table per section, the speed targets, the cells that did not
measure and why."""

from __future__ import annotations

from gan.bench.gpu_cells import METHODS, PRECISIONS
from gan.bench.harness import Cell
from gan.layers.norms import NORMS
from gan.models import ARCHS
from gan.utils.markdown import markdown_table

TARGETS = {"cnn convnorm G-steps/s": 25.0, "resnet convnorm G-steps/s": 15.0, "convnorm/spectral": 1.3,
           "spectral/none": 1.2, "Lightning/plain": 1.05}


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


