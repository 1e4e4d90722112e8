"""The figure checker (benchmarks.check_figures): every figure in README.md and BENCHMARKS.md has a results file."""

from __future__ import annotations

from pathlib import Path

from benchmarks.check_figures import DOCS, REPO, figures, is_sourced, main, source_numbers, unsourced


def test_the_docs_quote_only_figures_a_results_file_holds():
    numbers = source_numbers()
    missing = [f for doc in DOCS for f in unsourced((REPO / doc).read_text(), numbers, doc)]
    assert not missing, "\n".join(f"{f.doc}:{f.line}: {f.text}" for f in missing)


def test_a_planted_figure_is_caught():
    text = (REPO / "BENCHMARKS.md").read_text()
    planted = text.replace("## Preprocessing", "A later fit took 123.457 s on the EPYC.\n\n## Preprocessing", 1)
    missing = unsourced(planted, source_numbers(), "BENCHMARKS.md")
    assert [f.text for f in missing] == ["123.457 s"]
    assert planted.splitlines()[missing[0].line - 1].startswith("A later fit took 123.457 s")


def test_what_counts_as_a_figure():
    text = ("Fit 600 steps on 2 cores at 256^3 in `--max-seconds 15` (see [r](results/a-1.5.md)): 198-250 s, "
            "CD 1.2e-07, IoU 0.998, 31x, 99.6%, 148,753 points/s, 7.3M rows.")
    assert [f.text for f in figures(text)] == ["198 s", "250 s", "1.2e-07", "0.998", "31x", "99.6%", "148,753", "7.3M"]


def test_a_figure_matches_a_number_that_rounds_to_it():
    (cd,) = figures("CD 1.2e-07")
    assert is_sourced(cd, [1.1984e-07]) and not is_sourced(cd, [1.26e-07])
    (share,) = figures("signs agree 99.6%")
    assert is_sourced(share, [0.996]) and not is_sourced(share, [0.990])
    (seconds,) = figures("took 127 s")
    assert is_sourced(seconds, [127.43]) and not is_sourced(seconds, [128.0])


def test_the_command_fails_on_an_unsourced_figure(tmp_path: Path, capsys):
    results, doc = tmp_path / "results", tmp_path / "DOC.md"
    results.mkdir()
    (results / "run.json").write_text('{"wall_s": 51.08, "iou": 0.98316}\n')
    doc.write_text("The fit took 51.1 s (IoU 0.983), and another 64.2 s.\n")
    assert main([str(doc), "--results", str(results)]) == 1
    assert "DOC.md:1: 64.2 s" in capsys.readouterr().out
    (results / "run2.md").write_text("| 64.21 |\n")
    assert main([str(doc), "--results", str(results)]) == 0
