"""A study's grid file (``configs/studies/*.yaml``) and the runs it stands for.

A grid names a base ``gan fit`` config, overrides shared by every run (the study's schedule), the variants (each a
set of dotted overrides, e.g. ``model.norm: convnorm``), the seeds, the callbacks every run gets, and the two
evaluation protocols: ``curve`` (cheap, every saved checkpoint) and ``final`` (the last checkpoint), each naming a
protocol of :data:`gan.metrics.PROTOCOLS` (``protocol: paper``) or its own counts (``num_fake``, ``num_real``). Each
(variant, seed) is one run folder ``<out_dir>/<study>/<variant>-s<seed>`` with the full config it was trained
from; a seed sets the weight init (``seed_everything``), the latent stream (``model.seed``) and the data order
(``data.seed``), so that seeds are independent replicates.

A grid may instead name ``regimes``: each a set of shared overrides (e.g. SNGAN's n_dis 5 / Adam (0, 0.9)
schedule) with its own variants and, optionally, its own seeds and evaluation protocols (``eval.curve`` /
``eval.final``, each replacing the grid's); its runs live in
``<out_dir>/<study>/<regime>/<variant>-s<seed>``, so that one report compares variants within each regime. A grid
without regimes is one unnamed regime and keeps its flat run folders. An optional ``slurm`` section gives the
resources of each job when the study runs on a cluster (``gan study --launcher slurm``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gan.errors import UserError
from gan.metrics.protocols import resolve_protocol
from gan.utils.validate import MAX_GLOBAL_SEED, is_seed

EVAL_FIELDS = ("protocol", "num_fake", "num_real", "split", "seed", "inception_weights", "feature_extractor",
               "intra_fid", "prc", "intra_num_fake")
EVAL_FLAGS = ("intra_fid", "prc")  # true: gan eval --intra-fid / --metrics fid,prc
CURVE_EVERY = "every"  # eval.curve.every: score the checkpoints at multiples of this many G steps (and the last)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


SLURM_FIELDS: dict[str, type] = {  # the grid's ``slurm:`` section (flags of gan study override each)
    "partition": str, "gpus_per_run": int, "cpus_per_task": int, "time_min": int, "account": str,
    "constraint": str, "mem_gb": int, "array_parallelism": int, "setup": list,
}


@dataclass
class Regime:
    """Variants sharing one schedule: overrides on top of the grid's, its seeds and evaluation protocols."""

    name: str | None  # None: a grid without regimes (flat run folders, no regime in names or reports)
    variants: dict[str, dict[str, Any]]
    seeds: list[int]
    overrides: dict[str, Any] = field(default_factory=dict)
    curve: dict[str, Any] | None = None  # None: the grid asks for no such evaluation
    final: dict[str, Any] | None = None
    curve_every: int = 1


@dataclass
class Run:
    """One (regime, variant, seed) of a study: where it lives and the config it trains from."""

    variant: str
    seed: int
    dir: Path
    config: dict[str, Any]
    regime: Regime | None = None

    @property
    def name(self) -> str:
        """Unique within the study: ``<variant>-s<seed>``, prefixed ``<regime>/`` in a grid with regimes."""
        if self.regime is not None and self.regime.name is not None:
            return f"{self.regime.name}/{self.dir.name}"
        return self.dir.name

    @property
    def regime_name(self) -> str | None:
        return None if self.regime is None else self.regime.name

    @property
    def max_g_steps(self) -> int:
        return int(self.config["model"]["max_g_steps"])


@dataclass
class Grid:
    name: str
    path: Path
    base: Path
    out_dir: Path
    regimes: list[Regime]
    overrides: dict[str, Any] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    slurm: dict[str, Any] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.out_dir / self.name

    def describe(self) -> str:
        """One line: what the grid trains (for the start of gan study's output)."""
        parts = [f"{len(r.variants)} variants x {len(r.seeds)} seeds" + (f" ({r.name})" if r.name else "")
                 for r in self.regimes]
        return " + ".join(parts)

    def runs(self, regime: str | None = None) -> list[Run]:
        """Every (regime, variant, seed): regimes and variants in file order, seeds inner; one regime's only when
        ``regime`` names it."""
        names = [r.name for r in self.regimes]
        if regime is not None and regime not in names:
            raise UserError(f"study {self.name}: unknown regime {regime!r}; the grid has {', '.join(map(str, names))}")
        base = yaml.safe_load(self.base.read_text()) or {}
        runs = []
        for spec in self.regimes:
            if regime is not None and spec.name != regime:
                continue
            folder = self.dir if spec.name is None else self.dir / spec.name
            for variant, changes in spec.variants.items():
                for seed in spec.seeds:
                    config = copy.deepcopy(base)
                    for key, value in {**self.overrides, **spec.overrides, **changes}.items():
                        set_dotted(config, key, value)
                    config["seed_everything"] = seed
                    set_dotted(config, "model.seed", seed)
                    set_dotted(config, "data.seed", seed)
                    run_dir = folder / f"{variant}-s{seed}"
                    set_dotted(config, "run.name", run_dir.name)
                    set_dotted(config, "run.out_dir", str(folder))
                    trainer = config.setdefault("trainer", {})
                    trainer["callbacks"] = [*(trainer.get("callbacks") or []), *copy.deepcopy(self.callbacks)]
                    trainer["enable_progress_bar"] = False  # the study prints one line per finished job instead
                    runs.append(Run(variant, seed, run_dir, config, spec))
        return runs


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """``tree["a"]["b"] = value`` for ``key = "a.b"`` (creating the sections on the way)."""
    *sections, last = key.split(".")
    for section in sections:
        node = tree.setdefault(section, {})
        if not isinstance(node, dict):
            raise UserError(f"override {key!r}: {section!r} is not a section of the config")
        tree = node
    tree[last] = value


def _seeds(where: str, seeds: Any) -> list[int]:
    if not (isinstance(seeds, list) and seeds and all(is_seed(s, MAX_GLOBAL_SEED) for s in seeds)):
        raise UserError(f"{where}: seeds={seeds!r} must be a non-empty list of integers from 0 to {MAX_GLOBAL_SEED} "
                        "(each run's seed_everything)")
    return list(seeds)


def _variants(where: str, variants: Any) -> dict[str, dict[str, Any]]:
    if not (isinstance(variants, dict) and variants):
        raise UserError(f"{where}: variants must map names to overrides, e.g. none: {{model.norm: none}}")
    for name, changes in variants.items():
        if not NAME.match(str(name)) or not isinstance(changes, dict):
            raise UserError(f"{where}: variant {name!r} needs a plain name (letters, digits, _.+-) and a "
                            "mapping of dotted overrides")
    return {str(k): v for k, v in variants.items()}


PACKAGE_CONFIGS = Path(__file__).resolve().parents[1] / "configs"  # gan/configs: a link to configs/ in a checkout


def resolve_base(base: str, grid: Path) -> Path | None:
    """A grid's base config: as given (absolute, or from the working directory), else beside the grid file, else,
    for the shipped grids' ``configs/...`` paths, inside the installed package (a ``pip install .`` has no checkout)."""
    given = Path(base)
    candidates = [given, grid.parent / given]
    if given.parts[:1] == ("configs",):
        candidates.append(PACKAGE_CONFIGS.joinpath(*given.parts[1:]))
    return next((c for c in candidates if c.is_file()), None)


def _protocols(where: str, evaluation: Any) -> tuple[dict[str, Any], dict[str, Any], int]:
    """``eval:`` -> (curve protocol, final protocol, curve every); a protocol the grid does not name is None (no such
    evaluation runs: a grid without ``eval`` trains only)."""
    evaluation = evaluation or {}
    if not isinstance(evaluation, dict) or set(evaluation) - {"curve", "final"}:
        raise UserError(f"{where}: eval takes curve and final, each a mapping of {', '.join(EVAL_FIELDS)}")
    for kind in ("curve", "final"):
        protocol = dict(evaluation.get(kind) or {})
        every = protocol.pop(CURVE_EVERY, 1) if kind == "curve" else 1
        if not isinstance(every, int) or every < 1:
            raise UserError(f"{where}: eval.curve.every={every!r} must be an integer >= 1 (G steps)")
        bad = sorted(set(protocol) - set(EVAL_FIELDS))
        flags_ok = all(isinstance(protocol.get(flag, False), bool) for flag in EVAL_FLAGS)
        if bad or not flags_ok or int(protocol.get("num_fake", 2)) < 2 or int(protocol.get("num_real", 2)) < 2:
            raise UserError(f"{where}: eval.{kind} takes {', '.join(EVAL_FIELDS)} with counts >= 2 and "
                            f"{' / '.join(EVAL_FLAGS)} true or false")
        resolve_protocol(protocol.get("protocol"), None, None, (2, None), f"{where}: eval.{kind}.protocol")
    curve = dict(evaluation["curve"] or {}) if "curve" in evaluation else None
    every = int(curve.pop(CURVE_EVERY, 1)) if curve is not None else 1
    return curve, dict(evaluation["final"] or {}) if "final" in evaluation else None, every


def _slurm(where: str, spec: Any) -> dict[str, Any]:
    spec = spec or {}
    if not isinstance(spec, dict):
        raise UserError(f"{where}: slurm must be a mapping of {', '.join(SLURM_FIELDS)}")
    for key, value in spec.items():
        if key not in SLURM_FIELDS:
            raise UserError(f"{where}: unknown slurm field {key!r}; known: {', '.join(SLURM_FIELDS)}")
        kind = SLURM_FIELDS[key]
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 1):
            wanted = "a positive integer" if kind is int else f"a {kind.__name__}"
            raise UserError(f"{where}: slurm.{key}={value!r} must be {wanted}")
    return dict(spec)


def load_grid(path: str | Path, out_dir: str | Path | None = None) -> Grid:
    """Read and check a grid file; every error names the field and the fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"study grid {str(path)!r} does not exist; pass a file like configs/studies/<name>.yaml")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"study grid {str(path)!r} is not valid YAML ({type(err).__name__}); fix its syntax") from err
    where = f"study grid {path}"
    known = {"name", "base", "out_dir", "seeds", "variants", "regimes", "overrides", "callbacks", "eval", "slurm"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise UserError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if "regimes" in spec and "variants" in spec:
        raise UserError(f"{where}: give either variants (one regime) or regimes (each with its own variants)")
    for key in ("base", "seeds", "regimes" if "regimes" in spec else "variants"):
        if key not in spec and not (key == "seeds" and "regimes" in spec):
            raise UserError(f"{where}: field {key!r} is missing (see configs/studies/ for examples)")
    base = resolve_base(str(spec["base"]), path)
    if base is None:
        raise UserError(f"{where}: base={spec['base']!r} does not exist; give a gan fit config path")
    curve, final, every = _protocols(where, spec.get("eval"))
    seeds = _seeds(where, spec["seeds"]) if "seeds" in spec else None
    if "regimes" in spec:
        regimes = []
        if not (isinstance(spec["regimes"], dict) and spec["regimes"]):
            raise UserError(f"{where}: regimes must map names to {{overrides, variants, seeds, eval}}")
        for name, body in spec["regimes"].items():
            at = f"{where}, regime {name!r}"
            if not NAME.match(str(name)) or not isinstance(body, dict):
                raise UserError(f"{at}: needs a plain name (letters, digits, _.+-) and a mapping")
            bad = sorted(set(body) - {"overrides", "variants", "seeds", "eval"})
            if bad:
                raise UserError(f"{at}: unknown field(s) {', '.join(bad)}; known: eval, overrides, seeds, variants")
            if "variants" not in body:
                raise UserError(f"{at}: field 'variants' is missing")
            if "seeds" not in body and seeds is None:
                raise UserError(f"{at}: no seeds (give the grid's seeds or the regime's)")
            own = _protocols(at, {**(spec.get("eval") or {}), **body["eval"]}) if "eval" in body else (
                curve, final, every)  # a regime's curve or final replaces the grid's, the other is kept
            regimes.append(Regime(str(name), _variants(at, body["variants"]),
                                  _seeds(at, body["seeds"]) if "seeds" in body else list(seeds or []),
                                  dict(body.get("overrides") or {}), *own))
    else:
        regimes = [Regime(None, _variants(where, spec["variants"]), seeds or [], {}, curve, final, every)]
    return Grid(
        name=str(spec.get("name") or path.stem), path=path, base=base,
        out_dir=Path(out_dir or spec.get("out_dir") or "checkpoints/studies"), regimes=regimes,
        overrides=dict(spec.get("overrides") or {}), callbacks=list(spec.get("callbacks") or []),
        slurm=_slurm(where, spec.get("slurm")),
    )
