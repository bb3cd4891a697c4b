"""Where tritonserver comes from and what it needs around it: the one discovery that serve, check, bench and
``trtrepo doctor`` use (so doctor can never say "ok" where serve fails).

Where the binary comes from, in order: ``explicit`` argument, ``TRTREPO_TRITONSERVER`` (path of the binary),
``tritonserver`` on PATH (the NGC image puts ``/opt/tritonserver/bin`` there), the server bundled in the
``nvidia-pytriton`` wheel, then ``/opt/tritonserver/bin/tritonserver``. The wheel's layout is not one a server can
use directly: its Python backend holds no stub and its shared libraries sit in ``nvidia_pytriton.libs/``.
:func:`find_tritonserver` records where each piece is, :func:`backend_directory` assembles a backend folder
(symlinks in the cache) with the stub built for the running Python, and :func:`server_environment` puts the
libraries on ``LD_LIBRARY_PATH`` and this interpreter's packages where Python-backend models import them.

Environment:
    TRTREPO_TRITONSERVER: path of the tritonserver binary to use.
    TRTREPO_CACHE_DIR: where the assembled backend folder is kept (default ``~/.cache/trtrepo``).
    TRTREPO_PYTHONPATH: set for the server; trtrepo's generated model.py puts these folders first on sys.path.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trtrepo import settings
from trtrepo.errors import ServeError

LOGGER = logging.getLogger(__name__)

ENV_BINARY = settings.TRITONSERVER.name
ENV_MODEL_PYTHONPATH = settings.MODEL_PYTHONPATH.name
NGC_BINARY = Path("/opt/tritonserver/bin/tritonserver")
# what server_environment sets for the server: a printed command line carries these to be runnable as is
SERVER_ENV_KEYS = ("LD_LIBRARY_PATH", "PYTHONPATH", ENV_MODEL_PYTHONPATH)
INSTALL_HINT = "pip install nvidia-pytriton (bundles tritonserver), set TRTREPO_TRITONSERVER=/path/to/tritonserver, " \
    "or use the NGC image nvcr.io/nvidia/tritonserver:25.10-py3"


@dataclass(frozen=True)
class TritonInstall:
    """Where the pieces of one tritonserver installation are.

    Attributes:
        binary: The ``tritonserver`` executable.
        origin: ``explicit``, ``env``, ``path``, ``pytriton`` or ``ngc``: how it was found.
        backends: The installation's own backend folder (``<prefix>/backends``), if there is one.
        python_stub: The Python-backend stub matching the running Python, when the installation keeps one stub per
            Python version outside its backend folder (the nvidia-pytriton wheel); None when the backend folder
            already holds its stub (NGC image) or when no stub matches this Python.
        lib_dirs: Folders to put on ``LD_LIBRARY_PATH``.
        stub_problem: Why Python-backend models will not load with this installation ('' when they will).
    """

    binary: Path
    origin: str
    backends: Path | None = None
    python_stub: Path | None = None
    lib_dirs: tuple[Path, ...] = ()
    stub_problem: str = ""

    @property
    def needs_backend_dir(self) -> bool:
        """True when a backend folder must be assembled (the stub lives apart from the Python backend)."""
        return self.python_stub is not None

    @property
    def origin_text(self) -> str:
        """How the binary was found, in words (for ``trtrepo doctor``)."""
        return {"explicit": "--tritonserver", "env": ENV_BINARY, "path": "PATH", "pytriton": "nvidia-pytriton",
                "ngc": str(NGC_BINARY.parent.parent)}.get(self.origin, self.origin)


def find_tritonserver(explicit: str | Path | None = None) -> TritonInstall:
    """Locate tritonserver: ``explicit``, ``$TRTREPO_TRITONSERVER``, PATH, the nvidia-pytriton wheel, /opt.

    Args:
        explicit: Path of a tritonserver binary (``--tritonserver`` on the command line).

    Returns:
        The installation, with its backend folder, Python stub and library folders resolved.

    Raises:
        ServeError: A named binary is not an executable file, or no tritonserver is found anywhere.
    """
    for origin, value in (("explicit", explicit), ("env", settings.TRITONSERVER.raw())):
        if value:
            binary = Path(value).expanduser()
            if not _is_executable(binary):
                where = "--tritonserver" if origin == "explicit" else ENV_BINARY
                raise ServeError(f"{where}: {value} is not an executable file", hint=INSTALL_HINT)
            return _describe(binary.resolve(), origin)
    on_path = shutil.which("tritonserver")
    if on_path:
        return _describe(Path(on_path).resolve(), "path")
    bundled = _pytriton_binary()
    if bundled is not None:
        return _describe(bundled, "pytriton")
    if _is_executable(NGC_BINARY):
        return _describe(NGC_BINARY.resolve(), "ngc")
    raise ServeError("tritonserver not found (TRTREPO_TRITONSERVER unset, none on PATH, no nvidia-pytriton, "
                     f"no {NGC_BINARY})", hint=INSTALL_HINT)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _pytriton_binary() -> Path | None:
    try:
        spec = importlib.util.find_spec("pytriton")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / "tritonserver" / "bin" / "tritonserver"
        if _is_executable(binary):
            return binary.resolve()
    return None


def _describe(binary: Path, origin: str) -> TritonInstall:
    """Read the layout around ``binary``: ``<prefix>/bin/tritonserver`` with ``<prefix>/backends`` beside it."""
    prefix = binary.parent.parent
    backends = prefix / "backends" if (prefix / "backends").is_dir() else None
    stub = None
    problem = ""
    stubs = prefix / "python_backend_stubs"
    if stubs.is_dir():
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        candidate = stubs / version / "triton_python_backend_stub"
        if candidate.is_file():
            stub = candidate
        else:
            problem = f"{stubs} has no Python-backend stub for Python {version} (has " \
                      f"{', '.join(sorted(p.name for p in stubs.iterdir())) or 'none'}): Python models will not load"
            LOGGER.warning("%s", problem)
    elif backends is not None and not (backends / "python" / "triton_python_backend_stub").is_file():
        problem = f"{backends / 'python'} has no triton_python_backend_stub: Python models will not load"
    lib_dirs = [d for d in (prefix / "lib", prefix.parent.parent / "nvidia_pytriton.libs") if d.is_dir()]
    return TritonInstall(binary=binary, origin=origin, backends=backends, python_stub=stub, lib_dirs=tuple(lib_dirs),
                         stub_problem=problem)


def _package_paths() -> list[str]:
    """This interpreter's sys.path without its standard library (the stub brings its own, maybe another patch)."""
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

    Args:
        install: The installation (:func:`find_tritonserver`).
        root: Where to assemble it (default: the cache, :func:`trtrepo.settings.cache_dir`).

    Raises:
        ServeError: The folder cannot be written (names it).
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
    try:
        for link, source in wanted.items():
            if link.is_symlink() and Path(os.readlink(link)) == source:
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            tmp = link.with_name(f".{link.name}.{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(source)
            os.replace(tmp, link)  # atomic: two servers starting at once never see a half-made folder
    except OSError as exc:
        raise ServeError(f"cannot assemble the tritonserver backend folder {target}: {exc.strerror or exc}",
                         hint=f"make {settings.CACHE_DIR.name} point at a writable folder") from None
    return target


def server_environment(install: TritonInstall, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for tritonserver: its libraries, and this interpreter's packages for Python models.

    Args:
        install: The installation (:func:`find_tritonserver`).
        base: The environment to start from (default: this process's).
    """
    env = dict(os.environ if base is None else base)
    libs = [str(p) for p in install.lib_dirs]
    if env.get("LD_LIBRARY_PATH"):
        libs.append(env["LD_LIBRARY_PATH"])
    if libs:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libs)
    # The stub embeds its own libpython and initializes it isolated (seen with 2.51: sys.flags.isolated == 1), so
    # it reads no PYTHON* variable and finds only its own stdlib and dist-packages. The generated model.py puts
    # TRTREPO_PYTHONPATH in front of sys.path before importing torch, so it runs the torch (and numpy) trtrepo
    # itself runs with. PYTHONPATH is set too, for stubs that do honor it.
    packages = _package_paths()
    if env.get(ENV_MODEL_PYTHONPATH):
        packages.insert(0, env[ENV_MODEL_PYTHONPATH])
    env[ENV_MODEL_PYTHONPATH] = os.pathsep.join(dict.fromkeys(packages))
    if env.get("PYTHONPATH"):
        packages.insert(0, env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(packages))
    return env
