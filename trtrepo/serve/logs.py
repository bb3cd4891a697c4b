"""Where runs keep what they leave behind: server logs and check's default report, under the cache, per repository.

A repository is immutable once built (it may be a read-only mount), and the temp folder is no place for logs that
pile up, so each repository gets a run folder ``<cache>/runs/<name>-<key>/`` (``key`` from its absolute path):
``logs/tritonserver-<time>-<pid>-<n>.log`` (the newest :data:`LOG_KEEP` kept) and ``parity-report.json`` (the
latest ``trtrepo check`` without ``--report``).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import time
from pathlib import Path
from typing import IO

from trtrepo import settings
from trtrepo.errors import ServeError

LOGGER = logging.getLogger(__name__)

RUNS_DIRNAME = "runs"
LOGS_DIRNAME = "logs"
LOG_KEEP = 20
LOG_PREFIX = "tritonserver-"
REPORT_FILENAME = "parity-report.json"
_COUNTER = itertools.count(1)  # log names made by this process: two servers started in one second get two files


def run_folder(repository: str | Path) -> Path:
    """``<cache>/runs/<repository name>-<key>/`` for the repository at ``repository`` (not created here)."""
    root = Path(repository).resolve()
    key = hashlib.sha256(str(root).encode()).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", root.name) or "repository"
    return settings.cache_dir() / RUNS_DIRNAME / f"{name}-{key}"


def default_report_path(repository: str | Path) -> Path:
    """Where ``trtrepo check`` writes its report when not told: the repository's run folder, never the repository."""
    return run_folder(repository) / REPORT_FILENAME


def new_log_path(repository: str | Path) -> Path:
    """A fresh name for a server log in the repository's run folder; nothing is created (see :func:`open_log`)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return run_folder(repository) / LOGS_DIRNAME / f"{LOG_PREFIX}{stamp}-{os.getpid()}-{next(_COUNTER)}.log"


def open_log(path: Path, keep: int = LOG_KEEP) -> IO[bytes]:
    """Open ``path`` for appending, its folder created; older server logs there beyond ``keep`` are removed.

    Raises:
        ServeError: The folder or the file cannot be written (names it).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _prune(path.parent, max(keep - 1, 0), spare=path)
        return open(path, "ab")  # the caller closes it
    except OSError as exc:
        raise ServeError(f"cannot write the server log {path}: {exc.strerror or exc}",
                         hint=f"point {settings.CACHE_DIR.name} at a writable folder") from None


def _prune(folder: Path, keep: int, spare: Path) -> None:
    """Remove all but the newest ``keep`` server logs of ``folder`` (``spare`` is never removed)."""
    logs = []
    for path in folder.glob(f"{LOG_PREFIX}*.log"):
        if path == spare:
            continue
        try:
            logs.append((path.stat().st_mtime, path))
        except OSError:
            continue
    for _, path in sorted(logs, reverse=True)[keep:]:
        try:
            path.unlink()
        except OSError as exc:  # another run's log, or a folder we may not write: never fail a start for it
            LOGGER.debug("cannot remove %s: %s", path, exc)
