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
    <run>/eval/final.json            a study's final evaluation of ``last.ckpt`` (same fields)
    <run>/study.json                 the study, regime, variant and seed of a run that ``gan study`` made
    <run>/spectral_norms.jsonl       per-layer spectral norms of D (SpectralNormMonitor; drawn in spectral_norms.png)
    <run>/gradient_norms.jsonl       D's input-gradient norms (GradientNormMonitor)
    <run>/run.lock                   held while a process trains in the folder, naming it (gan.runs.folder)

``gan compare`` and ``gan study`` read runs only through this module. Its readers check what they read: a damaged
or foreign file ends in one :class:`RunFileError` line naming the file and the problem, never a traceback.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gan.errors import UserError

LAST_CHECKPOINT = "last.ckpt"
FIDELITY_LOG = "fidelity.jsonl"
SPECTRAL_LOG = "spectral_norms.jsonl"
GRADIENT_LOG = "gradient_norms.jsonl"
STUDY_MARKER = "study.json"
FINAL_EVAL = Path("eval") / "final.json"
STEP_FILE = re.compile(r"g(\d{7,})$")  # the stem of a file written at a G step (step_file)
RUN_FILES = ("config.yaml", "logs", "ckpt", FIDELITY_LOG, STUDY_MARKER)  # any of these makes a folder a run


class RunFileError(UserError):
    """A run-folder file that cannot be read as what gan writes there (damaged, truncated, edited, foreign)."""


def unreadable(path: Path, error: OSError) -> RunFileError:
    return RunFileError(f"{path}: cannot be read ({error.strerror or error}); check its permissions")


def damaged(path: Path, problem: str) -> RunFileError:
    return RunFileError(f"{path}: {problem}; this file is damaged or was not written by gan: restore it, or move it "
                        "out of the run folder")


# ---- names ----------------------------------------------------------------------------------------------------
def step_file(g_step: int, suffix: str) -> str:
    """The name of a file written at G step ``g_step``: ``g<7-digit step><suffix>`` (checkpoints, sample grids)."""
    return f"g{g_step:07d}{suffix}"


def step_of(path: Path) -> int | None:
    """The G step in a :func:`step_file` name (None for other names, e.g. ``last.ckpt``, ``best_fid.ckpt``)."""
    match = STEP_FILE.fullmatch(path.stem)
    return int(match.group(1)) if match else None


def last_checkpoint(run: Path) -> Path:
    """The run's latest checkpoint, the one to resume from."""
    return run / "ckpt" / LAST_CHECKPOINT


def step_checkpoints(run: Path) -> list[tuple[int, Path]]:
    """The run's periodic checkpoints ``ckpt/g<step>.ckpt`` as (G step, path), oldest first."""
    found = ((step_of(path), path) for path in (run / "ckpt").glob("g*.ckpt"))
    return sorted((step, path) for step, path in found if step is not None)


def eval_result_path(checkpoint: Path) -> Path:
    """Where ``gan eval`` writes the result of ``checkpoint`` by default, and where run readers look for it."""
    return checkpoint.with_suffix(".eval.json")


def final_eval_path(run: Path) -> Path:
    """Where a study run's final evaluation (its ``final`` protocol, of ``last.ckpt``) is written."""
    return run / FINAL_EVAL


def is_run(path: Path) -> bool:
    """Whether ``path`` holds a run's own files (not merely runs below it)."""
    return any((path / name).exists() for name in RUN_FILES)


def runs_below(path: Path) -> list[Path]:
    """The run folders under ``path`` (at any depth, not below a run), sorted: what ``checkpoints/`` holds."""
    found = []
    for child in sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else ():
        found += [child] if is_run(child) else runs_below(child)
    return found


# ---- writing --------------------------------------------------------------------------------------------------
def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` as one JSON line (folders created): a log that survives restarts and is read line by line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


# ---- reading, checked -----------------------------------------------------------------------------------------
def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise damaged(path, "not UTF-8 text") from None
    except OSError as error:
        raise unreadable(path, error) from None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file."""
    try:
        value = json.loads(_text(path))
    except json.JSONDecodeError as error:
        raise damaged(path, f"not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(value, dict):
        raise damaged(path, f"holds a JSON {type(value).__name__}, not an object")
    return value


def read_jsonl(path: Path, problem: Callable[[dict[str, Any]], str | None] | None = None) -> list[dict[str, Any]]:
    """Every row of a JSON-lines file, oldest first ([] when there is no file). Each must be an object with an
    integer ``g_step`` (the monitors' logs: numbers only), and pass ``problem`` (which names what is wrong)."""
    if not path.is_file():
        return []
    numbers_only = path.name in (SPECTRAL_LOG, GRADIENT_LOG)
    rows = []
    for number, line in enumerate(_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise damaged(path, f"line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(row, dict) or not _is_step(row.get("g_step")):
            raise damaged(path, f"line {number} is not an object with an integer g_step")
        if numbers_only:
            wrong = next((f"{k!r} is {v!r}, not a number" for k, v in row.items() if not _is_number(v)), None)
        else:
            wrong = problem(row) if problem else None
        if wrong:
            raise damaged(path, f"line {number}: {wrong}")
        rows.append(row)
    return rows


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_step(value: Any) -> bool:
    return _is_number(value) and value >= 0 and float(value).is_integer()


def result_problem(result: dict[str, Any]) -> str | None:
    """What is wrong with an evaluation result (``gan eval`` JSON, a FID-callback row), if anything: it needs
    numeric metrics, and a protocol and weights that say how it was measured."""
    metrics = result.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        return "has no 'metrics' object"
    for key, value in metrics.items():
        if not _is_number(value):
            return f"metric {key!r} is {value!r}, not a number"
    for key in ("protocol", "weights"):
        if not isinstance(result.get(key), dict):
            return f"has no {key!r} object"
    if "g_step" in result and not _is_step(result["g_step"]):
        return f"g_step is {result['g_step']!r}, not a non-negative integer"
    return None


def read_result(path: Path) -> dict[str, Any]:
    """A checked ``gan eval`` result file."""
    result = read_json(path)
    problem = result_problem(result)
    if problem:
        raise damaged(path, problem)
    return result


def study_marker(run: Path) -> dict[str, Any] | None:
    """The run's ``study.json`` (study, regime, variant, seed), checked; None for a run not made by ``gan study``."""
    path = run / STUDY_MARKER
    if not path.is_file():
        return None
    marker = read_json(path)
    if not isinstance(marker.get("variant"), str):
        raise damaged(path, "has no string 'variant'")
    if marker.get("seed") is not None and not _is_step(marker["seed"]):
        raise damaged(path, f"seed is {marker['seed']!r}, not an integer")
    if marker.get("regime") is not None and not isinstance(marker["regime"], str):
        raise damaged(path, f"regime is {marker['regime']!r}, not a string")
    return marker


def model_config(run: Path) -> dict[str, Any]:
    """The ``model`` section of the run's config.yaml ({} when there is none)."""
    path = run / "config.yaml"
    if not path.is_file():
        return {}
    try:
        tree = yaml.safe_load(_text(path)) or {}
    except yaml.YAMLError as error:
        raise damaged(path, f"not valid YAML ({str(error).splitlines()[0]})") from None
    model = tree.get("model") if isinstance(tree, dict) else None
    model = model.get("init_args", model) if isinstance(model, dict) else model  # class_path / init_args nests it
    if tree and not isinstance(model or {}, dict):
        raise damaged(path, "its 'model' section is not a mapping")
    return model or {}


def logged_rows(run: Path) -> dict[int, dict[str, str]]:
    """The logged metrics by G step: the non-empty cells of every ``logs/**/metrics.csv`` row of that step (rows of
    a step logged twice, as by a resumed run, merge with the later value winning). Cells are checked as numbers."""
    rows: dict[int, dict[str, str]] = {}
    for path in sorted((run / "logs").rglob("metrics.csv")):
        try:
            with open(path, newline="") as f:
                for number, row in enumerate(csv.DictReader(f), 2):
                    cells = {k: v for k, v in row.items() if k is not None and isinstance(v, str) and v}
                    for key, value in cells.items():
                        if not _parses(value):
                            raise damaged(path, f"line {number}: {key} is {value!r}, not a number")
                    step = cells.get("g_step") or cells.get("step")
                    if step and not _is_step(float(step)):
                        raise damaged(path, f"line {number}: the step {step!r} is not a non-negative integer")
                    if step:
                        rows.setdefault(int(float(step)), {}).update(cells)
        except (UnicodeDecodeError, csv.Error) as error:
            raise damaged(path, f"not a CSV file ({error})") from None
        except OSError as error:
            raise unreadable(path, error) from None
    return rows


def _parses(value: str) -> bool:
    """A cell holds a number (``nan`` / ``inf`` included: what a diverged run logs)."""
    try:
        float(value)
    except ValueError:
        return False
    return True


def fidelity_log(run: Path) -> list[dict[str, Any]]:
    """The FID callback's results, in the order they were computed."""
    return read_jsonl(run / FIDELITY_LOG, result_problem)


def eval_results(run: Path) -> list[dict[str, Any]]:
    """``gan eval`` results of the run's checkpoints (``ckpt/*.eval.json`` that carry a G step), by file name."""
    results = (read_result(path) for path in sorted((run / "ckpt").glob("*.eval.json")))
    return [result for result in results if "g_step" in result]


def curve_results(run: Path) -> list[dict[str, Any]]:
    """The run's FID-vs-G-step results: the FID callback's when it ran, else ``gan eval`` of its checkpoints. Both
    ``gan compare`` and the study report read a run's curve here, so they show the same numbers."""
    return fidelity_log(run) or eval_results(run)


def final_result(run: Path) -> dict[str, Any] | None:
    """The study's final evaluation of the run, checked (None before it is scored)."""
    path = final_eval_path(run)
    return read_result(path) if path.is_file() else None


def describe_protocol(result: dict[str, Any]) -> str:
    """One line saying how a result was measured: protocol name, generated count, reference set and count, seed,
    weights."""
    p, w = result["protocol"], result["weights"]
    # "custom" is gan.metrics.protocols.CUSTOM, spelled out: importing gan.metrics would load torch here
    name = f"{p['name']}: " if p.get("name") not in (None, "custom") else ""
    return (f"{name}{p.get('num_fake', '?')} vs {p.get('reference', '?')} n={p.get('num_real_used')}, "
            f"seed {p.get('seed', '?')}, {w.get('kind', '?')} weights")
