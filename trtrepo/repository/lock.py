"""One writer at a time per repository: an exclusive ``flock`` on ``.<repository>.lock`` beside the repository.

Two builds (of two specs that share a repository, say) may run at the same time; each holds the lock from the
moment it reads the repository's manifest until its new repository is in place, so the second one merges with
what the first one wrote instead of overwriting it. The lock file holds the holder's pid, command line and start
time, for the waiting build's message. ``flock`` is released by the kernel when its holder dies, so a killed build
never leaves a lock that blocks the next one; and while a build holds the lock, every staging or backup folder
of that repository belongs to a build that is gone (see :mod:`trtrepo.repository.writer`).

The holder removes the lock file when it is done. A waiting build that got the lock on a file already removed
(the holder unlinked it between the waiter's ``open`` and its ``flock``) sees that the path no longer names the
file it locked and tries again, so two builds never both hold "the" lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from trtrepo import settings
from trtrepo.contracts import Progress
from trtrepo.errors import BuildError

LOGGER = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
POLL_SECONDS = 0.1
_COMMAND_CHARS = 200


@dataclass(frozen=True)
class LockHolder:
    """Who holds a repository lock: read back from the lock file for the waiting build's message."""

    pid: int | None
    command: str
    since: str

    def describe(self) -> str:
        """``pid 123 (trtrepo build a.yaml) since 2026-12-01 10:00:00``."""
        if self.pid is None:
            return "another process (it has not said who it is yet)"
        return f"pid {self.pid} ({self.command}) since {self.since}"


def lock_path(repository: Path) -> Path:
    """``<parent>/.<name>.lock``: beside the repository, since the repository folder itself is swapped."""
    return repository.parent / f".{repository.name}{LOCK_SUFFIX}"


def is_locked(repository: Path) -> bool:
    """Whether another process holds the repository's lock now (a read-only probe: no file is created)."""
    try:
        fd = os.open(lock_path(repository), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # no lock file: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own shared lock
    return False


def read_holder(path: Path) -> LockHolder:
    """The holder a lock file names (pid None while the holder has not written it yet)."""
    try:
        raw = json.loads(path.read_text())
        return LockHolder(pid=int(raw["pid"]), command=str(raw.get("command", "?")), since=str(raw.get("since", "?")))
    except (OSError, ValueError, KeyError, TypeError):
        return LockHolder(pid=None, command="", since="")


def this_command() -> str:
    """This process's command line, shortened for a message (``trtrepo build a.yaml --out r``)."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    argv = ["trtrepo" if program in ("__main__.py", "trtrepo") else program, *sys.argv[1:]]
    text = shlex.join(argv)
    return text if len(text) <= _COMMAND_CHARS else text[: _COMMAND_CHARS - 1] + "…"


@contextlib.contextmanager
def repository_lock(repository: Path, *, where: str = "repository", timeout: float | None = None,
                    progress: Progress = LOGGER.info) -> Iterator[LockHolder]:
    """Hold the repository's lock for the ``with`` block; wait for another holder, at most ``timeout`` seconds.

    Args:
        repository: The repository folder (its parent must exist).
        where: How messages name the repository (``repository`` or ``--out``).
        timeout: Seconds to wait for another holder; None = :func:`trtrepo.settings.lock_timeout`.
        progress: Told once, with the holder, when the lock is taken by someone else.

    Yields:
        This process as the holder.

    Raises:
        BuildError: Another build held the lock for longer than ``timeout``, or the lock file cannot be created.
    """
    wait = settings.lock_timeout() if timeout is None else timeout
    path = lock_path(repository)
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise BuildError(f"{where}: cannot create the lock file {path}: {exc.strerror}",
                             hint="the folder that holds the repository must be writable") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise BuildError(f"{where}: cannot lock {path}: {exc.strerror}") from None
            holder = read_holder(path)
            if time.monotonic() >= deadline:
                raise BuildError(f"{where}: {repository} is being written by {holder.describe()}; gave up after "
                                 f"{wait:g} s",
                                 hint=f"wait for it to finish, or set {settings.LOCK_TIMEOUT.name} to wait longer") \
                    from None
            if not told and holder.pid is not None:
                progress(f"write: waiting for {repository}: it is being written by {holder.describe()}")
                told = True
            time.sleep(POLL_SECONDS)
            continue
        if _still_at(path, fd):
            break
        os.close(fd)  # the previous holder removed the file after we opened it: lock the one at the path now
    me = LockHolder(pid=os.getpid(), command=this_command(), since=datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
    try:
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps({"pid": me.pid, "command": me.command, "since": me.since}) + "\n").encode())
        yield me
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _still_at(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (at_path.st_dev, at_path.st_ino) == (mine.st_dev, mine.st_ino)
