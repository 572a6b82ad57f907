"""A study's grid file (``configs/studies/*.yaml``) and the runs it stands for.

A grid names a base ``gan fit`` config, overrides shared by every run (the study's schedule), the variants (each a
set of dotted overrides, e.g. ``model.norm: convnorm``), the seeds, the callbacks every run gets, and the two
evaluation protocols: ``curve`` (cheap, every saved checkpoint) and ``final`` (the last checkpoint). Each
(variant, seed) is one run folder ``<out_dir>/<study>/<variant>-s<seed>`` with the full config it was trained
from; a seed sets the weight init (``seed_everything``), the latent stream (``model.seed``) and the data order
(``data.seed``), so that seeds are independent replicates.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gan.errors import UserError

STUDY_MARKER = "study.json"  # in each run folder: its study, variant and seed (what reports group by)
EVAL_FIELDS = ("num_fake", "num_real", "split", "seed", "inception_weights", "feature_extractor", "intra_fid", "prc")
EVAL_FLAGS = ("intra_fid", "prc")  # true: gan eval --intra-fid / --metrics fid,prc
CURVE_EVERY = "every"  # eval.curve.every: score the checkpoints at multiples of this many G steps (and the last)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass
class Run:
    """One (variant, seed) of a study: where it lives and the config it trains from."""

    variant: str
    seed: int
    dir: Path
    config: dict[str, Any]

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def max_g_steps(self) -> int:
        return int(self.config["model"]["max_g_steps"])


@dataclass
class Grid:
    name: str
    path: Path
    base: Path
    out_dir: Path
    seeds: list[int]
    variants: dict[str, dict[str, Any]]
    overrides: dict[str, Any] = field(default_factory=dict)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    curve: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    curve_every: int = 1

    @property
    def dir(self) -> Path:
        return self.out_dir / self.name

    def runs(self) -> list[Run]:
        """Every (variant, seed), variants in file order, seeds inner."""
        base = yaml.safe_load(self.base.read_text()) or {}
        runs = []
        for variant, changes in self.variants.items():
            for seed in self.seeds:
                config = copy.deepcopy(base)
                for key, value in {**self.overrides, **changes}.items():
                    set_dotted(config, key, value)
                config["seed_everything"] = seed
                set_dotted(config, "model.seed", seed)
                set_dotted(config, "data.seed", seed)
                run_dir = self.dir / f"{variant}-s{seed}"
                set_dotted(config, "run.name", run_dir.name)
                set_dotted(config, "run.out_dir", str(self.dir))
                trainer = config.setdefault("trainer", {})
                trainer["callbacks"] = [*(trainer.get("callbacks") or []), *copy.deepcopy(self.callbacks)]
                trainer["enable_progress_bar"] = False  # the study prints one line per finished job instead
                runs.append(Run(variant, seed, run_dir, config))
        return runs


def final_eval_path(run_dir: Path) -> Path:
    """Where a study run's final evaluation (the ``final`` protocol, of ``last.ckpt``) is written."""
    return run_dir / "eval" / "final.json"


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """``tree["a"]["b"] = value`` for ``key = "a.b"`` (creating the sections on the way)."""
    *sections, last = key.split(".")
    for section in sections:
        node = tree.setdefault(section, {})
        if not isinstance(node, dict):
            raise UserError(f"override {key!r}: {section!r} is not a section of the config")
        tree = node
    tree[last] = value


def load_grid(path: str | Path, out_dir: str | Path | None = None) -> Grid:
    """Read and check a grid file; every error names the field and the fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"study grid {str(path)!r} does not exist; pass a file like configs/studies/<name>.yaml")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise UserError(f"study grid {str(path)!r} is not valid YAML ({type(err).__name__}); fix its syntax") from err
    known = {"name", "base", "out_dir", "seeds", "variants", "overrides", "callbacks", "eval"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise UserError(f"study grid {path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key in ("base", "seeds", "variants"):
        if key not in spec:
            raise UserError(f"study grid {path}: field {key!r} is missing (see configs/studies/ for examples)")
    base = Path(spec["base"])
    if not base.is_file():
        raise UserError(f"study grid {path}: base={str(base)!r} does not exist; give a gan fit config path")
    seeds = spec["seeds"]
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0 for s in seeds)):
        raise UserError(f"study grid {path}: seeds={seeds!r} must be a non-empty list of integers >= 0")
    variants = spec["variants"]
    if not (isinstance(variants, dict) and variants):
        raise UserError(f"study grid {path}: variants must map names to overrides, e.g. none: {{model.norm: none}}")
    for name, changes in variants.items():
        if not NAME.match(str(name)) or not isinstance(changes, dict):
            raise UserError(f"study grid {path}: variant {name!r} needs a plain name (letters, digits, _.+-) and a "
                            "mapping of dotted overrides")
    evaluation = spec.get("eval") or {}
    for kind in ("curve", "final"):
        protocol = dict(evaluation.get(kind) or {})
        every = protocol.pop(CURVE_EVERY, 1) if kind == "curve" else 1
        if not isinstance(every, int) or every < 1:
            raise UserError(f"study grid {path}: eval.curve.every={every!r} must be an integer >= 1 (G steps)")
        bad = sorted(set(protocol) - set(EVAL_FIELDS))
        flags_ok = all(isinstance(protocol.get(flag, False), bool) for flag in EVAL_FLAGS)
        if bad or not flags_ok or int(protocol.get("num_fake", 2)) < 2 or int(protocol.get("num_real", 2)) < 2:
            raise UserError(f"study grid {path}: eval.{kind} takes {', '.join(EVAL_FIELDS)} with counts >= 2 and "
                            f"{' / '.join(EVAL_FLAGS)} true or false")

    return Grid(
        name=str(spec.get("name") or path.stem), path=path, base=base,
        out_dir=Path(out_dir or spec.get("out_dir") or "checkpoints/studies"), seeds=list(seeds),
        variants={str(k): v for k, v in variants.items()}, overrides=dict(spec.get("overrides") or {}),
        callbacks=list(spec.get("callbacks") or []),
        curve={k: v for k, v in (evaluation.get("curve") or {}).items() if k != CURVE_EVERY},
        final=dict(evaluation.get("final") or {}), curve_every=int((evaluation.get("curve") or {}).get(CURVE_EVERY, 1)),
    )
