"""One tritonserver process: prepared, started, waited for, stopped, and never outliving the trtrepo that started it.

Constructing a :class:`TritonServer` does no I/O. :meth:`TritonServer.prepare` checks the ports, verifies the
repository against its manifest (:mod:`trtrepo.serve.verify`), finds the binary, picks free ports and the log file,
and builds the command; :meth:`TritonServer.start` prepares if needed, starts the process and waits until it and
every model are READY.

How the server ends with its command:
    * It runs in a session of its own, so the Python-backend stubs it starts share its process group: stopping
      sends SIGINT (tritonserver drains requests), then SIGTERM, and always ends with SIGKILL to whatever is left
      of the group, so a stub of a server that died by itself is not left behind (reparented to init).
    * :meth:`TritonServer.stop` runs from ``with`` blocks and ``finally`` clauses, so an exception of trtrepo
      (a crash included) stops the server; a second signal during the stop skips the grace period.
    * When trtrepo itself is killed (SIGKILL, no clean-up possible), the kernel sends the server SIGTERM
      (``PR_SET_PDEATHSIG``, Linux), whose shutdown ends its stubs. The kernel ties that signal to the thread that
      started the server, so it is set only for servers started from the main thread.
    * :func:`trtrepo._signals.stop_on_signals` makes SIGTERM and SIGHUP unwind like Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from trtrepo._signals import STOP_SIGNALS
from trtrepo.errors import ServeError, SpecError
from trtrepo.serve.install import (
    INSTALL_HINT,
    SERVER_ENV_KEYS,
    TritonInstall,
    backend_directory,
    find_tritonserver,
    server_environment,
)
from trtrepo.serve.logs import new_log_path, open_log
from trtrepo.serve.verify import Verification, verify_repository

LOGGER = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8000
DEFAULT_GRPC_PORT = 8001
DEFAULT_METRICS_PORT = 8002
DEFAULT_STARTUP_TIMEOUT = 120.0
MAX_PORT = 65535
LOG_TAIL_LINES = 15
MAX_LOG_LINE = 400
PROGRESS_EVERY_S = 15.0
_ERROR_LINE = re.compile(r"^E\d{4} ")
# Shutdown escalation: tritonserver drains in-flight requests on SIGINT; give it a bounded time to do so.
EXIT_TIMEOUT_SECS = 10
SIGINT_WAIT = EXIT_TIMEOUT_SECS + 5.0
SIGTERM_WAIT = 5.0
GROUP_GONE_WAIT = 5.0
PR_SET_PDEATHSIG = 1


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_port(value: int, what: str) -> int:
    """``value`` when it is a TCP port (0 = pick a free one), else a SpecError (usage, exit 2) naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PORT:
        raise SpecError(f"{what}: {value!r} is not a port (0-{MAX_PORT}; 0 picks a free one)")
    return value


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


@dataclass
class TritonServer:
    """A tritonserver process serving ``repository``; a context manager that waits for READY and stops it.

    Port 0 picks a free port. ``startup_timeout`` bounds the wait for the server and every model to be ready; the
    log goes to ``log_path`` (default: a new file in the repository's run folder under the cache, created when
    the server starts: :func:`trtrepo.serve.logs.new_log_path`) and
    its last lines end every ServeError. The repository must match its manifest unless ``allow_modified``.

    Example::

        with TritonServer("model_repository", http_port=0, grpc_port=0) as server:
            client = tritonclient.http.InferenceServerClient(server.http_url)
    """

    repository: str | Path
    host: str = DEFAULT_HOST
    http_port: int = 0
    grpc_port: int = 0
    metrics_port: int = 0
    tritonserver: str | Path | None = None
    log_path: str | Path | None = None
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    extra_args: Sequence[str] = ()
    allow_modified: bool = False
    progress: Callable[[str], None] | None = field(default=None, repr=False)
    install: TritonInstall | None = field(default=None, init=False, repr=False)
    verification: Verification | None = field(default=None, init=False, repr=False)
    command: list[str] = field(default_factory=list, init=False)
    env: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log_file: IO[bytes] | None = field(default=None, init=False, repr=False)
    _prepared: bool = field(default=False, init=False, repr=False)

    # -- public API
    def prepare(self) -> TritonServer:
        """Check the ports, verify the repository, find the binary, pick ports and the log, build the command.

        Idempotent: a prepared server is not prepared again.

        Raises:
            SpecError: A port out of range.
            ServeError: No repository, a repository that differs from its manifest, an unreadable manifest or
                config.pbtxt, a plugin problem, or no tritonserver.
        """
        if self._prepared:
            return self
        for what, port in (("http_port", self.http_port), ("grpc_port", self.grpc_port),
                           ("metrics_port", self.metrics_port)):
            check_port(port, what)
        root, model_repository, plugins = self._repository()
        self.install = find_tritonserver(self.tritonserver)
        self.http_port = self.http_port or free_port(self.host)
        self.grpc_port = self.grpc_port or free_port(self.host)
        self.metrics_port = self.metrics_port or free_port(self.host)
        self.log_path = Path(self.log_path) if self.log_path is not None else new_log_path(root)
        self.command = [
            str(self.install.binary),
            f"--model-repository={model_repository}",
            f"--http-address={self.host}", f"--http-port={self.http_port}",
            f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}",
            f"--exit-timeout-secs={EXIT_TIMEOUT_SECS}",
            "--strict-readiness=true",
        ]
        backends = backend_directory(self.install)
        if backends is not None:
            self.command.append(f"--backend-directory={backends}")
        if model_repository != str(root):  # a URL: polling replicas must not autocomplete a config-less folder
            self.command.append("--disable-auto-complete-config")
        self.command += [*plugins, *self.extra_args]
        self.env = server_environment(self.install)
        self._prepared = True
        return self

    @property
    def http_url(self) -> str:
        """``host:port`` of the HTTP endpoint (tritonclient.http form); the port is known once prepared."""
        return f"{_client_host(self.host)}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """``host:port`` of the gRPC endpoint (tritonclient.grpc form); the port is known once prepared."""
        return f"{_client_host(self.host)}:{self.grpc_port}"

    @property
    def command_line(self) -> str:
        """The command as one shell line, with the environment it needs: runs as is in a shell (once prepared)."""
        if not self._prepared:
            raise RuntimeError("TritonServer.command_line: call prepare() or start() first")
        env = [f"{k}={shlex.quote(self.env[k])}" for k in SERVER_ENV_KEYS if self.env.get(k)]
        return " ".join([*env, *(shlex.quote(c) for c in self.command)])

    def is_alive(self) -> bool:
        """True while the server process runs."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> TritonServer:
        """Prepare (if not yet), start the process and wait until the server and all its models are ready.

        Raises:
            ServeError: Preparing failed (see :meth:`prepare`), the process exited, or it did not become ready
                within ``startup_timeout`` (the message holds the log's last lines and which models are not ready).
        """
        self.prepare()
        if self.is_alive():
            raise RuntimeError("TritonServer.start: already running")
        self.process = None  # a stopped server starts again on the same ports, with the same log
        LOGGER.info("starting: %s", self.command_line)
        assert self.log_path is not None and self.install is not None
        self._log_file = open_log(Path(self.log_path))  # closed in stop()
        setup = _child_setup(os.getpid(), deathsig=threading.current_thread() is threading.main_thread())
        try:
            # a stop signal that lands between fork and the assignment would leave a server nobody stops: block
            # them here, the child unblocks them before exec
            with _signals_blocked():
                self.process = subprocess.Popen(self.command, stdout=self._log_file, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=self.env, start_new_session=True,
                                                preexec_fn=setup)
        except OSError as exc:
            self._close_log()
            raise ServeError(f"cannot run {self.install.binary}: {exc}", hint=INSTALL_HINT) from None
        if self.progress is not None:
            self.progress(f"serve: tritonserver pid {self.process.pid} started; waiting until it and its models "
                          f"are ready (up to {self.startup_timeout:.0f} s)")
        try:
            self.wait_ready(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll ``/v2/health/ready`` (true only once every model is READY) until ``timeout`` seconds pass.

        Raises:
            ServeError: The server exited, or is not ready in time (names the models that are not ready).
        """
        started = time.monotonic()
        deadline = started + timeout
        next_note = started + PROGRESS_EVERY_S
        while True:
            if not self.is_alive():
                code = self.process.returncode if self.process is not None else None
                raise ServeError(f"tritonserver exited with code {code} during startup{self._models_state()}"
                                 f"{self.log_tail()}", hint=f"log: {self.log_path}")
            if self._get("/v2/health/ready") == 200:
                return
            now = time.monotonic()
            if now > deadline:
                raise ServeError(f"tritonserver not ready after {timeout:.0f} s{self._models_state()}"
                                 f"{self.log_tail()}", hint=f"log: {self.log_path}; raise the timeout "
                                 "(TRTREPO_CHECK_TIMEOUT for check) if the models are just slow to load")
            if self.progress is not None and now >= next_note:
                next_note = now + PROGRESS_EVERY_S
                self.progress(f"serve: still starting after {now - started:.0f} s (up to {timeout:.0f} s)"
                              f"{self._models_state() or '; models loading'}")
            time.sleep(0.2)

    def check_alive(self, grace: float = 0.0) -> None:
        """Raise ServeError (with the log tail) if the server has died.

        Args:
            grace: Seconds to wait for the process to end first: right after a connection broke, a server that
                was killed may not have been reaped yet.
        """
        if grace > 0 and self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        if not self.is_alive():
            code = self.process.returncode if self.process is not None else None
            raise ServeError(f"tritonserver died (exit code {code}){self.log_tail()}", hint=f"log: {self.log_path}")

    def stop(self) -> int | None:
        """Stop the server and everything it started: SIGINT (drains requests), then SIGTERM, then SIGKILL.

        Whatever the first two leave of the server's process group (its Python-backend stubs included, also when
        the server itself died earlier) is killed. A signal that arrives during the grace period (a second
        Ctrl-C) skips the rest of it; it is raised again once everything is stopped.

        Returns:
            The server's exit code, None if it never started.
        """
        proc = self.process
        if proc is None:
            return None
        pending: BaseException | None = None
        try:
            if proc.poll() is None:
                for sig, wait in ((signal.SIGINT, SIGINT_WAIT), (signal.SIGTERM, SIGTERM_WAIT)):
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(sig)
                    try:
                        proc.wait(wait)
                        break
                    except subprocess.TimeoutExpired:
                        LOGGER.warning("tritonserver (pid %d) still running %.0f s after %s", proc.pid, wait,
                                       sig.name)
        except BaseException as exc:  # interrupted while stopping: kill now, raise it after
            pending = exc
        finally:
            with _signals_blocked():
                _kill_group(proc)
                self._close_log()
        if pending is not None:
            raise pending
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the server and everything it started at once, as a crash would (a fault test's tool).

        :meth:`stop` afterwards reaps it and closes the log; :meth:`start` starts it again.
        """
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The log's error lines and last ``lines`` lines, as a block to append to a message ('' if empty)."""
        if self.log_path is None:
            return ""
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""
        return format_log_tail(text, str(self.log_path), lines)

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- internals
    def _repository(self) -> tuple[Path, str, list[str]]:
        """(local folder for logs, ``--model-repository`` value, plugin flags), the repository verified.

        A URL (``s3://...``) is verified object by object against its manifest and its TensorRT plugin libraries
        are fetched into a local mirror (:func:`trtrepo.remote.open_remote`); the logs go to the mirror's run folder.
        """
        from trtrepo.remote import is_url, open_remote

        if is_url(self.repository):
            remote = open_remote(str(self.repository), allow_modified=self.allow_modified, offer_allow=True,
                                 progress=self.progress or LOGGER.info)
            return remote.mirror, remote.url.triton_url, remote.backend_config
        from trtrepo.repository.plugins import plugin_backend_config, served_plugin_libraries
        from trtrepo.repository.reader import read_repository

        root = Path(self.repository).resolve()
        self.verification = verify_repository(root, allow_modified=self.allow_modified)
        self.repository = root
        return root, str(root), plugin_backend_config(served_plugin_libraries(read_repository(root)))

    def _get(self, route: str) -> int | None:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}{route}", timeout=2.0) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, OSError):
            return None

    def _models_state(self) -> str:
        """'; not ready: a (UNAVAILABLE: reason), ...' from the repository index, if the server answers."""
        try:
            req = urllib.request.Request(f"http://{self.http_url}/v2/repository/index", data=b"{}", method="POST")
            with urllib.request.urlopen(req, timeout=2.0) as resp:
                index = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return ""
        bad = [f"{m.get('name')} ({m.get('state', '?')}: {m.get('reason', '')})" for m in index
               if isinstance(m, dict) and m.get("state") != "READY"]
        return f"; not ready: {', '.join(bad)}" if bad else ""

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def format_log_tail(text: str, source: str, lines: int = LOG_TAIL_LINES) -> str:
    """Error lines (``E....`` records, UNAVAILABLE models) first, then the last ``lines`` lines, box art dropped."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip() and not line.startswith(("+-", "+="))]
    errors = [line for line in kept if _ERROR_LINE.match(line) or "UNAVAILABLE" in line or line.startswith("error:")]
    tail = [line for line in kept[-lines:] if line not in errors]
    if not errors and not tail:
        return ""
    shown = [(line[:MAX_LOG_LINE] + " ...") if len(line) > MAX_LOG_LINE else line for line in [*errors[-10:], *tail]]
    return f"\n--- {source} (errors, then last lines) ---\n" + "\n".join(shown)


# ------------------------------------------------------------------------------------------- process helpers
def _prctl() -> Any:
    """libc's prctl, looked up before fork (the child must not load libraries), None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup(parent: int, *, deathsig: bool) -> Callable[[], None]:
    """What the child runs between fork and exec: unblock the stop signals, die with its parent."""
    prctl = _prctl() if deathsig else None

    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)

    return setup


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP (delivered when the block ends) around a step that must not be cut."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL what is left of the process group ``proc`` leads, reap ``proc``, wait (bounded) for the group to go."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(SIGTERM_WAIT)
    deadline = time.monotonic() + GROUP_GONE_WAIT
    while _group_has_live_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _group_has_live_members(pgid: int) -> bool:
    """True while a process of group ``pgid`` runs (zombies, dead and waiting for their reaper, do not count)."""
    proc_root = Path("/proc")
    if not proc_root.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
