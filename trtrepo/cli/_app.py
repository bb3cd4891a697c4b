"""The ``trtrepo`` click group and what every subcommand shares: logging set-up, progress lines, list options.

Each subcommand lives in a module of its own in this package (``<name>_cmd.py``); it parses its options, calls one
library function and returns an exit code. :func:`trtrepo.cli.main` maps errors to exit codes.
"""

from __future__ import annotations

import logging
import sys

import click

from trtrepo import __version__

LOGGER = logging.getLogger(__name__)

EXIT_BUG = 70
EXIT_INTERRUPTED = 130

STATE = {"verbose": False}


def progress(line: str) -> None:
    """A progress line, to stderr (stdout carries the command's result)."""
    click.echo(line, err=True)


def csv(value: str | None) -> list[str] | None:
    """``"a, b"`` → ``["a", "b"]``; None stays None."""
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


class _LowerLevelFormatter(logging.Formatter):
    """``warning: ...`` like the ``error: ...`` lines."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace(record.levelname, record.levelname.lower(), 1)


def _setup_logging(verbose: bool) -> None:
    """trtrepo's warnings (``auto → torch``) always reach stderr; -v adds debug messages."""
    logger = logging.getLogger("trtrepo")
    for handler in list(logger.handlers):
        if getattr(handler, "_trtrepo_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._trtrepo_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(_LowerLevelFormatter("%(levelname)s: %(message)s" if not verbose
                                              else "%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="trtrepo")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging, and tracebacks for every error.")
def cli(verbose: bool) -> None:
    """PyTorch model with custom C++/CUDA layers → verified NVIDIA Triton Inference Server deployment.

    \b
    trtrepo build model.yaml     write the Triton model repository
    trtrepo serve                run tritonserver on it
    trtrepo check model.yaml     prove what Triton serves == eager PyTorch
    trtrepo doctor               what this machine has, and how to get what it lacks
    """
    STATE["verbose"] = verbose
    _setup_logging(verbose)


def int_csv(value: str | None, option: str) -> list[int] | None:
    """``"1,4"`` → ``[1, 4]``; a usage error naming ``option`` for anything else."""
    try:
        return [int(c) for c in items] if (items := csv(value)) is not None else None
    except ValueError:
        raise click.BadParameter(f"integers separated by commas, got {value!r}", param_hint=option) from None
