"""Study tables inside documentation files, regenerated from a study's report instead of copied by hand.

A file marks where a study's table goes with two comment lines (invisible once rendered)::

    <!-- gan study: fashion_mnist_conditional -->
    ... replaced by ``gan study GRID --report-only --update-doc FILE`` ...
    <!-- /gan study: fashion_mnist_conditional -->

Everything between the markers is replaced by :func:`gan.study.report.headline_table` of that study; the rest of
the file is left as it is. ``tests/test_doc_tables.py`` regenerates every marked table of README.md and docs/ from
the result files kept under docs/results/ and fails when one differs, so a table can't drift from its data.
"""

from __future__ import annotations

import re
from pathlib import Path

from gan.errors import UserError
from gan.utils.files import atomic_write


def markers(study: str) -> tuple[str, str]:
    return f"<!-- gan study: {study} -->", f"<!-- /gan study: {study} -->"


def marked_studies(text: str) -> list[str]:
    """The studies whose tables ``text`` marks, in order of appearance."""
    return re.findall(r"^<!-- gan study: (\S+) -->$", text, flags=re.M)


def marked_table(text: str, study: str) -> str | None:
    """What ``text`` holds between ``study``'s markers (None when it has no such block)."""
    begin, end = markers(study)
    if begin not in text or end not in text.split(begin, 1)[1]:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")


def replace_table(text: str, study: str, table: str, where: str = "the file") -> str:
    """``text`` with the block between ``study``'s markers replaced by ``table``."""
    begin, end = markers(study)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise UserError(f"{where} has no single '{begin}' ... '{end}' block: add those two lines where the table of "
                        f"{study} goes")
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{table}\n{end}{rest.split(end, 1)[1]}"


def update_doc(path: Path, study: str, table: str) -> bool:
    """Rewrite ``study``'s block in ``path`` (atomically); returns whether its content changed."""
    if not path.is_file():
        raise UserError(f"--update-doc {path}: no such file")
    text = path.read_text()
    new = replace_table(text, study, table, where=str(path))
    if new != text:
        atomic_write(path, new.encode())
    return new != text
