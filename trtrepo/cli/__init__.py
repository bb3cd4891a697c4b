"""The ``trtrepo`` command: ``main(argv) -> int`` runs it and maps every error to its exit code.

Exit codes: 0 success; 1 build/serve/parity failure (``check`` also returns 1 when parity fails); 2 invalid
model.yaml or usage; 3 missing dependency; 70 a bug in trtrepo (shown with its traceback); 130 interrupted.
Only the standard library and click are imported at module level: ``trtrepo --help`` must work without torch,
TensorRT or tritonclient.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from trtrepo import __version__
from trtrepo.cli import (  # noqa: F401  (register)
    bench_cmd,
    bench_kernels_cmd,
    build_cmd,
    check_cmd,
    deploy_cmd,
    doctor_cmd,
    ops_cmd,
    publish_cmd,
    serve_cmd,
)
from trtrepo.cli._app import EXIT_BUG, EXIT_INTERRUPTED, STATE, cli
from trtrepo.errors import TrtrepoError

__all__ = ["EXIT_BUG", "EXIT_INTERRUPTED", "EXIT_USAGE", "cli", "main"]

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the ``trtrepo`` console script exits with it).

    Args:
        argv: Arguments without the program name; None = ``sys.argv[1:]``.
    """
    STATE["verbose"] = False
    try:
        result: Any = cli.main(args=argv, prog_name="trtrepo", standalone_mode=False)
    except click.exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except TrtrepoError as exc:
        if STATE["verbose"]:
            traceback.print_exc()
        click.echo(f"error: {exc.message}", err=True)
        # an error may carry the rest of a tool's explanation (torch.export's constraint conflicts), shown in full
        for line in exc.details:
            click.echo(f"  {line}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        return exc.exit_code
    except ValueError as exc:
        if "embedded null byte" not in str(exc):  # what os.stat says of a path with a NUL byte, from any option
            return _bug()
        if STATE["verbose"]:
            traceback.print_exc()
        click.echo("error: a path argument contains a NUL byte", err=True)
        return EXIT_USAGE
    except Exception:
        return _bug()
    return int(result or 0)


def _bug() -> int:
    """A failure that is not the user's: trtrepo's own bug, shown with its traceback."""
    traceback.print_exc()
    click.echo(f"error: this is a bug in trtrepo {__version__}: please report it with the traceback above", err=True)
    return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
