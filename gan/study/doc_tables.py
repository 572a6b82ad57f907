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
    """``text`` with the lines between ``study``'s markers replaced by ``table`` (in the text's own line endings)."""
    lines = text.splitlines(keepends=True)
    block = _block([line.rstrip("\r\n") for line in lines], study)
    if block is None:
        raise UserError(f"{where}: {_problem(text, study)}")
    newline = "\r\n" if "\r\n" in text else "\n"
    return "".join(lines[: block[0] + 1]) + table.replace("\n", newline) + newline + "".join(lines[block[1] :])


def _problem(text: str, study: str) -> str:
    """Why ``text`` has no usable block for ``study``, and the fix."""
    begin, end = markers(study)
    found = [(i + 1, "end" if closing else "begin") for i, closing, name in _marker_lines(text.splitlines())
             if name == study]
    if not found:
        return f"no '{begin}' ... '{end}' block: add those two lines where the table of {study} goes"
    where = ", ".join(f"{kind} on line {line}" for line, kind in found)
    return (f"the markers of {study} are not one begin line followed by one end line ({where}; markers inside a "
            "``` code block do not count)")


def _read(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"--update-doc {path}: no such file")
    return path.read_bytes().decode("utf-8")  # bytes: keep the file's own line endings


def check_doc(path: Path, study: str) -> None:
    """Raise the error :func:`update_doc` would, before any work is done (a study may train for hours first)."""
    text = _read(path)
    if marked_table(text, study) is None:
        raise UserError(f"{path}: {_problem(text, study)}")


def update_doc(path: Path, study: str, table: str) -> bool:
    """Rewrite ``study``'s block in ``path`` (atomically, keeping its permissions); returns whether it changed."""
    text = _read(path)
    new = replace_table(text, study, table, where=str(path))
    if new != text:
        mode = path.stat().st_mode
        atomic_write(path, new.encode("utf-8"))
        path.chmod(mode)
    return new != text
