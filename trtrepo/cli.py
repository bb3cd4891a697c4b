"""The ``trtrepo`` command: each subcommand parses its options, calls one library function, maps errors to exit codes.

Exit codes: 0 success; 1 build/serve/parity failure (``check`` also returns 1 when parity fails); 2 invalid
model.yaml or usage; 3 missing dependency; 70 a bug in trtrepo (shown with its traceback); 130 interrupted.
Only the standard library and click are imported at module level: ``trtrepo --help`` must work without torch,
TensorRT or tritonclient.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from trtrepo import __version__
from trtrepo.errors import TrtrepoError

LOGGER = logging.getLogger(__name__)

EXIT_BUG = 70
EXIT_INTERRUPTED = 130

_STATE = {"verbose": False}


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _csv(value: str | None) -> list[str] | None:
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
    _STATE["verbose"] = verbose
    _setup_logging(verbose)


@cli.command()
@click.argument("model_yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Repository folder (default: the spec's `repository:`).")
@click.option("--target", type=click.Choice(["auto", "tensorrt", "torch"]), default=None,
              help="Override every model's target (auto = tensorrt where TensorRT is installed, else torch).")
@click.option("--models", default=None, metavar="A,B", help="Build only these models; keep the others.")
def build(model_yaml: Path, out: Path | None, target: str | None, models: str | None) -> int:
    """Build the Triton model repository described by MODEL_YAML."""
    from trtrepo.build import build as run_build

    result = run_build(model_yaml, out=out, target=target, models=_csv(models), progress=_progress)
    click.echo(f"repository: {result.repository}")
    for name, chosen in result.targets.items():
        click.echo(f"  {name}: {chosen}")
    click.echo(f"manifest: {result.manifest}")
    return 0


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> int:
    """Report python, torch, CUDA, nvcc, GPU, TensorRT, Torch-TensorRT, tritonserver and tritonclient."""
    from trtrepo.doctor import run_doctor, to_json, to_table

    checks = run_doctor()
    click.echo(to_json(checks) if as_json else to_table(checks))
    return 0


@cli.command()
@click.argument("repo", required=False, default="model_repository",
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the HTTP and gRPC endpoints bind.")
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@click.option("--metrics-port", type=int, default=8002, show_default=True)
@click.option("--tritonserver", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="tritonserver binary (default: TRTREPO_TRITONSERVER, PATH, then nvidia-pytriton's).")
@click.option("--print-command", is_flag=True, help="Print the tritonserver command line and exit.")
def serve(repo: Path, host: str, http_port: int, grpc_port: int, metrics_port: int, tritonserver: Path | None,
          print_command: bool) -> int:
    """Run tritonserver on the repository REPO (default: ./model_repository)."""
    from trtrepo.serve import serve_forever

    return int(serve_forever(repo, host=host, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
                             tritonserver=tritonserver, print_only=print_command))


@cli.command()
@click.argument("model_yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--url-http", default=None, metavar="HOST:PORT", help="Triton HTTP endpoint.")
@click.option("--url-grpc", default=None, metavar="HOST:PORT", help="Triton gRPC endpoint.")
@click.option("--protocol", type=click.Choice(["http", "grpc", "both"]), default="both", show_default=True)
@click.option("--models", default=None, metavar="A,B", help="Check only these models.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the parity report (JSON) here.")
@click.option("--repository", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Repository to serve when no URL is given (default: the spec's).")
def check(model_yaml: Path, url_http: str | None, url_grpc: str | None, protocol: str, models: str | None,
          report: Path | None, repository: Path | None) -> int:
    """Prove that what Triton serves matches eager PyTorch for the models of MODEL_YAML."""
    from trtrepo.check import run_check

    protocols = ("http", "grpc") if protocol == "both" else (protocol,)
    result = run_check(model_yaml, url_http=url_http, url_grpc=url_grpc, protocols=protocols, models=_csv(models),
                       report_path=report, repository=repository)
    click.echo(result.table())
    return 0 if result.passed else 1


@cli.command()
@click.argument("model_yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--concurrency", default="1,4,16", show_default=True, metavar="N,M", help="Concurrency levels.")
@click.option("--requests", type=int, default=200, show_default=True, help="Requests per concurrency level.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON report path.")
@click.option("--plot", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder for plots.")
@click.option("--batch-sizes", default=None, metavar="N,M", help="Batch sizes (default: each model's opt batch).")
@click.option("--models", default=None, metavar="A,B", help="Bench only these models.")
@click.option("--url-http", default=None, metavar="HOST:PORT", help="A running Triton's HTTP endpoint.")
@click.option("--repository", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Repository to serve when no URL is given (default: the spec's).")
@click.option("--parity-report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A `trtrepo check --report` JSON whose errors are plotted as a histogram.")
def bench(model_yaml: Path, concurrency: str, requests: int, report: Path | None, plot: Path | None,
          batch_sizes: str | None, models: str | None, url_http: str | None, repository: Path | None,
          parity_report: Path | None) -> int:
    """Latency and throughput of the served models against eager PyTorch."""
    from trtrepo.bench import run_bench

    levels = _int_csv(concurrency, "--concurrency") or []
    result = run_bench(model_yaml, concurrency=levels, requests=requests, report_path=report, plot_dir=plot,
                       batch_sizes=_int_csv(batch_sizes, "--batch-sizes"), models=_csv(models), url_http=url_http,
                       repository=repository, parity_report=parity_report)
    click.echo(result.table())
    return 0


def _int_csv(value: str | None, option: str) -> list[int] | None:
    try:
        return [int(c) for c in items] if (items := _csv(value)) is not None else None
    except ValueError:
        raise click.BadParameter(f"integers separated by commas, got {value!r}", param_hint=option) from None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the ``trtrepo`` console script exits with it).

    Args:
        argv: Arguments without the program name; None = ``sys.argv[1:]``.
    """
    _STATE["verbose"] = False
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
        if _STATE["verbose"]:
            traceback.print_exc()
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        return exc.exit_code
    except Exception:
        traceback.print_exc()
        click.echo(f"error: this is a bug in trtrepo {__version__}: please report it with the traceback above",
                   err=True)
        return EXIT_BUG
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
