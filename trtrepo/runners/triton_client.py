"""Talk to Triton over HTTP or gRPC with a timeout on every call; concurrent requests for ragged batches.

Failures split in two: the server answered with an error (a rejected shape, a failing model: ``RequestFailed``,
recorded against the one case) or it could not be reached (``ServeError``: the run stops). Every call is bounded
by ``timeout`` seconds, so a hung or dead server ends the run instead of hanging it.

Kept free of parity logic so a load loop (``trtrepo bench``) can reuse :class:`TritonClient`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from trtrepo.errors import ServeError

LOGGER = logging.getLogger(__name__)

PROTOCOLS = ("http", "grpc")
DEFAULT_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10.0
PROGRESS_EVERY_S = 15.0


class RequestFailed(Exception):
    """The server answered the request with an error (the message is the server's, one line)."""


@dataclass(frozen=True)
class InferResult:
    """Outputs of one request and its round-trip time."""

    outputs: dict[str, NDArray[Any]]
    latency_s: float


class TritonClient:
    """One connection to Triton over ``protocol`` (``http`` or ``grpc``) at ``url`` (``host:port``).

    Not thread-safe (neither tritonclient client is): use one per thread, see :func:`infer_concurrently`.
    ``shared_memory`` (``none``, ``system``, ``cuda``) sends tensors through same-host regions that the client
    registers on first use and unregisters and frees on :meth:`close` (:mod:`trtrepo.runners.triton_shm`).
    """

    def __init__(self, protocol: str, url: str, timeout: float = DEFAULT_TIMEOUT,
                 shared_memory: str = "none") -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        self.protocol = protocol
        self.url = url
        self.timeout = timeout
        self.shared_memory = shared_memory
        self._shm: Any = None
        failure = ""
        # A client whose constructor raised is half-made, and tritonclient's __del__ then prints its own traceback
        # after our error line: drop it while its "Exception ignored" report is muted.
        with _quiet_unraisable():
            try:
                if protocol == "http":
                    import tritonclient.http as http_module

                    self._client: Any = http_module.InferenceServerClient(
                        url, connection_timeout=min(CONNECT_TIMEOUT, timeout), network_timeout=timeout)
                    self._module: Any = http_module
                else:
                    import tritonclient.grpc as grpc_module

                    self._client = grpc_module.InferenceServerClient(url)
                    self._module = grpc_module
            except ImportError as exc:
                from trtrepo.errors import MissingDependencyError

                raise MissingDependencyError(f"the {protocol} client needs tritonclient ({exc})",
                                             hint="pip install 'tritonclient[http,grpc]'") from None
            except Exception as exc:
                failure = _one_line(exc)
            if failure:
                gc.collect()
        if failure:
            raise ServeError(f"{protocol} {url}: cannot create a client: {failure}")
        if shared_memory != "none":  # tensors through same-host regions (trtrepo.runners.triton_shm), not the body
            from trtrepo.runners.triton_shm import SharedMemoryTransport, check_mode

            self._shm = SharedMemoryTransport(check_mode(shared_memory), self._client, self._module, protocol, url,
                                              timeout)

    # -- health
    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        if self.protocol == "grpc":
            kwargs["client_timeout"] = self.timeout
        return getattr(self._client, fn)(*args, **kwargs)

    def is_server_live(self) -> bool:
        """True when the server answers its liveness endpoint."""
        try:
            return bool(self._call("is_server_live"))
        except Exception:
            return False

    def repository_index(self) -> list[dict[str, str]]:
        """The server's repository index: one ``{name, version, state, reason}`` per model (version) it knows.

        Raises:
            RequestFailed: The server refused the request (e.g. a restricted repository API).
            ServeError: The server could not be reached.
        """
        try:
            if self.protocol == "grpc":
                raw = self._call("get_model_repository_index", as_json=True)
                entries = raw.get("models", []) if isinstance(raw, dict) else []
            else:
                entries = self._client.get_model_repository_index()
        except Exception as exc:
            raise self._error("repository index", exc) from None
        return [{k: str(e.get(k) or "") for k in ("name", "version", "state", "reason")}
                for e in entries or [] if isinstance(e, dict)]

    def wait_model_ready(self, model: str, timeout: float, progress: Callable[[str], None] | None = None) -> None:
        """Wait until ``model`` is READY; say at once when the server does not have it or failed to load it.

        The server's repository index comes first: a model it does not list, or one it lists only as not loaded
        (UNAVAILABLE with its reason), is an error right away, not after ``timeout``. A model that is loading is
        polled, with a progress line every ~15 s.

        Raises:
            ServeError: The server is unreachable, lacks the model, did not load it, or it is not ready within
                ``timeout`` seconds.
        """
        started = time.monotonic()
        deadline = started + timeout
        next_note = started + PROGRESS_EVERY_S
        last = ""
        while True:
            self._raise_if_absent(model)
            try:
                if self._call("is_model_ready", model):
                    return
                last = "not ready"
            except Exception as exc:
                last = _one_line(exc)
                if _is_connection_error(exc) and not self.is_server_live():
                    raise ServeError(f"{self.protocol} {self.url}: server not reachable: {last}",
                                     hint="start it with `trtrepo serve`, or check --url-http/--url-grpc") from None
            now = time.monotonic()
            if now > deadline:
                raise ServeError(f"{self.protocol} {self.url}: model {model!r} not ready after {timeout:.0f} s "
                                 f"({last})", hint="see the server log for why the model did not load; "
                                 "TRTREPO_CHECK_TIMEOUT sets how long to wait")
            if progress is not None and now >= next_note:
                next_note = now + PROGRESS_EVERY_S
                progress(f"  waiting for {model!r} on {self.protocol} {self.url}: {now - started:.0f} s of "
                         f"{timeout:.0f} s ({last})")
            time.sleep(0.25)

    def _raise_if_absent(self, model: str) -> None:
        """ServeError when the repository index does not list ``model`` or lists it only as not loaded."""
        try:
            index = self.repository_index()
        except RequestFailed as exc:  # no index here (restricted API): readiness polling alone decides
            LOGGER.debug("%s %s: no repository index (%s)", self.protocol, self.url, exc)
            return
        entries = [e for e in index if e["name"] == model]
        if not entries:
            names = sorted({e["name"] for e in index if e["name"]})
            raise ServeError(f"{self.protocol} {self.url}: the server has no model {model!r} "
                             f"(it has: {', '.join(names) if names else 'no models'})",
                             hint="is this the server of this repository? check --url-http/--url-grpc, or serve "
                             "the repository that holds the model (trtrepo serve <repository>)")
        states = {e["state"] for e in entries}
        if states & {"READY", "LOADING"}:
            return
        failed = sorted({f"{e['state']}: {e['reason']}" if e["reason"] else e["state"] for e in entries if e["state"]})
        if failed:
            raise ServeError(f"{self.protocol} {self.url}: the server did not load model {model!r} "
                             f"({'; '.join(failed)})", hint="see the server log for why it did not load")
        raise ServeError(f"{self.protocol} {self.url}: the server has model {model!r} in its repository but has not "
                         "loaded it", hint=f"load it (POST /v2/repository/models/{model}/load with explicit model "
                         "control), or start the server without --model-control-mode=explicit")

    def model_metadata(self, model: str) -> dict[str, Any]:
        """Model metadata as a dict (``inputs``/``outputs`` with ``name``, ``datatype``, ``shape``)."""
        try:
            if self.protocol == "grpc":
                return dict(self._call("get_model_metadata", model, as_json=True))
            return dict(self._call("get_model_metadata", model))
        except Exception as exc:
            raise self._error(f"metadata of {model!r}", exc) from None

    def execution_counts(self, model: str) -> tuple[int, int]:
        """``(requests that succeeded, model executions)`` so far; fewer executions than requests = batching."""
        try:
            if self.protocol == "grpc":
                stats = self._call("get_inference_statistics", model, as_json=True)
            else:
                stats = self._call("get_inference_statistics", model)
        except Exception as exc:
            raise self._error(f"statistics of {model!r}", exc) from None
        requests = executions = 0
        for entry in stats.get("model_stats", []):
            requests += int(entry.get("inference_stats", {}).get("success", {}).get("count", 0))
            executions += int(entry.get("execution_count", 0))
        return requests, executions

    # -- inference
    def infer(self, model: str, inputs: Mapping[str, NDArray[Any]], outputs: Sequence[str],
              datatypes: Mapping[str, str] | None = None) -> InferResult:
        """One synchronous request.

        Args:
            model: Model name.
            inputs: Input name → array.
            outputs: Output names to request.
            datatypes: Input name → Triton datatype (``FP32``...), default from the array dtype.

        Raises:
            RequestFailed: The server rejected or failed the request.
            ServeError: The server could not be reached or did not answer within the timeout.
        """
        from tritonclient.utils import np_to_triton_dtype

        if self._shm is not None:
            types = {n: (datatypes or {}).get(n) or np_to_triton_dtype(a.dtype) for n, a in inputs.items()}
            values, latency = self._shm.infer(model, inputs, outputs, types,
                                              lambda request, wanted: self._send(model, request, wanted))
            return InferResult(values, latency)
        request = []
        for name, array in inputs.items():
            datatype = (datatypes or {}).get(name) or np_to_triton_dtype(array.dtype)
            item = self._module.InferInput(name, list(array.shape), datatype)
            if self.protocol == "http":
                item.set_data_from_numpy(array, binary_data=True)
            else:
                item.set_data_from_numpy(array)
            request.append(item)
        if self.protocol == "http":
            wanted = [self._module.InferRequestedOutput(n, binary_data=True) for n in outputs]
        else:
            wanted = [self._module.InferRequestedOutput(n) for n in outputs]
        result, latency = self._send(model, request, wanted)
        values = {}
        for name in outputs:
            values[name] = decode_output(result, name, model)
        return InferResult(values, latency)

    def _send(self, model: str, request: list[Any], wanted: list[Any]) -> tuple[Any, float]:
        """The tritonclient infer call and its seconds; errors as in :meth:`infer`."""
        start = time.perf_counter()
        try:
            if self.protocol == "grpc":
                result = self._client.infer(model, request, outputs=wanted, client_timeout=self.timeout)
            else:
                result = self._client.infer(model, request, outputs=wanted)
        except Exception as exc:
            raise self._error(f"infer {model!r}", exc) from None
        return result, time.perf_counter() - start

    def close(self) -> None:
        """Close the connection, after unregistering and freeing its shared memory regions (if any)."""
        if self._shm is not None:
            self._shm.close()
        try:
            self._client.close()
        except Exception as exc:  # closing a broken connection must not mask the real error
            LOGGER.debug("closing %s client: %s", self.protocol, exc)

    def __enter__(self) -> TritonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, what: str, exc: BaseException) -> Exception:
        message = _one_line(exc)
        if _is_connection_error(exc):
            return ServeError(f"{self.protocol} {self.url}: {what}: server not reachable or not answering "
                              f"({message})", hint="is tritonserver running? see its log")
        return RequestFailed(message)


def infer_concurrently(protocol: str, url: str, model: str, requests: Sequence[Mapping[str, NDArray[Any]]],
                       outputs: Sequence[str], datatypes: Mapping[str, str] | None = None,
                       timeout: float = DEFAULT_TIMEOUT, shared_memory: str = "none") -> list[InferResult | Exception]:
    """Send ``requests`` at the same moment from one thread and one client each (so the batcher merges them).

    Returns:
        Per request, its result or the RequestFailed/ServeError it raised, in request order.
    """
    if not requests:
        return []
    barrier = threading.Barrier(len(requests))

    def one(inputs: Mapping[str, NDArray[Any]]) -> InferResult | Exception:
        try:
            with TritonClient(protocol, url, timeout, shared_memory) as client:
                # A broken barrier means another thread failed to connect: still send this request.
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(timeout)
                return client.infer(model, inputs, outputs, datatypes)
        except (RequestFailed, ServeError) as exc:
            barrier.abort()
            return exc

    with ThreadPoolExecutor(max_workers=len(requests), thread_name_prefix=f"trtrepo-{protocol}") as pool:
        return list(pool.map(one, requests))


def decode_output(result: Any, name: str, model: str) -> NDArray[Any]:
    """Output ``name`` of a tritonclient (HTTP or gRPC) ``InferResult`` as a numpy array.

    A response whose data does not fill the shape it declares (seen: 0 bytes for a ``[1, 64]`` FP32 output from
    the Python-backend stub running with numpy 2) makes tritonclient's ``as_numpy`` raise a bare ValueError; it is
    a failure of that one request, so it becomes a RequestFailed naming the output, its shape, dtype and sizes.

    Raises:
        RequestFailed: The response lacks the output, or its data does not match its declared shape and dtype.
    """
    try:
        value = result.as_numpy(name)
    except Exception as exc:
        raise RequestFailed(_malformed_output_message(result, name, model, exc)) from None
    if value is None:
        raise RequestFailed(f"response of {model!r} has no output {name!r}")
    return np.asarray(value)


def _malformed_output_message(result: Any, name: str, model: str, exc: BaseException) -> str:
    """'server returned 0 bytes for output 'y' of shape [1, 64] (dtype FP32, 256 bytes expected)' or near that."""
    datatype, shape, nbytes = _output_header(result, name)
    if datatype is None or shape is None:
        return f"response of {model!r}: output {name!r} cannot be decoded: {_one_line(exc)}"
    expected = ""
    with contextlib.suppress(Exception):
        from tritonclient.utils import triton_to_np_dtype

        np_dtype = triton_to_np_dtype(datatype)
        if np_dtype is not None and np_dtype is not np.object_:
            expected = f", {int(np.prod(shape, dtype=np.int64)) * np.dtype(np_dtype).itemsize} bytes expected"
    got = f"{nbytes} bytes" if nbytes is not None else "data that does not fit"
    return f"server returned {got} for output {name!r} of shape {shape} (dtype {datatype}{expected}) from model " \
           f"{model!r}: {_one_line(exc)}"


def _output_header(result: Any, name: str) -> tuple[str | None, list[int] | None, int | None]:
    """(datatype, shape, bytes of data) the response declares for output ``name``; None where unknown."""
    try:
        response = result.get_response()
        if isinstance(response, dict):  # HTTP: JSON header, binary_data_size in the output's parameters
            for out in response.get("outputs", []):
                if out.get("name") == name:
                    size = (out.get("parameters") or {}).get("binary_data_size")  # None: JSON data, not bytes
                    return str(out.get("datatype")), [int(d) for d in out.get("shape", [])], \
                        int(size) if size is not None else None
            return None, None, None
        for index, out in enumerate(response.outputs):  # gRPC: raw_output_contents follow the outputs' order
            if out.name == name:
                raw = response.raw_output_contents
                if index < len(raw):
                    nbytes: int | None = len(raw[index])
                else:  # no raw bytes: typed contents, or nothing at all
                    nbytes = None if out.HasField("contents") else 0
                return str(out.datatype), [int(d) for d in out.shape], nbytes
    except Exception as exc:  # the message is best effort; the request fails either way
        LOGGER.debug("cannot read the header of output %r: %s", name, exc)
    return None, None, None


def _is_connection_error(exc: BaseException) -> bool:
    """Transport failure (refused, reset, timed out, unavailable), as opposed to an error answer of the server."""
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    status = str(getattr(exc, "status", lambda: "")() if callable(getattr(exc, "status", None)) else "")
    markers = ("unavailable", "deadline", "connection", "refused", "timed out", "timeout", "broken pipe", "reset by",
               "socket closed", "failed to connect", "eof")
    return "UNAVAILABLE" in status or "DEADLINE" in status or any(m in text for m in markers)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:500]


@contextlib.contextmanager
def _quiet_unraisable() -> Iterator[None]:
    """Within the block, exceptions Python cannot raise (from ``__del__``) go to the debug log, not stderr."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        LOGGER.debug("ignored in %r: %s", unraisable.object, unraisable.exc_value)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous
