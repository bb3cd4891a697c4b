"""Where runs keep what they leave behind: server logs and check's default report, under the cache, per repository.

A repository is immutable once built (it may be a read-only mount), and the temp folder is no place for logs that
pile up, so each repository gets a run folder ``<cache>/runs/<name>-<key>/`` (``key`` from its absolute path):
``logs/tritonserver-<time>-<random>.log`` (the newest :data:`LOG_KEEP` kept) and ``parity-report.json`` (the
latest ``trtrepo check`` without ``--report``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from pathlib import Path

from trtrepo import settings

LOGGER = logging.getLogger(__name__)

RUNS_DIRNAME = "runs"
LOGS_DIRNAME = "logs"
LOG_KEEP = 20
LOG_PREFIX = "tritonserver-"
REPORT_FILENAME = "parity-report.json"


def run_folder(repository: str | Path) -> Path:
    """``<cache>/runs/<repository name>-<key>/`` for the repository at ``repository`` (not created here)."""
    root = Path(repository).resolve()
    key = hashlib.sha256(str(root).encode()).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", root.name) or "repository"
    return settings.cache_dir() / RUNS_DIRNAME / f"{name}-{key}"


def default_report_path(repository: str | Path) -> Path:
    """Where ``trtrepo check`` writes its report when not told: the repository's run folder, never the repository."""
    return run_folder(repository) / REPORT_FILENAME


def new_log_path(repository: str | Path, keep: int = LOG_KEEP) -> Path:
    """A new, empty server log file in the repository's run folder; older logs beyond ``keep`` are removed.

    Falls back to a folder in the temp folder (with a warning) when the cache cannot be written.
    """
    folder = run_folder(repository) / LOGS_DIRNAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fallback = Path(tempfile.gettempdir()) / f"trtrepo-logs-{os.getuid()}"
        LOGGER.warning("cannot write %s (%s): server logs go to %s", folder, exc.strerror or exc, fallback)
        folder = fallback
        folder.mkdir(parents=True, exist_ok=True)
    _prune(folder, max(keep - 1, 0))
    fd, name = tempfile.mkstemp(prefix=f"{LOG_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".log", dir=folder)
    os.close(fd)
    return Path(name)


def _prune(folder: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` server logs of ``folder``."""
    logs = []
    for path in folder.glob(f"{LOG_PREFIX}*.log"):
        try:
            logs.append((path.stat().st_mtime, path))
        except OSError:
            continue
    for _, path in sorted(logs, reverse=True)[keep:]:
        try:
            path.unlink()
        except OSError as exc:  # another run's log, or a folder we may not write: never fail a start for it
            LOGGER.debug("cannot remove %s: %s", path, exc)
