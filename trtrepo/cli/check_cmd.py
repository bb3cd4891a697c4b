"""``trtrepo check``."""

from __future__ import annotations

from pathlib import Path

import click

from trtrepo.cli._app import cli, csv, progress


@cli.command()
@click.argument("model_yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--url-http", default=None, metavar="HOST:PORT", help="Triton HTTP endpoint.")
@click.option("--url-grpc", default=None, metavar="HOST:PORT", help="Triton gRPC endpoint.")
@click.option("--protocol", type=click.Choice(["http", "grpc", "both"]), default="both", show_default=True)
@click.option("--models", default=None, metavar="A,B", help="Check only these models.")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Write the parity report (JSON) here (default when the check starts the server: the "
                   "repository's run folder under the cache, never the repository).")
@click.option("--repository", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Repository to serve when no URL is given (default: the spec's).")
@click.option("--shared-memory", type=click.Choice(["none", "system", "cuda"]), default="none", show_default=True,
              help="Send tensors through system or CUDA shared memory (server on this host; regions are "
                   "unregistered and freed at exit).")
@click.option("--allow-modified", is_flag=True,
              help="Serve a repository whose files differ from its manifest (each file is named in a warning).")
def check(model_yaml: Path, url_http: str | None, url_grpc: str | None, protocol: str, models: str | None,
          report: Path | None, repository: Path | None, allow_modified: bool, shared_memory: str) -> int:
    """Prove that what Triton serves matches eager PyTorch for the models of MODEL_YAML.

    Ctrl-C, SIGTERM and SIGHUP stop the server the check started (and its stubs); the exit code is then 128 + the
    signal number (130, 143, 129).
    """
    from trtrepo._signals import Interrupted, stop_on_signals
    from trtrepo.check import run_check

    protocols = ("http", "grpc") if protocol == "both" else (protocol,)
    with stop_on_signals():
        try:
            result = run_check(model_yaml, url_http=url_http, url_grpc=url_grpc, protocols=protocols,
                               models=csv(models), report_path=report, repository=repository, progress=progress,
                               allow_modified=allow_modified, shared_memory=shared_memory)
        except Interrupted as exc:
            click.echo(f"stopped: {exc.signal_name}", err=True)
            return exc.exit_code
    click.echo(result.table())
    return 0 if result.passed else 1
