"""sdfkit: meshes to neural signed distance fields and back.

Sign convention, used everywhere in the package: a signed distance is
**negative inside** the surface and positive outside.
"""

__version__ = "0.1.0"
