"""The user-facing error types, at the bottom of the import graph so every layer can raise them.

Each is a ValueError whose message is one line naming the thing (file, line, field, tensor,
setting) and the fix; the CLIs print it without a traceback.
"""


class DataError(ValueError):
    """A data file or row that cannot be used; the message names the file, line and field."""


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded; the message names the file/tensor and the fix."""


class UnsupportedModelError(ValueError):
    """A checkpoint config that this decoder cannot run exactly."""
