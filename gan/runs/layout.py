"""A run folder's files: where ``gan fit`` and its callbacks write each one, and how tools read them back.

    <run>/config.yaml                the run's full LightningCLI config (re-run it with ``gan fit --config``)
    <run>/ckpt/last.ckpt             the latest state (at every checkpoint and at the end)
    <run>/ckpt/g<7-digit g_step>.ckpt  every ``run.ckpt_every`` G steps (``best_fid.ckpt``: the FID callback's best)
    <run>/samples/g<7-digit g_step>.png  fixed-z sample grids (EMA generator when there is one)
    <run>/logs/                      TensorBoard events and metrics.csv: one row per logged G step with columns
                                     g_step, loss/d, loss/g, d/real, d/fake, lr/g, lr/d, speed/g_steps_per_s
                                     (and the callbacks' eval/*, spectral/*, grad/*)
    <run>/fidelity.jsonl             the FID callback's results, each with its protocol and weights
    <run>/ckpt/<name>.eval.json      ``gan eval`` of checkpoint ``ckpt/<name>.ckpt`` (g_step, metrics, protocol)
    <run>/spectral_norms.jsonl       per-layer spectral norms of D (SpectralNormMonitor; drawn in spectral_norms.png)
    <run>/gradient_norms.jsonl       D's input-gradient norms (GradientNormMonitor)
    <run>/run.lock                   held while a process trains in the folder, naming it (gan.runs.folder)

``gan compare`` and ``gan study``'s report read runs only through this module.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

LAST_CHECKPOINT = "last.ckpt"
FIDELITY_LOG = "fidelity.jsonl"
SPECTRAL_LOG = "spectral_norms.jsonl"
GRADIENT_LOG = "gradient_norms.jsonl"


def step_file(g_step: int, suffix: str) -> str:
    """The name of a file written at G step ``g_step``: ``g<7-digit step><suffix>`` (checkpoints, sample grids)."""
    return f"g{g_step:07d}{suffix}"


def last_checkpoint(run: Path) -> Path:
    """The run's latest checkpoint, the one to resume from."""
    return run / "ckpt" / LAST_CHECKPOINT


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` as one JSON line (folders created): a log that survives restarts and is read line by line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every row of a JSON-lines file, oldest first ([] when there is no file)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def eval_result_path(checkpoint: Path) -> Path:
    """Where ``gan eval`` writes the result of ``checkpoint`` by default, and where run readers look for it."""
    return checkpoint.with_suffix(".eval.json")


def model_config(run: Path) -> dict[str, Any]:
    """The ``model`` section of the run's config.yaml ({} when there is none)."""
    path = run / "config.yaml"
    tree = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    model = tree.get("model") or {}
    return model.get("init_args", model)  # a class_path / init_args config nests the arguments one level down


def logged_rows(run: Path) -> dict[int, dict[str, str]]:
    """The logged metrics by G step: the non-empty cells of every metrics.csv row of that step (rows of a step
    logged twice, as by a resumed run, merge with the later value winning)."""
    rows: dict[int, dict[str, str]] = {}
    for path in sorted(run.rglob("metrics.csv")):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                step = row.get("g_step") or row.get("step")
                if step:
                    rows.setdefault(int(float(step)), {}).update({k: v for k, v in row.items() if v})
    return rows


def fidelity_log(run: Path) -> list[dict[str, Any]]:
    """The FID callback's results, in the order they were computed."""
    return read_jsonl(run / FIDELITY_LOG)


def eval_results(run: Path) -> list[dict[str, Any]]:
    """``gan eval`` results of the run's checkpoints (those that carry a G step), in file-name order."""
    results = (json.loads(path.read_text()) for path in sorted(run.rglob("*.eval.json")))
    return [result for result in results if "g_step" in result]


def describe_protocol(result: dict[str, Any]) -> str:
    """One line saying how a result was measured: generated count, reference set and count, seed, weights."""
    p, w = result["protocol"], result["weights"]
    return (f"{p['num_fake']} vs {p.get('reference', '?')} n={p.get('num_real_used')}, seed {p.get('seed', '?')}, "
            f"{w['kind']} weights")
