"""Study tables in the docs are regenerated, not copied: the marker blocks are replaced exactly, and every marked
table of README.md and docs/*.md equals what the report code computes from the result files under docs/results/."""

from __future__ import annotations

from pathlib import Path

import pytest

from gan.errors import UserError
from gan.study.doc_tables import marked_studies, marked_table, markers, replace_table, update_doc
from gan.study.grid import load_grid
from gan.study.report import read_runs, study_table

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_replace_table_touches_only_the_block():
    begin, end = markers("s")
    text = f"# title\n\nbefore\n{begin}\nold | table\n{end}\nafter\n"
    new = replace_table(text, "s", "| a |\n|---|")
    assert new == f"# title\n\nbefore\n{begin}\n| a |\n|---|\n{end}\nafter\n"
    assert replace_table(new, "s", "| a |\n|---|") == new and marked_table(new, "s") == "| a |\n|---|"
    assert marked_studies(new) == ["s"] and marked_table(new, "other") is None
    fenced = f"```markdown\n{begin}\n{end}\n```\n"  # an example in a code block is not a table to rewrite
    assert marked_studies(fenced + new) == ["s"] and replace_table(fenced + new, "s", "| b |").startswith(fenced)


@pytest.mark.parametrize("text", ["no markers at all\n", "{begin}\nonly the first\n", "{end}\n{begin}\n",
                                  "{begin}\n{end}\n{begin}\n{end}\n"])
def test_a_missing_or_broken_block_is_one_line_and_leaves_the_file(tmp_path, text):
    begin, end = markers("s")
    doc = tmp_path / "doc.md"
    doc.write_text(text.format(begin=begin, end=end))
    before = doc.read_text()
    with pytest.raises(UserError) as err:
        update_doc(doc, "s", "| a |")
    message = str(err.value)
    assert str(doc) in message and "of s" in message and "\n" not in message and doc.read_text() == before
    assert (begin in message) == (text == "no markers at all\n")  # else it lists the lines the markers are on


def test_update_keeps_line_endings_encoding_and_permissions(tmp_path):
    begin, end = markers("s")
    doc = tmp_path / "doc.md"
    doc.write_bytes(f"σ ± intro\r\n{begin}\r\nold\r\n{end}\r\ntail\r\n".encode())
    doc.chmod(0o644)
    assert update_doc(doc, "s", "| a ± |\n|---|") and not update_doc(doc, "s", "| a ± |\n|---|")
    assert doc.read_bytes().decode() == f"σ ± intro\r\n{begin}\r\n| a ± |\r\n|---|\r\n{end}\r\ntail\r\n"
    assert doc.stat().st_mode & 0o777 == 0o644


def _documents_with_tables() -> list[tuple[Path, str]]:
    return [(doc, study) for doc in DOCS for study in marked_studies(doc.read_text())]


def test_readme_marks_its_study_tables():
    assert any(doc.name == "README.md" for doc, _ in _documents_with_tables())


@pytest.mark.parametrize("doc,study", _documents_with_tables(), ids=lambda v: getattr(v, "name", v))
def test_every_marked_table_is_what_its_kept_results_give(doc, study, monkeypatch):
    monkeypatch.chdir(ROOT)  # grid files name their base config relative to the repository
    results = ROOT / "docs" / "results"
    grid = load_grid(results / study / "grid.yaml", results)
    expected = study_table(read_runs([run.dir for run in grid.runs() if run.dir.is_dir()]))
    assert marked_table(doc.read_text(), study) == expected, (
        f"{doc.name}'s table of {study} differs from its results: regenerate it with `gan study "
        f"configs/studies/{study}.yaml --report-only --out-dir docs/results --update-doc {doc.relative_to(ROOT)}`")
