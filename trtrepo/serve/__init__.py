"""``trtrepo serve``: run a real ``tritonserver`` on a model repository until it is stopped.

The stage in four modules: :mod:`~trtrepo.serve.install` (find tritonserver, its backend folder, its environment),
:mod:`~trtrepo.serve.verify` (the repository is what its manifest says), :mod:`~trtrepo.serve.process` (one server
process: prepare, start, wait, stop, never outliving its command), :mod:`~trtrepo.serve.logs` (where server logs and
reports go). SIGTERM and SIGHUP unwind like Ctrl-C inside :func:`trtrepo._signals.stop_on_signals` (re-exported).
Check and bench use the names this module exports, never the modules' private parts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from trtrepo._signals import Interrupted, stop_on_signals
from trtrepo.serve.install import (
    ENV_BINARY,
    ENV_MODEL_PYTHONPATH,
    INSTALL_HINT,
    SERVER_ENV_KEYS,
    TritonInstall,
    backend_directory,
    find_tritonserver,
    server_environment,
)
from trtrepo.serve.logs import default_report_path, new_log_path, run_folder
from trtrepo.serve.process import (
    DEFAULT_GRPC_PORT,
    DEFAULT_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_METRICS_PORT,
    DEFAULT_STARTUP_TIMEOUT,
    TritonServer,
    check_port,
    format_log_tail,
    free_port,
)
from trtrepo.serve.verify import Finding, Verification, inspect_repository, verify_repository

LOGGER = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_GRPC_PORT",
    "DEFAULT_HOST",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_METRICS_PORT",
    "DEFAULT_STARTUP_TIMEOUT",
    "ENV_BINARY",
    "ENV_MODEL_PYTHONPATH",
    "INSTALL_HINT",
    "SERVER_ENV_KEYS",
    "Finding",
    "Interrupted",
    "TritonInstall",
    "TritonServer",
    "Verification",
    "backend_directory",
    "check_port",
    "default_report_path",
    "find_tritonserver",
    "format_log_tail",
    "free_port",
    "inspect_repository",
    "new_log_path",
    "repository_plugin_libraries",
    "run_folder",
    "serve_forever",
    "server_environment",
    "stop_on_signals",
    "verify_repository",
]


def repository_plugin_libraries(repository: str | Path) -> list[Path]:
    """The TensorRT plugin libraries of ``repository`` (:func:`trtrepo.repository.plugins.served_plugin_libraries`)."""
    from trtrepo.repository.plugins import served_plugin_libraries
    from trtrepo.repository.reader import read_repository

    return served_plugin_libraries(read_repository(repository))


def serve_forever(repository: str | Path, *, host: str = DEFAULT_HOST, http_port: int = DEFAULT_HTTP_PORT,
                  grpc_port: int = DEFAULT_GRPC_PORT, metrics_port: int = DEFAULT_METRICS_PORT,
                  tritonserver: str | Path | None = None, print_only: bool = False, allow_modified: bool = False,
                  echo: Callable[[str], None] = print) -> int:
    """``trtrepo serve``: start tritonserver on ``repository`` and run until it is stopped or exits by itself.

    Ctrl-C (KeyboardInterrupt) and, inside :func:`~trtrepo._signals.stop_on_signals`, SIGINT, SIGTERM and SIGHUP
    (:class:`~trtrepo._signals.Interrupted`) stop the server and its stubs before they propagate.

    Args:
        repository: The model repository folder.
        host: Address to bind (127.0.0.1 unless told otherwise).
        http_port: HTTP port (0 = a free one).
        grpc_port: gRPC port (0 = a free one).
        metrics_port: Metrics port (0 = a free one).
        tritonserver: Explicit tritonserver binary.
        print_only: Print the command line (with the environment it needs) and exit without starting.
        allow_modified: Serve a repository whose files differ from its manifest (warns naming them).
        echo: Where the one-line messages go.

    Returns:
        The server's exit code (1 if it was 0) when it exits by itself; 0 for ``print_only``.

    Raises:
        SpecError: A port out of range (named by its ``trtrepo serve`` option).
        ServeError: A repository that differs from its manifest, no tritonserver, or a server that does not become
            ready.
    """
    for flag, port in (("--http-port", http_port), ("--grpc-port", grpc_port), ("--metrics-port", metrics_port)):
        check_port(port, flag)
    server = TritonServer(repository, host=host, http_port=http_port, grpc_port=grpc_port,
                          metrics_port=metrics_port, tritonserver=tritonserver, allow_modified=allow_modified,
                          startup_timeout=DEFAULT_STARTUP_TIMEOUT, progress=echo)
    server.prepare()
    if print_only:
        echo(server.command_line)
        return 0
    echo(f"$ {server.command_line}")
    echo(f"log: {server.log_path}")
    try:
        server.start()
        echo(f"ready: HTTP {server.http_url}  gRPC {server.grpc_url}  metrics {host}:{server.metrics_port}  "
             "(Ctrl-C stops)")
        while server.is_alive():
            time.sleep(0.5)
        code = server.stop()
        echo(f"tritonserver exited with code {code}{server.log_tail()}")
        return code if code else 1
    except (KeyboardInterrupt, Interrupted):
        if server.is_alive():
            echo("stopping tritonserver ...")
        raise
    finally:
        server.stop()
