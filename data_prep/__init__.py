"""Stage 1 of the pipeline: load meshes, normalise them, sample signed distances.

Sign convention: signed distances are negative inside, positive outside.
"""
