"""Sign-consistency figures of the prep manifest on the real CAD soup of airplanes/val and chairs/val.

Prepares each folder with 20,000 samples per mesh (default preset otherwise) into a temporary folder and
records every mesh's manifest row: where the rejection limits of ``data_prep/manifest.py`` come from.

    python -m benchmarks.manifest_soup
"""

from __future__ import annotations

import os
import tempfile

from benchmarks.common import RESULTS, SHARED, provenance, write_result
from data_prep.dataset import prep_dataset
from data_prep.manifest import MAX_SIGN_CONFLICTS, MAX_WINDING_AMBIGUOUS, read_manifest
from data_prep.sampling import SamplingConfig

POINTS = 20_000


def main() -> None:
    load = os.getloadavg()[0]
    rows = {}
    for folder in ("airplanes/val", "chairs/val"):
        with tempfile.TemporaryDirectory() as tmp:
            prep_dataset(SHARED / folder, tmp, SamplingConfig(num_points=POINTS), workers=1, progress=False)
            rows[folder] = list(read_manifest(tmp).values())
    lines = [f"Manifest figures, {POINTS} samples per mesh; limits: sign conflicts {MAX_SIGN_CONFLICTS:.0%}, "
             f"ambiguous winding {MAX_WINDING_AMBIGUOUS:.0%}", "",
             "| folder | mesh | parts | watertight | sign conflicts | ambiguous winding | rejected |", "|---" * 7 + "|"]
    for folder, meshes in rows.items():
        for r in meshes:
            lines.append(f"| {folder} | {r['shape']} | {r['parts']} | {r['watertight']} | {r['sign_conflicts']:.2%} "
                         f"| {r['winding_ambiguous']:.2%} | {'yes' if r['rejected'] else ''} |")
            print(lines[-1])
    write_result("manifest_soup", {**provenance(load), "points": POINTS, "rows": rows})
    (RESULTS / "manifest_soup.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
