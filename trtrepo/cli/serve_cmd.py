"""``trtrepo serve``."""

from __future__ import annotations

from pathlib import Path

import click

from trtrepo.cli._app import cli


def _echo(line: str) -> None:
    click.echo(line)  # flushed: a supervisor reading the pipe sees "ready:" when it is printed


@cli.command()
@click.argument("repo", required=False, default="model_repository", metavar="[REPO]")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the HTTP and gRPC endpoints bind.")
@click.option("--http-port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option("--grpc-port", type=int, default=8001, show_default=True, help="0 picks a free port.")
@click.option("--metrics-port", type=int, default=8002, show_default=True, help="0 picks a free port.")
@click.option("--tritonserver", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="tritonserver binary (default: TRTREPO_TRITONSERVER, PATH, then nvidia-pytriton's).")
@click.option("--print-command", is_flag=True, help="Print the tritonserver command line and exit.")
@click.option("--allow-modified", is_flag=True,
              help="Serve a repository whose files differ from its manifest (each file is named in a warning).")
def serve(repo: str, host: str, http_port: int, grpc_port: int, metrics_port: int, tritonserver: Path | None,
          print_command: bool, allow_modified: bool) -> int:
    """Run tritonserver on the repository REPO (default: ./model_repository), a folder or a URL.

    A URL (s3://bucket/prefix, s3://http://HOST:PORT/bucket/prefix for an S3-compatible store, gs://bucket/prefix,
    as://account/container/prefix) published by
    trtrepo publish is verified against its manifest and its TensorRT plugin libraries are fetched first.

    Ctrl-C, SIGTERM and SIGHUP stop the server and its Python-backend stubs; the exit code is then 128 + the
    signal number (130, 143, 129).
    """
    from trtrepo._signals import Interrupted, stop_on_signals
    from trtrepo.remote import is_url
    from trtrepo.serve import serve_forever

    with stop_on_signals():
        try:
            where = repo if is_url(repo) else Path(repo)
            return int(serve_forever(where, host=host, http_port=http_port, grpc_port=grpc_port,
                                     metrics_port=metrics_port, tritonserver=tritonserver, print_only=print_command,
                                     allow_modified=allow_modified, echo=_echo))
        except Interrupted as exc:
            click.echo(f"stopped: {exc.signal_name}", err=True)
            return exc.exit_code
