"""The one exception type users see.

Every user-facing failure (bad input file, bad config, corrupt checkpoint,
unwritable output) raises :class:`SdfkitError` with a message that fits on one
line; the CLI prints it as ``error: <message>`` and exits with status 1.
"""


class SdfkitError(Exception):
    """A failure caused by the user's input or environment, reported in one line."""
