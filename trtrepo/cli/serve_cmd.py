"""``trtrepo serve``."""

from __future__ import annotations

from pathlib import Path

import click

from trtrepo.cli._app import cli


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
