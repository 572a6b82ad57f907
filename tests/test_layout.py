"""The package's layers, as docs/architecture.md lists them: a module imports only from its own folder and the
folders listed above it, so the tree reads top down and no import runs upward."""

import ast
from pathlib import Path

import gan

ORDER = ["errors", "utils", "layers", "models", "data", "runs", "metrics", "training", "callbacks", "study", "bench",
         "commands", "cli"]


def imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        parts |= {name.split(".")[1] for name in names if name.startswith("gan.")}
    return parts


def test_no_import_runs_upward_and_every_part_is_listed():
    root = Path(gan.__file__).parent
    for path in root.rglob("*.py"):
        own = path.relative_to(root).parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        assert own in ORDER, f"{own}: add it to docs/architecture.md and to ORDER"
        for part in imported_parts(path):
            assert ORDER.index(part) <= ORDER.index(own), f"{path.relative_to(root)} imports gan.{part}"
