"""The one exception type users see (defined in :mod:`data_prep.errors`, the lowest layer)."""

from data_prep.errors import SdfkitError

__all__ = ["SdfkitError"]
