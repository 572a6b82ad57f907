"""Study tables inside documentation files, regenerated from a study's report instead of copied by hand.

A file marks where a study's table goes with two comment lines (invisible once rendered)::

    <!-- gan study: fashion_mnist_conditional -->
    ... replaced by ``gan study GRID --report-only --update-doc FILE`` ...
    <!-- /gan study: fashion_mnist_conditional -->

Everything between the markers is replaced by :func:`gan.study.report.headline_table` of that study; the rest of
the file is left as it is. Markers count only as whole lines outside fenced code blocks, so docs can show them in
an example. ``tests/test_doc_tables.py`` regenerates every marked table of README.md and docs/ from the result
files kept under docs/results/ and fails when one differs, so a table can't drift from its data.
"""

from __future__ import annotations

import re
from pathlib import Path

from gan.errors import UserError
from gan.utils.files import atomic_write

_MARKER = re.compile(r"<!-- (/?)gan study: (\S+) -->")


def markers(study: str) -> tuple[str, str]:
    return f"<!-- gan study: {study} -->", f"<!-- /gan study: {study} -->"


def _marker_lines(lines: list[str]) -> list[tuple[int, bool, str]]:
    """(line index, is the end marker, study) of every marker line outside fenced code blocks."""
    found, fenced = [], False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := _MARKER.fullmatch(line.strip())):
            found.append((i, match.group(1) == "/", match.group(2)))
    return found


def marked_studies(text: str) -> list[str]:
    """The studies whose tables ``text`` marks, in order of appearance."""
    return [study for _, end, study in _marker_lines(text.splitlines()) if not end]


def _block(lines: list[str], study: str) -> tuple[int, int] | None:
    """Line indices of ``study``'s begin and end markers, None unless there is exactly one well-ordered pair."""
    ours = [(i, end) for i, end, name in _marker_lines(lines) if name == study]
    if [end for _, end in ours] != [False, True]:
        return None
    return ours[0][0], ours[1][0]


def marked_table(text: str, study: str) -> str | None:
    """What ``text`` holds between ``study``'s markers (None when it has no such block)."""
    lines = text.splitlines()
    block = _block(lines, study)
    return None if block is None else "\n".join(lines[block[0] + 1 : block[1]])


def replace_table(text: str, study: str, table: str, where: str = "the file") -> str:
    """``text`` with the lines between ``study``'s markers replaced by ``table``."""
    lines = text.splitlines(keepends=True)
    block = _block([line.rstrip("\n") for line in lines], study)
    if block is None:
        begin, end = markers(study)
        raise UserError(f"{where} has no single '{begin}' ... '{end}' block: add those two lines where the table of "
                        f"{study} goes")
    return "".join(lines[: block[0] + 1]) + table + "\n" + "".join(lines[block[1] :])


def update_doc(path: Path, study: str, table: str) -> bool:
    """Rewrite ``study``'s block in ``path`` (atomically); returns whether its content changed."""
    if not path.is_file():
        raise UserError(f"--update-doc {path}: no such file")
    text = path.read_text()
    new = replace_table(text, study, table, where=str(path))
    if new != text:
        atomic_write(path, new.encode())
    return new != text
