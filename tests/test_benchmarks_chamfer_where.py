"""Where a Chamfer comes from (benchmarks.chamfer_where): shares checked against a per-sample loop."""

from __future__ import annotations

import numpy as np

from benchmarks.chamfer_where import NEAR_WORST, side_summary


def test_side_summary_matches_a_per_sample_count():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, size=(1000, 3))
    distances = rng.uniform(0, 1e-3, size=1000)
    points[:5] = [0.5, 0.5, 0.5] + rng.normal(scale=0.005, size=(5, 3))  # one bad place
    distances[:5] = 0.02 + np.arange(5) * 1e-3
    summary = side_summary(points, distances)

    total = sum(d * d for d in distances)
    ranked = sorted(distances, reverse=True)
    worst = points[int(np.argmax(distances))]
    near = sum(d * d for p, d in zip(points, distances) if np.linalg.norm(p - worst) < NEAR_WORST)
    assert np.isclose(summary["share_worst_1pct"], sum(d * d for d in ranked[:10]) / total)
    assert np.isclose(summary["share_worst_5pct"], sum(d * d for d in ranked[:50]) / total)
    assert np.isclose(summary["share_near_worst"], near / total) and summary["share_near_worst"] > 0.8
    assert np.isclose(summary["mean_squared"], total / 1000) and np.allclose(summary["worst_sample"], worst, atol=1e-3)
