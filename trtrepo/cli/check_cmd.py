"""``trtrepo check``."""

from __future__ import annotations

from pathlib import Path

import click

from trtrepo.cli._app import cli, csv, progress


@cli.command()
@click.argument("model_yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--url-http", multiple=True, metavar="HOST:PORT",
              help="Triton HTTP endpoint; repeat for several replicas (paired with --url-grpc by position).")
@click.option("--url-grpc", multiple=True, metavar="HOST:PORT", help="Triton gRPC endpoint; repeatable.")
@click.option("--endpoints", "endpoints_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File of replicas, one a line: HTTP GRPC [NAME] ('-' for a missing endpoint).")
@click.option("--protocol", type=click.Choice(["http", "grpc", "both"]), default="both", show_default=True)
@click.option("--models", default=None, metavar="A,B", help="Check only these models.")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Write the parity report (JSON) here (default when the check starts the server: the "
                   "repository's run folder under the cache, never the repository).")
@click.option("--repository", default=None, metavar="DIR|URL",
              help="Repository to serve when no URL is given (default: the spec's); a folder or an s3://, gs://, "
                   "as:// URL.")
@click.option("--shared-memory", type=click.Choice(["none", "system", "cuda"]), default="none", show_default=True,
              help="Send tensors through system or CUDA shared memory (server on this host; regions are "
                   "unregistered and freed at exit).")
@click.option("--allow-modified", is_flag=True,
              help="Serve a repository whose files differ from its manifest (each file is named in a warning).")
@click.option("--ops", is_flag=True,
              help="Also probe every custom op alone through Triton (one-op models built like the model, in a "
                   "temporary repository) and name the first op that drifts.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --ops: write a per-op error plot (PNG) here (needs matplotlib).")
def check(model_yaml: Path, url_http: tuple[str, ...], url_grpc: tuple[str, ...], endpoints_file: Path | None,
          protocol: str, models: str | None, report: Path | None, repository: str | None,
          allow_modified: bool, ops: bool, plot: Path | None, shared_memory: str) -> int:
    """Prove that what Triton serves matches eager PyTorch for the models of MODEL_YAML.

    Ctrl-C, SIGTERM and SIGHUP stop the server the check started (and its stubs); the exit code is then 128 + the
    signal number (130, 143, 129).

    With several replicas (repeated --url-http/--url-grpc, or --endpoints) the requests are spread over them and
    the report has one entry per replica; a replica that cannot be reached is reported by name and the others are
    still checked; the exit code is 1 when any replica failed.
    """
    from trtrepo._signals import Interrupted, stop_on_signals
    from trtrepo.check import run_check

    protocols = ("http", "grpc") if protocol == "both" else (protocol,)
    if plot is not None and not ops:
        raise click.UsageError("--plot needs --ops")
    several = len(url_http) > 1 or len(url_grpc) > 1 or endpoints_file is not None
    urls: dict[str, object] = ({"replica_urls": (url_http, url_grpc), "endpoints_file": endpoints_file} if several
                               else {"url_http": url_http[0] if url_http else None,
                                     "url_grpc": url_grpc[0] if url_grpc else None})
    with stop_on_signals():
        try:
            result = run_check(model_yaml, protocols=protocols, models=csv(models), report_path=report,
                               repository=repository, progress=progress, allow_modified=allow_modified, ops=ops,
                               plot=plot, shared_memory=shared_memory,
                               **urls)  # type: ignore[arg-type]
        except Interrupted as exc:
            click.echo(f"stopped: {exc.signal_name}", err=True)
            return exc.exit_code
    click.echo(result.table())
    return 0 if result.passed else 1
