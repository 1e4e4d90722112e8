"""``docs/robustness.md`` is generated from the table the robustness tests run (``tests/corpus.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from corpus import CASES, COMMANDS, markdown

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "robustness.md"


def test_robustness_doc_is_current():
    assert DOC.is_file(), "generate it: python -m tests.corpus --markdown > docs/robustness.md"
    assert DOC.read_text() == markdown(), "stale: python -m tests.corpus --markdown > docs/robustness.md"


def test_every_case_has_an_outcome_per_command():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        assert set(case.outcomes) == set(COMMANDS), case.name
        if any(o.ok for o in case.outcomes.values()):
            assert case.reference is not None, f"{case.name} works somewhere but names no intended solid"
        for outcome in case.outcomes.values():
            assert outcome.detail, case.name


def test_markdown_command_prints_the_doc():
    proc = subprocess.run([sys.executable, "-m", "tests.corpus", "--markdown"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == markdown()
