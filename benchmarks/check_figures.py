"""Check that every figure quoted in README.md and BENCHMARKS.md appears in some file under benchmarks/results/.

``python -m benchmarks.check_figures [DOC ...]`` prints one line per unsourced figure and exits 1 if there is any.

What counts as a figure (in prose and tables; code spans, fenced code, link targets and URLs are skipped, since
they hold commands, options, paths and versions):

- a number with a decimal point (``0.998``, ``127.4``) or in scientific notation (``1.2e-07``, ``0.76e-5``);
- a number with thousands separators (``148,753``);
- a whole number with a unit: ``s``, ``ms``, ``ns``, ``min``, ``x``, ``%``, ``KB``, ``MB``, ``GiB``, ``MiB``,
  ``k``, ``M`` or ``GFLOP/s``/``TFLOP/s`` (``127 s``, ``31x``, ``8%``). In a range (``198-250 s``, ``8-18%``)
  both ends carry the unit.

Whole numbers without a unit are not figures: they count things or name settings (5 meshes, 600 steps, 256^3,
2 cores, w0 = 30). A figure is sourced when some number in a results file rounds to it at the precision it is
quoted with (``1.2e-07`` is matched by 1.1984e-07; ``127 s`` by 127.43); ``%`` also matches the fraction (``99.6%``
by 0.996), ``k``, ``M`` and ``min`` the value in units (``7.3M`` by 7,300,000; ``10 min`` by 600). The check proves
that a figure has a source, not which file it came from: the text names the file.

Exclusions, each a pattern in :data:`EXCLUDED` with its reason: figures quoted from others (papers, vendor
specifications), targets set before measuring, and settings written as decimals (thresholds, fractions of a box).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parents[1]
DOCS = ("README.md", "BENCHMARKS.md")

#: (pattern, reason): a figure inside a match of the pattern is not checked.
EXCLUDED: tuple[tuple[str, str], ...] = (
    (r"(?s)Mehta et al\. 2021 report.*?on Stanford scans", "the papers' own figures, quoted for comparison"),
    (r"paper'?s?(?: reports)?(?: unseen[- ]scene)? 2\.40e-5", "the paper's figure, quoted for comparison"),
    (r"paper reports 2\.40e-5", "the paper's figure, quoted for comparison"),
    (r"last\s+on Scene B at 8\.37", "the paper's figure (its Table 6), quoted for comparison"),
    (r"about 67 TFLOP/s fp32, about 495 TF32 and about 990 bf16", "the H100's data-sheet peaks"),
    (r"under 60 s|under 10 min|in under 60 s|60 s object target", "targets set before measuring"),
    (r"\|sdf\| > 1e-3", "a setting of the sign check"),
    (r"\(0\.05 of the box side\)", "a setting: the global layout's clamp band"),
    (r"\(w0 = 30\)", "SIREN's setting"),
    (r"x1e-5", "a column's unit"),
    (r"\d[\d,]* parameters", "a model's size: a property of the file, not a measurement"),
)

_UNITS = r"(?:TFLOP/s|GFLOP/s|GiB|MiB|KB|MB|ms|ns|min|s|x|%|k|M)"
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+|\d+"
# A number, optionally the first end of a range, then an optional unit; not part of a word, version or path.
_TOKEN = re.compile(rf"(?<![\w.^/=])({_NUMBER})(?:\s?-\s?({_NUMBER}))?(?:\s?({_UNITS})(?![\w]))?(?![\w.]\d)")
_SKIP = re.compile(r"```.*?```|`[^`\n]*`|\]\([^)]*\)|https?://\S+|<[^>\n]*>", re.S)


@dataclass(frozen=True)
class Figure:
    """One quoted figure: its text, the values that would source it, and the tolerance of each (half its last
    shown digit)."""

    doc: str
    line: int
    text: str
    candidates: tuple[tuple[float, float], ...]


def _parse(token: str, unit: str | None) -> tuple[tuple[float, float], ...] | None:
    """(value, tolerance) pairs that source ``token`` with ``unit``; None when the token is not a figure."""
    plain = token.replace(",", "")
    is_sci = "e" in plain
    if not (is_sci or "." in plain or "," in token or unit):
        return None
    value = float(plain)
    if is_sci:
        mantissa = plain.split("e")[0]
        digits = len(mantissa.replace(".", "").lstrip("0")) or 1
        tol = 0.5 * 10 ** (math.floor(math.log10(abs(value))) - digits + 1) if value else 0.5e-12
    else:
        decimals = len(plain.split(".")[1]) if "." in plain else 0
        tol = 0.5 * 10 ** -decimals
    scale = {"%": 0.01, "k": 1e3, "M": 1e6, "min": 60.0}.get(unit or "")
    out = [(value, tol)]
    if scale:
        out.append((value * scale, tol * scale))
    return tuple(out)


def _masked(text: str) -> str:
    """``text`` with skipped spans and excluded phrases blanked (same length, so offsets keep their lines)."""
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731
    text = _SKIP.sub(blank, text)
    for pattern, _ in EXCLUDED:
        text = re.sub(pattern, blank, text)
    return text


def figures(text: str, doc: str = "") -> list[Figure]:
    """Every figure quoted in markdown ``text``, by the rule in this module's docstring."""
    masked = _masked(text)
    found = []
    for match in _TOKEN.finditer(masked):
        first, second, unit = match.groups()
        line = masked.count("\n", 0, match.start()) + 1
        for token in (first, second) if second else (first,):
            candidates = _parse(token, unit)
            if candidates is not None:
                text = token if not unit else token + ("" if unit in ("x", "%", "k", "M") else " ") + unit
                found.append(Figure(doc, line, text, candidates))
    return found


def source_numbers(folder: Path = RESULTS) -> list[float]:
    """Every number written in a text file under ``folder``, sorted."""
    numbers: set[float] = set()
    pattern = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix in {".png", ".jpg", ".pt", ".npz"} or path.name == "README.md":
            continue
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        for token in pattern.findall(text):
            number = float(token.replace(",", ""))
            if math.isfinite(number):
                numbers.add(abs(number))
    return sorted(numbers)


def is_sourced(figure: Figure, numbers: list[float]) -> bool:
    """Whether some number rounds to ``figure`` at its quoted precision (``numbers`` sorted)."""
    for value, tol in figure.candidates:
        lo = value - tol * (1 + 1e-9)
        i = bisect_left(numbers, lo)
        if i < len(numbers) and numbers[i] <= value + tol * (1 + 1e-9):
            return True
    return False


def unsourced(text: str, numbers: list[float], doc: str = "") -> list[Figure]:
    """The figures of ``text`` that no number in ``numbers`` sources."""
    return [f for f in figures(text, doc) if not is_sourced(f, numbers)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("docs", nargs="*", type=Path, help="markdown files (default: README.md and BENCHMARKS.md)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of results files")
    args = parser.parse_args(argv)
    numbers = source_numbers(args.results)
    missing = []
    for doc in args.docs or [REPO / name for name in DOCS]:
        try:
            text = Path(doc).read_text()
        except OSError as exc:
            print(f"error: cannot read {doc}: {exc.strerror}", file=sys.stderr)
            return 1
        missing += unsourced(text, numbers, Path(doc).name)
    for f in missing:
        print(f"{f.doc}:{f.line}: {f.text} is in no file under {args.results}")
    print(f"check_figures: {len(missing)} unsourced figure(s)", file=sys.stderr if missing else sys.stdout)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
