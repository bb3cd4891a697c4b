"""Run a real ``tritonserver`` on a model repository: find it, set it up, start it, wait, stop it.

Where the binary comes from, in order: ``explicit`` argument, ``TRTREPO_TRITONSERVER`` (path of the binary),
``tritonserver`` on PATH (the NGC image: ``/opt/tritonserver/bin/tritonserver``), then the server bundled in the
``nvidia-pytriton`` wheel. The wheel's layout is not one a server can use directly: its Python backend holds no
stub and its shared libraries sit in ``nvidia_pytriton.libs/``. :func:`find_tritonserver` records where each piece
is, and :class:`TritonServer` assembles a backend directory (symlinks in a cache folder) with the stub built for
the running Python, puts the libraries on ``LD_LIBRARY_PATH`` and the running interpreter's ``sys.path`` on
``PYTHONPATH`` so Python-backend models import the same torch as trtrepo.

Environment:
    TRTREPO_TRITONSERVER: path of the tritonserver binary to use.
    TRTREPO_CACHE_DIR: where the assembled backend directory is kept (default ``~/.cache/trtrepo``).
    TRTREPO_PYTHONPATH: set for the server; trtrepo's generated model.py puts these folders first on sys.path.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from trtrepo import settings
from trtrepo.errors import ServeError

LOGGER = logging.getLogger(__name__)

ENV_BINARY = settings.TRITONSERVER.name
ENV_MODEL_PYTHONPATH = settings.MODEL_PYTHONPATH.name
DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8000
DEFAULT_GRPC_PORT = 8001
DEFAULT_METRICS_PORT = 8002
DEFAULT_STARTUP_TIMEOUT = 120.0
LOG_TAIL_LINES = 15
MAX_LOG_LINE = 400
_ERROR_LINE = re.compile(r"^E\d{4} ")
# Shutdown escalation: tritonserver drains in-flight requests on SIGINT; give it a bounded time to do so.
EXIT_TIMEOUT_SECS = 10
SIGINT_WAIT = EXIT_TIMEOUT_SECS + 5.0
SIGTERM_WAIT = 5.0
# what server_environment sets for the server: a printed command line carries these to be runnable as is
SERVER_ENV_KEYS = ("LD_LIBRARY_PATH", "PYTHONPATH", ENV_MODEL_PYTHONPATH)
INSTALL_HINT = "pip install nvidia-pytriton (bundles tritonserver), set TRTREPO_TRITONSERVER=/path/to/tritonserver, " \
    "or use the NGC image nvcr.io/nvidia/tritonserver:25.10-py3"


# ------------------------------------------------------------------------------------------------- discovery
@dataclass(frozen=True)
class TritonInstall:
    """Where the pieces of one tritonserver installation are.

    Attributes:
        binary: The ``tritonserver`` executable.
        origin: ``explicit``, ``env``, ``path`` or ``pytriton``: how it was found.
        backends: The installation's own backend folder (``<prefix>/backends``), if there is one.
        python_stub: The Python-backend stub matching the running Python, when the installation keeps one stub per
            Python version outside its backend folder (the nvidia-pytriton wheel); None when the backend folder
            already holds its stub (NGC image).
        lib_dirs: Folders to put on ``LD_LIBRARY_PATH``.
    """

    binary: Path
    origin: str
    backends: Path | None = None
    python_stub: Path | None = None
    lib_dirs: tuple[Path, ...] = ()

    @property
    def needs_backend_dir(self) -> bool:
        """True when a backend folder must be assembled (the stub lives apart from the Python backend)."""
        return self.python_stub is not None


def find_tritonserver(explicit: str | Path | None = None) -> TritonInstall:
    """Locate tritonserver: ``explicit``, ``$TRTREPO_TRITONSERVER``, PATH, then the nvidia-pytriton wheel.

    Args:
        explicit: Path of a tritonserver binary (``--tritonserver`` on the command line).

    Returns:
        The installation, with its backend folder, Python stub and library folders resolved.

    Raises:
        ServeError: A named binary does not exist, or no tritonserver is found anywhere.
    """
    for origin, value in (("explicit", explicit), ("env", os.environ.get(ENV_BINARY))):
        if value:
            binary = Path(value).expanduser()
            if not (binary.is_file() and os.access(binary, os.X_OK)):
                where = "--tritonserver" if origin == "explicit" else ENV_BINARY
                raise ServeError(f"{where}: {value} is not an executable file", hint=INSTALL_HINT)
            return _describe(binary.resolve(), origin)
    on_path = shutil.which("tritonserver")
    if on_path:
        return _describe(Path(on_path).resolve(), "path")
    bundled = _pytriton_binary()
    if bundled is not None:
        return _describe(bundled, "pytriton")
    raise ServeError("tritonserver not found (TRTREPO_TRITONSERVER unset, none on PATH, no nvidia-pytriton)",
                     hint=INSTALL_HINT)


def _pytriton_binary() -> Path | None:
    try:
        spec = importlib.util.find_spec("pytriton")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "tritonserver" / "bin" / "tritonserver"
    return binary if binary.is_file() else None


def _describe(binary: Path, origin: str) -> TritonInstall:
    """Read the layout around ``binary``: ``<prefix>/bin/tritonserver`` with ``<prefix>/backends`` beside it."""
    prefix = binary.parent.parent
    backends = prefix / "backends" if (prefix / "backends").is_dir() else None
    stub = None
    stubs = prefix / "python_backend_stubs"
    if stubs.is_dir():
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        candidate = stubs / version / "triton_python_backend_stub"
        if candidate.is_file():
            stub = candidate
        else:
            LOGGER.warning("%s has no Python-backend stub for Python %s (has %s): Python models will not load",
                           stubs, version, ", ".join(sorted(p.name for p in stubs.iterdir())))
    lib_dirs = []
    for candidate_lib in (prefix / "lib", prefix.parent.parent / "nvidia_pytriton.libs"):
        if candidate_lib.is_dir():
            lib_dirs.append(candidate_lib)
    return TritonInstall(binary=binary, origin=origin, backends=backends, python_stub=stub, lib_dirs=tuple(lib_dirs))


def _package_paths() -> list[str]:
    """This interpreter's sys.path without its standard library (the stub brings its own, maybe another patch)."""
    import sysconfig

    stdlib = {str(Path(sysconfig.get_paths()[k]).resolve()) for k in ("stdlib", "platstdlib")}
    out = []
    for entry in sys.path:
        if not entry or not Path(entry).is_dir():
            continue
        resolved = str(Path(entry).resolve())
        in_stdlib = any(resolved == s or resolved.startswith(s + os.sep) for s in stdlib)
        if in_stdlib and "-packages" not in resolved:
            continue
        out.append(resolved)
    return out


def backend_directory(install: TritonInstall, root: Path | None = None) -> Path | None:
    """The ``--backend-directory`` to pass: the installation's own, or one assembled from its pieces.

    The assembled folder holds ``python/`` (libtriton_python.so, triton_python_backend_utils.py and the stub for
    the running Python, all symlinks) and a symlink to every other backend of the installation. It is keyed by the
    installation path and Python version, so it is made once and reused.
    """
    if not install.needs_backend_dir:
        return install.backends
    assert install.backends is not None and install.python_stub is not None
    python_src = install.backends / "python"
    key = hashlib.sha256(f"{install.binary}|{install.python_stub}".encode()).hexdigest()[:12]
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    target = (root or settings.cache_dir()) / "triton_backends" / f"{python}-{key}"
    wanted = {
        target / "python" / "libtriton_python.so": python_src / "libtriton_python.so",
        target / "python" / "triton_python_backend_utils.py": python_src / "triton_python_backend_utils.py",
        target / "python" / "triton_python_backend_stub": install.python_stub,
    }
    for entry in install.backends.iterdir():
        if entry.name != "python":
            wanted[target / entry.name] = entry
    for link, source in wanted.items():
        if link.is_symlink() and Path(os.readlink(link)) == source:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        tmp = link.with_name(f".{link.name}.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(source)
        os.replace(tmp, link)  # atomic: two servers starting at once never see a half-made folder
    return target


def server_environment(install: TritonInstall, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for tritonserver: its libraries, and this interpreter's packages for Python models."""
    env = dict(os.environ if base is None else base)
    libs = [str(p) for p in install.lib_dirs]
    if env.get("LD_LIBRARY_PATH"):
        libs.append(env["LD_LIBRARY_PATH"])
    if libs:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
    # The stub embeds its own libpython and initializes it without reading PYTHONPATH (seen with 2.51): it finds
    # only its own stdlib and dist-packages. The generated model.py puts TRTREPO_PYTHONPATH in front of sys.path
    # before importing torch, so it runs the torch (and numpy) trtrepo itself runs with. PYTHONPATH is set too,
    # for stubs that do honor it.
    packages = _package_paths()
    if env.get(ENV_MODEL_PYTHONPATH):
        packages.insert(0, env[ENV_MODEL_PYTHONPATH])
    env[ENV_MODEL_PYTHONPATH] = os.pathsep.join(dict.fromkeys(packages))
    if env.get("PYTHONPATH"):
        packages.insert(0, env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(packages))
    return env


# ------------------------------------------------------------------------------------------- plugin libraries
def repository_plugin_libraries(repository: Path) -> list[Path]:
    """The TensorRT plugin libraries of ``repository`` (:func:`trtrepo.repository.plugins.served_plugin_libraries`)."""
    from trtrepo.repository.plugins import served_plugin_libraries
    from trtrepo.repository.reader import read_repository

    return served_plugin_libraries(read_repository(repository))


# ---------------------------------------------------------------------------------------------------- server
def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


@dataclass
class TritonServer:
    """A tritonserver process serving ``repository``; a context manager that waits for READY and stops it.

    Port 0 picks a free port. ``startup_timeout`` bounds the wait for the server and every model to be ready; the
    log is captured to ``log_path`` (a temporary file if None) and its last lines end every ServeError.

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
    command: list[str] = field(default_factory=list, init=False)
    env: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _log_file: object = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.repository = Path(self.repository).resolve()
        if not self.repository.is_dir():
            raise ServeError(f"repository {self.repository} does not exist", hint="run trtrepo build model.yaml first")
        self.install = find_tritonserver(self.tritonserver)
        self.http_port = self.http_port or free_port(self.host)
        self.grpc_port = self.grpc_port or free_port(self.host)
        self.metrics_port = self.metrics_port or free_port(self.host)
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="trtrepo-tritonserver-", suffix=".log")
            os.close(fd)
            self.log_path = name
        self.log_path = Path(self.log_path)
        self.command = self._build_command()
        self.env = server_environment(self.install)

    # -- public API
    @property
    def http_url(self) -> str:
        """``host:port`` of the HTTP endpoint (tritonclient.http form)."""
        return f"{_client_host(self.host)}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        """``host:port`` of the gRPC endpoint (tritonclient.grpc form)."""
        return f"{_client_host(self.host)}:{self.grpc_port}"

    @property
    def command_line(self) -> str:
        """The command as one shell line, with the environment it needs: runs as is in a shell."""
        env = [f"{k}={shlex.quote(self.env[k])}" for k in SERVER_ENV_KEYS if self.env.get(k)]
        return " ".join([*env, *(shlex.quote(c) for c in self.command)])

    def is_alive(self) -> bool:
        """True while the server process runs."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> TritonServer:
        """Start the process and wait until the server and all its models are ready.

        Raises:
            ServeError: The process exited, or did not become ready within ``startup_timeout`` (the message holds
                the log's last lines and which models are not ready).
        """
        LOGGER.info("starting: %s", self.command_line)
        assert self.log_path is not None  # set in __post_init__
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop())
        try:
            self.process = subprocess.Popen(self.command, stdout=self._log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
        except OSError as exc:
            self._close_log()
            raise ServeError(f"cannot run {self.install.binary}: {exc}", hint=INSTALL_HINT) from None
        try:
            self.wait_ready(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll ``/v2/health/ready`` (true only once every model is READY) until ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_alive():
                code = self.process.returncode if self.process is not None else None
                raise ServeError(f"tritonserver exited with code {code} during startup{self._models_state()}"
                                 f"{self.log_tail()}", hint=f"log: {self.log_path}")
            if self._get("/v2/health/ready") == 200:
                return
            if time.monotonic() > deadline:
                raise ServeError(f"tritonserver not ready after {timeout:.0f} s{self._models_state()}"
                                 f"{self.log_tail()}", hint=f"log: {self.log_path}; raise startup_timeout if the "
                                 "models are just slow to load")
            time.sleep(0.2)

    def check_alive(self) -> None:
        """Raise ServeError (with the log tail) if the server has died."""
        if not self.is_alive():
            code = self.process.returncode if self.process is not None else None
            raise ServeError(f"tritonserver died (exit code {code}){self.log_tail()}", hint=f"log: {self.log_path}")

    def stop(self) -> int | None:
        """Stop the server: SIGINT (drains requests), then SIGTERM, then SIGKILL of its process group."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            for sig, wait in ((signal.SIGINT, SIGINT_WAIT), (signal.SIGTERM, SIGTERM_WAIT)):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                try:
                    proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    LOGGER.warning("tritonserver (pid %d) still running after %s", proc.pid, sig.name)
            else:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the group we created: the server and its Python stubs
                proc.wait(SIGTERM_WAIT)
        self._close_log()
        return proc.returncode

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
    def _build_command(self) -> list[str]:
        cmd = [
            str(self.install.binary),
            f"--model-repository={self.repository}",
            f"--http-address={self.host}", f"--http-port={self.http_port}",
            f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}",
            f"--exit-timeout-secs={EXIT_TIMEOUT_SECS}",
            "--strict-readiness=true",
        ]
        backends = backend_directory(self.install)
        if backends is not None:
            cmd.append(f"--backend-directory={backends}")
        from trtrepo.repository.plugins import plugin_backend_config

        cmd += plugin_backend_config(repository_plugin_libraries(Path(self.repository)))
        cmd += list(self.extra_args)
        return cmd

    def _get(self, route: str, data: bytes | None = None) -> int | None:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}{route}", data=data, timeout=2.0) as resp:
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
               if m.get("state") != "READY"]
        return f"; not ready: {', '.join(bad)}" if bad else ""

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
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


def serve_forever(repository: str | Path, *, host: str = DEFAULT_HOST, http_port: int = DEFAULT_HTTP_PORT,
                  grpc_port: int = DEFAULT_GRPC_PORT, metrics_port: int = DEFAULT_METRICS_PORT,
                  tritonserver: str | Path | None = None, print_only: bool = False,
                  echo: Callable[[str], None] = print) -> int:
    """``trtrepo serve``: start tritonserver on ``repository`` and run until Ctrl-C or until it exits.

    Args:
        repository: The model repository folder.
        host: Address to bind (127.0.0.1 unless told otherwise).
        http_port: HTTP port (0 = a free one).
        grpc_port: gRPC port (0 = a free one).
        metrics_port: Metrics port (0 = a free one).
        tritonserver: Explicit tritonserver binary.
        print_only: Print the command line (with the environment it needs) and exit without starting.
        echo: Where the one-line messages go.

    Returns:
        0 after a clean Ctrl-C shutdown, the server's exit code if it exits by itself.

    Raises:
        ServeError: The server is not found or does not become ready.
    """
    server = TritonServer(repository, host=host, http_port=http_port, grpc_port=grpc_port,
                          metrics_port=metrics_port, tritonserver=tritonserver,
                          log_path=Path(tempfile.gettempdir()) / f"trtrepo-tritonserver-{os.getpid()}.log",
                          startup_timeout=DEFAULT_STARTUP_TIMEOUT)
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
    except KeyboardInterrupt:
        echo("stopping tritonserver ...")
        server.stop()
        return 0
