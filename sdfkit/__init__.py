"""sdfkit: meshes to neural signed distance fields and back.

Sign convention, used everywhere in the package: a signed distance is
**negative inside** the surface and positive outside.

The Python API (:mod:`sdfkit.api`) is re-exported here: ``sdfkit.fit_mesh``,
``sdfkit.fit_folder``, ``sdfkit.load`` and ``sdfkit.SignedDistance``.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names below, for type checkers; at run time they load on first use
    from sdfkit.api import SignedDistance, fit_folder, fit_mesh, load

__version__ = "0.1.0"

#: Names re-exported from :mod:`sdfkit.api`, imported on first use so that ``import sdfkit.errors`` (used by
#: data_prep) does not pull in torch.
_API = ("fit_mesh", "fit_folder", "load", "SignedDistance")
__all__ = ["__version__", "fit_mesh", "fit_folder", "load", "SignedDistance"]


def __getattr__(name: str):
    if name in _API:
        from sdfkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'sdfkit' has no attribute {name!r}")
