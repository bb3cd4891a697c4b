"""Stop signals as exceptions: SIGTERM (``timeout``, ``docker stop``, systemd, CI), SIGHUP and SIGINT unwind the
stack like Ctrl-C does, so every ``with`` block and ``finally`` clause (a ``TritonServer``, a staging folder)
stops or removes what it started before the command exits with 128 + the signal number (143, 129, 130).

The CLI commands that start processes (serve, check) run inside :func:`stop_on_signals`; a bottom-layer module so
that the CLI and every stage can use it without importing each other.

Python's default SIGTERM action ends the process at once, without running any clean-up: a server started in a
session of its own (so the terminal's Ctrl-C does not cut its drain short) would outlive the command.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

LOGGER = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(SystemExit):
    """A stop signal arrived.

    A SystemExit (with 128 + the signal number as its code): ``except Exception`` does not swallow it, an event
    loop that runs callbacks for a client (gevent's hub, under tritonclient.http) hands it to the main greenlet
    instead of printing it and carrying on, and should it escape every handler Python still exits with its code.

    Attributes:
        signum: The signal number.
        exit_code: 128 + ``signum``, the shell's convention for "ended by this signal".
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(self.exit_code)

    def __str__(self) -> str:
        return f"interrupted by {self.signal_name}"

    @property
    def signal_name(self) -> str:
        """``SIGTERM``, ``SIGINT``, ..."""
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals(signals: Sequence[signal.Signals] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, each of ``signals`` raises :class:`Interrupted`; the previous handlers come back after.

    Only the main thread can install handlers: elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        LOGGER.debug("stop_on_signals: not the main thread, signals keep their handlers")
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, handler)
