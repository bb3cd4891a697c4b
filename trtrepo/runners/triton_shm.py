"""Triton's same-host protocols: request tensors in system (POSIX) or CUDA shared memory instead of the request body.

One :class:`SharedMemoryTransport` belongs to one :class:`trtrepo.runners.triton_client.TritonClient` (one thread):
it owns one region per input and per output tensor, registers each with the server on first use, reuses it while it is
large enough and replaces it (unregister, free, allocate, register) when a request needs more. An output region
starts at :data:`MIN_OUTPUT_BYTES` or the request's input size, whichever is larger; when the server answers that
it is too small ("... should be at least N bytes"), it grows to N and the request is sent once more.

Nothing is left behind: :meth:`SharedMemoryTransport.close` (the client's ``close``, so every ``with`` block and
Ctrl-C/SIGTERM through :func:`trtrepo._signals.stop_on_signals`) unregisters every region on the server and
unlinks/frees it here, and an ``atexit`` hook closes transports a caller forgot. Regions are named
``trtrepo-shm-<pid>-...`` (system segments: ``/dev/shm/trtrepo-shm-<pid>-...``). After SIGKILL, which no clean-up
survives, Python's multiprocessing resource tracker usually unlinks the segments; whatever it leaves, and the
server's registrations of that process, the next transport removes (its first region creation sweeps both).

System shared memory goes through ``tritonclient.utils.shared_memory``, CUDA shared memory through
``tritonclient.utils.cuda_shared_memory`` (CUDA IPC handles; needs cuda-python and a GPU, both probed by
:func:`require_shared_memory` before any work starts). Either needs the server on the same host.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trtrepo.errors import MissingDependencyError, ServeError, SpecError

LOGGER = logging.getLogger(__name__)

MODES = ("none", "system", "cuda")
SEGMENT_PREFIX = "trtrepo-shm"
SHM_DIR = Path("/dev/shm")
MIN_OUTPUT_BYTES = 64 * 1024
CLEANUP_TIMEOUT = 5.0  # seconds an unregistration may wait for an interrupted request, or a fresh connection
CUDA_DEVICE = 0  # the client-side device of CUDA regions; the server opens them through CUDA IPC
CUDA_HINT = "pip install 'tritonclient[cuda]' (cuda-python) on a machine with an NVIDIA GPU, or use " \
            "--shared-memory system"

_TOO_SMALL = re.compile(r"should be at least (\d+) bytes")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_COUNTER = itertools.count()
_LIVE: weakref.WeakSet[SharedMemoryTransport] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()

SendFn = Callable[[list[Any], list[Any]], tuple[Any, float]]


def check_mode(mode: str, flag: str = "--shared-memory") -> str:
    """``mode`` if it is one of :data:`MODES`, else a SpecError naming ``flag`` and the allowed values."""
    if mode not in MODES:
        raise SpecError(f"{flag} {mode!r}: must be one of {', '.join(MODES)}")
    return mode


def cuda_unavailable() -> str | None:
    """Why CUDA shared memory cannot be used here (no cuda-python, no GPU), or None when it can."""
    try:
        import cuda.bindings.runtime as cudart
        import tritonclient.utils.cuda_shared_memory  # noqa: F401  (imports cuda-python itself)
    except Exception as exc:  # ImportError, or a CUDA library that fails to load
        return f"tritonclient's CUDA shared memory cannot be imported ({_one_line(exc)})"
    try:
        err, count = cudart.cudaGetDeviceCount()
    except Exception as exc:
        return f"cudaGetDeviceCount failed ({exc})"
    if int(err) != 0:
        return f"no usable CUDA device (cudaGetDeviceCount: {getattr(err, 'name', err)})"
    if int(count) < 1:
        return "no CUDA device visible"
    return None


def require_shared_memory(mode: str, what: str, flag: str = "--shared-memory") -> str:
    """Validate ``mode`` and probe what it needs, before any work starts.

    Raises:
        SpecError: Not one of :data:`MODES`.
        MissingDependencyError: ``cuda`` without cuda-python or a GPU; any mode but ``none`` without tritonclient.
    """
    check_mode(mode, flag)
    if mode == "none":
        return mode
    from trtrepo import deps

    deps.require("tritonclient", what)
    if mode == "cuda":
        reason = cuda_unavailable()
        if reason is not None:
            raise MissingDependencyError(f"{flag} cuda: {what} needs an NVIDIA GPU and cuda-python: {reason}",
                                         hint=CUDA_HINT)
    return mode


@dataclass
class _Region:
    """One registered region: the server's name for it, its size, the tritonclient handle."""

    name: str
    byte_size: int
    handle: Any


class SharedMemoryTransport:
    """Inputs and outputs of one client's requests through shared memory regions (``system`` or ``cuda``).

    Args:
        mode: ``system`` or ``cuda``.
        client: The tritonclient ``InferenceServerClient`` (HTTP or gRPC) the regions are registered with.
        url: Its ``host:port`` (a fresh client unregisters when that one's connection broke mid-call).
        module: ``tritonclient.http`` or ``tritonclient.grpc`` (for ``InferInput``/``InferRequestedOutput``).
        protocol: ``http`` or ``grpc``.
        timeout: Seconds per registration call (gRPC).
        min_output_bytes: First size of each output region.
    """

    def __init__(self, mode: str, client: Any, module: Any, protocol: str, url: str, timeout: float,
                 min_output_bytes: int = MIN_OUTPUT_BYTES) -> None:
        if mode not in ("system", "cuda"):
            raise ValueError(f"shared memory mode must be system or cuda, got {mode!r}")
        self.mode = mode
        self.protocol = protocol
        self.url = url
        self.timeout = timeout
        self.min_output_bytes = max(1, int(min_output_bytes))
        # Outputs are mostly no larger than the inputs: sizing them so avoids a rejected first request.
        self.size_outputs_like_inputs = True
        self._client = client
        self._module = module
        self._inputs: dict[str, _Region] = {}
        self._outputs: dict[str, _Region] = {}
        # Names being created or registered: a stop signal between tritonclient's calls and the table entry
        # must not leave a segment or a registration behind (close() removes these by name).
        self._pending: set[str] = set()
        self._swept = False
        self._tag = f"{SEGMENT_PREFIX}-{os.getpid()}-{next(_COUNTER)}"
        if mode == "system":
            import tritonclient.utils.shared_memory as shm

            self._shm: Any = shm
            remove_stale_segments()
        else:
            import tritonclient.utils.cuda_shared_memory as cudashm

            self._shm = cudashm
        with _LIVE_LOCK:
            _LIVE.add(self)

    @property
    def region_names(self) -> list[str]:
        """Names of the regions registered now (inputs, then outputs)."""
        return [r.name for r in (*self._inputs.values(), *self._outputs.values())]

    # -- one request
    def infer(self, model: str, inputs: Mapping[str, NDArray[Any]], outputs: Sequence[str],
              datatypes: Mapping[str, str], send: SendFn) -> tuple[dict[str, NDArray[Any]], float]:
        """Write ``inputs`` into their regions, send the request through ``send``, read the outputs back.

        Args:
            model: Model name (for messages).
            inputs: Input name → array.
            outputs: Output names.
            datatypes: Input name → Triton datatype.
            send: ``send(infer_inputs, requested_outputs) -> (tritonclient result, seconds)``; raises
                RequestFailed/ServeError like :meth:`TritonClient.infer`.

        Returns:
            (output name → array copied out of its region, seconds from the first input write to the last output
            read: what the protocol costs the client is part of the request).
        """
        from trtrepo.runners.triton_client import RequestFailed

        started = time.perf_counter()
        request = self._write_inputs(inputs, datatypes)
        floor = self.min_output_bytes
        if self.size_outputs_like_inputs:
            floor = max(floor, sum(int(a.nbytes) for a in inputs.values()))
        for name in outputs:
            self._ensure(self._outputs, name, floor, "out")
        for attempt in range(2):
            wanted = self._requested(outputs)
            try:
                result, _ = send(request, wanted)
                break
            except RequestFailed as exc:
                grow = _too_small(str(exc))
                if attempt or grow is None:
                    raise
                # The server names the output it could not fit; grow every output that might be it.
                named = [n for n in outputs if f"'{n}'" in str(exc)] or list(outputs)
                for name in named:
                    self._ensure(self._outputs, name, grow, "out")
        values = {name: self._read_output(result, name, model) for name in outputs}
        return values, time.perf_counter() - started

    def _write_inputs(self, inputs: Mapping[str, NDArray[Any]], datatypes: Mapping[str, str]) -> list[Any]:
        request = []
        for name, array in inputs.items():
            data = np.ascontiguousarray(array)
            region = self._ensure(self._inputs, name, int(data.nbytes), "in")
            if data.nbytes:
                try:  # the same call for system and CUDA regions (the CUDA one copies host to device)
                    self._shm.set_shared_memory_region(region.handle, [data])
                except Exception as exc:
                    raise ServeError(f"{self.mode} shared memory: cannot write input {name!r} into region "
                                     f"{region.name!r}: {_one_line(exc)}") from None
            item = self._module.InferInput(name, list(data.shape), datatypes[name])
            item.set_shared_memory(region.name, int(data.nbytes))
            request.append(item)
        return request

    def _requested(self, outputs: Sequence[str]) -> list[Any]:
        wanted = []
        for name in outputs:
            region = self._outputs[name]
            item = self._module.InferRequestedOutput(name)
            item.set_shared_memory(region.name, region.byte_size)
            wanted.append(item)
        return wanted

    def _read_output(self, result: Any, name: str, model: str) -> NDArray[Any]:
        from tritonclient.utils import triton_to_np_dtype

        from trtrepo.runners.triton_client import RequestFailed

        header = result.get_output(name)
        if header is None:
            raise RequestFailed(f"response of {model!r} has no output {name!r}")
        if isinstance(header, dict):  # HTTP: JSON
            datatype, shape = str(header.get("datatype")), [int(d) for d in header.get("shape", [])]
        else:  # gRPC: InferOutputTensor
            datatype, shape = str(header.datatype), [int(d) for d in header.shape]
        bf16 = datatype == "BF16"
        np_dtype = np.dtype(np.uint16) if bf16 else np.dtype(triton_to_np_dtype(datatype))
        need = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
        region = self._outputs[name]
        if need > region.byte_size:
            raise RequestFailed(f"output {name!r} of {model!r}: {need} bytes do not fit its {region.byte_size}-byte "
                                f"{self.mode} shared memory region")
        view = self._shm.get_contents_as_numpy(region.handle, np_dtype, shape)
        value = np.array(view, copy=True)  # the region is overwritten by the next request
        if bf16:  # as tritonclient's as_numpy gives BF16: widened to float32
            value = (value.astype(np.uint32) << 16).view(np.float32)
        return value

    # -- regions
    def _ensure(self, table: dict[str, _Region], tensor: str, byte_size: int, role: str) -> _Region:
        """The region for ``tensor``, replaced by a larger one when it holds less than ``byte_size``."""
        region = table.get(tensor)
        if region is not None and region.byte_size >= byte_size:
            return region
        if region is not None:
            self._release(region)
            del table[tensor]
        size = max(1, _round_up(byte_size))
        name = f"{self._tag}-{role}-{_UNSAFE.sub('_', tensor)}"
        self._pending.add(name)
        region = self._create(name, size)
        table[tensor] = region
        self._pending.discard(name)
        return region

    def _create(self, name: str, byte_size: int) -> _Region:
        if not self._swept:
            self._swept = True
            self._unregister_stale()
        try:
            if self.mode == "system":
                handle = self._shm.create_shared_memory_region(name, "/" + name, byte_size, create_only=True)
            else:
                handle = self._shm.create_shared_memory_region(name, byte_size, CUDA_DEVICE)
        except Exception as exc:
            raise ServeError(f"{self.mode} shared memory: cannot create region {name!r} ({byte_size} bytes): "
                             f"{_one_line(exc)}", hint="is /dev/shm full or not writable?" if self.mode == "system"
                             else CUDA_HINT) from None
        region = _Region(name, byte_size, handle)
        try:
            self._register(region)
        except BaseException:
            self._destroy(region)
            raise
        return region

    def _register(self, region: _Region) -> None:
        kwargs: dict[str, Any] = {"client_timeout": self.timeout} if self.protocol == "grpc" else {}
        try:
            if self.mode == "system":
                self._client.register_system_shared_memory(region.name, "/" + region.name, region.byte_size,
                                                           **kwargs)
            else:
                raw = self._shm.get_raw_handle(region.handle)
                self._client.register_cuda_shared_memory(region.name, raw, CUDA_DEVICE, region.byte_size, **kwargs)
        except Exception as exc:
            raise ServeError(f"{self.protocol}: the server did not register {self.mode} shared memory region "
                             f"{region.name!r}: {_one_line(exc)}",
                             hint="shared memory needs the server on this host (and, for cuda, the same GPUs "
                             "visible to it); use --shared-memory none for a remote server") from None

    def _release(self, region: _Region) -> None:
        """Unregister on the server (best effort: it may be gone), then free here (always)."""
        try:
            self._unregister(region.name)
        finally:
            self._destroy(region)

    def _unregister_stale(self) -> None:
        """Unregister the server's trtrepo regions whose client process is gone (it was SIGKILLed)."""
        kwargs: dict[str, Any] = {"client_timeout": self.timeout, "as_json": True} if self.protocol == "grpc" else {}
        try:
            if self.mode == "system":
                status = self._client.get_system_shared_memory_status(**kwargs)
            else:
                status = self._client.get_cuda_shared_memory_status(**kwargs)
        except Exception as exc:  # the status API is a convenience here; registering will say what is wrong
            LOGGER.debug("shared memory status: %s", exc)
            return
        if isinstance(status, dict):  # gRPC as JSON: {"regions": {name: {...}}}
            names = list((status.get("regions") or {}).keys())
        else:  # HTTP: [{"name": ...}, ...]
            names = [str(r.get("name", "")) for r in status or [] if isinstance(r, dict)]
        for name in names:
            pid = _pid_of(name)
            if pid is not None and not _alive(pid):
                LOGGER.info("unregistering %s shared memory region %s of a process that is gone", self.mode, name)
                self._unregister(name)

    def _unregister(self, name: str) -> None:
        """Unregister ``name`` on the server, best effort and bounded.

        A request cut short by a stop signal is still running on the server, which refuses to unregister a region
        "currently in use": ask again until it is done (at most :data:`CLEANUP_TIMEOUT`). A connection the signal
        left half-read fails: ask over a fresh one. A server that cannot be reached holds no registrations.
        """
        deadline = time.monotonic() + CLEANUP_TIMEOUT
        client, fresh = self._client, None
        try:
            while True:
                try:
                    self._unregister_with(client, name, self.timeout if fresh is None else CLEANUP_TIMEOUT)
                    return
                except Exception as exc:
                    busy = "in use" in str(exc)
                    if busy and time.monotonic() < deadline:
                        time.sleep(0.02)
                        continue
                    if not busy and fresh is None:
                        LOGGER.debug("unregistering %s: %s; once more over a new connection", name, exc)
                        client = fresh = self._new_client()
                        continue
                    log = LOGGER.warning if busy else LOGGER.debug  # unreachable servers hold nothing
                    log("%s shared memory region %s stays registered on %s: %s", self.mode, name, self.url,
                        _one_line(exc))
                    return
        finally:
            if fresh is not None:
                with contextlib.suppress(Exception):
                    fresh.close()

    def _new_client(self) -> Any:
        if self.protocol == "http":
            return self._module.InferenceServerClient(self.url, connection_timeout=CLEANUP_TIMEOUT,
                                                      network_timeout=CLEANUP_TIMEOUT)
        return self._module.InferenceServerClient(self.url)

    def _unregister_with(self, client: Any, name: str, timeout: float) -> None:
        kwargs: dict[str, Any] = {"client_timeout": timeout} if self.protocol == "grpc" else {}
        if self.mode == "system":
            client.unregister_system_shared_memory(name, **kwargs)
        else:
            client.unregister_cuda_shared_memory(name, **kwargs)

    def _destroy(self, region: _Region) -> None:
        try:
            self._shm.destroy_shared_memory_region(region.handle)
        except Exception as exc:
            LOGGER.warning("%s shared memory region %s: cannot free: %s", self.mode, region.name, _one_line(exc))
        if self.mode == "system":  # unlink even if tritonclient's bookkeeping failed half-way
            with contextlib.suppress(OSError):
                (SHM_DIR / region.name).unlink()

    def close(self) -> None:
        """Unregister and free every region (idempotent); a stop signal meanwhile does not cut it short."""
        regions = [*self._inputs.values(), *self._outputs.values()]
        pending = sorted(self._pending)
        self._inputs.clear()
        self._outputs.clear()
        self._pending.clear()
        interrupted: BaseException | None = None
        for region in regions:
            try:
                self._release(region)
            except BaseException as exc:  # Interrupted (Ctrl-C, SIGTERM): free the rest, then let it through
                interrupted = interrupted or exc
        for name in pending:  # created or registered, not yet recorded: by name
            try:
                self._forget(name)
            except BaseException as exc:
                interrupted = interrupted or exc
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if interrupted is not None:
            raise interrupted

    def _forget(self, name: str) -> None:
        self._unregister(name)
        if self.mode == "system":
            with contextlib.suppress(OSError):
                (SHM_DIR / name).unlink()


def segments(pid: int | None = None) -> list[Path]:
    """trtrepo's system shared memory segments in /dev/shm (of process ``pid`` only, when given)."""
    prefix = f"{SEGMENT_PREFIX}-{pid}-" if pid is not None else f"{SEGMENT_PREFIX}-"
    try:
        return sorted(p for p in SHM_DIR.iterdir() if p.name.startswith(prefix))
    except OSError:
        return []


def remove_stale_segments(paths: Iterable[Path] | None = None) -> list[Path]:
    """Unlink trtrepo segments whose process is gone (a SIGKILLed run); returns what was removed."""
    removed = []
    for path in segments() if paths is None else paths:
        pid = _pid_of(path.name)
        if pid is None or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
            LOGGER.info("removed stale shared memory segment %s (process %s is gone)", path, pid)
    return removed


def _pid_of(name: str) -> int | None:
    """The process id in a trtrepo region or segment name (``trtrepo-shm-<pid>-...``), None for other names."""
    if not name.startswith(f"{SEGMENT_PREFIX}-"):
        return None
    pid_text = name[len(SEGMENT_PREFIX) + 1:].split("-", 1)[0]
    return int(pid_text) if pid_text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, not ours to judge
        return True
    return True


def _too_small(message: str) -> int | None:
    match = _TOO_SMALL.search(message)
    return int(match.group(1)) if match else None


def _round_up(n: int) -> int:
    """The next power of two ≥ n, so a growing batch re-registers a few times, not at every size."""
    return 1 << max(0, int(n) - 1).bit_length()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    cause = exc.__cause__
    if cause is not None and str(cause).strip():
        text = f"{text} ({str(cause).strip()})" if text else str(cause).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]


@atexit.register
def _close_forgotten() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for transport in live:
        with contextlib.suppress(Exception):
            transport.close()
