"""Stage 1 of the pipeline: load meshes, normalise them, sample signed distances.

The lowest layer: it imports nothing from ``sdfkit`` or ``viewer`` (see ``docs/architecture.md``),
and holds the basics every layer shares (``errors``, ``files``, ``yaml_io``).

Sign convention: signed distances are negative inside, positive outside.
"""
