"""One exception hierarchy for every failure a user can cause or fix.

User errors print one line plus a hint and exit with ``exit_code``; anything that is not a ``TrtrepoError`` is a
bug in trtrepo and is shown with its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class TrtrepoError(Exception):
    """Base class of every error trtrepo reports to a user.

    Args:
        message: One line naming what is wrong and where (YAML key path, file, op name).
        hint: Optional one line saying how to fix it (a command where there is one).
        details: The rest of a tool's explanation (torch.export's constraint conflicts), printed in full below the
            error line.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = tuple(details)

    def __str__(self) -> str:
        return self.message


class SpecError(TrtrepoError):
    """model.yaml or an op description is invalid; the message starts with the YAML key path."""

    exit_code = 2


class MissingDependencyError(TrtrepoError):
    """A package or tool a stage needs is absent; the hint holds the command that installs it."""

    exit_code = 3


class BuildError(TrtrepoError):
    """A compile, export or engine build failed; the message names the log kept beside the artifact."""


class ServeError(TrtrepoError):
    """tritonserver could not be found, started, or reached, or it died."""


class ParityError(TrtrepoError):
    """What Triton served does not match eager PyTorch within the tolerances."""
