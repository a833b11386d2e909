"""The converter's errors (hierafash_core.weights and the modules it reads and writes with): each message names
the file and what to do."""

from __future__ import annotations


class WeightsError(Exception):
    """A checkpoint could not be converted; the message names the file and what to do."""


class CheckpointReadError(WeightsError):
    """The file is missing, truncated, corrupt or not a PyTorch checkpoint."""


class UnsafeCheckpointError(WeightsError):
    """The pickle asks for something other than tensors, plain containers and known training metadata."""


class CheckpointLayoutError(WeightsError):
    """The state dict is not the ControlLDM layout we convert."""


class CheckpointLimitError(CheckpointReadError):
    """The file exceeds a limit that bounds what reading it may cost (the message names the limit)."""


class OutputExistsError(WeightsError):
    """An output file already exists with other content and may not be replaced."""


class OutputWriteError(WeightsError):
    """An output could not be written (disk full, no permission); nothing was replaced."""


class VerificationError(WeightsError):
    """A written file does not read back as what was written."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none), for a one-line report."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
