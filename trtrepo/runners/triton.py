"""A served model as a runner: one request per ``infer`` over HTTP or gRPC (``trtrepo.runners.triton_client``).

One runner holds one connection: use one runner per thread (tritonclient clients are not thread-safe).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trtrepo.runners.base import BaseRunner, Tensors, is_numpy, to_numpy


class TritonRunner(BaseRunner):
    """Sends each ``infer`` to ``model`` on the Triton server at ``url``.

    Args:
        url: ``host:port`` of the server's HTTP or gRPC endpoint.
        model: The model's name.
        output_names: The outputs to request (the served names).
        protocol: ``http`` or ``grpc``.
        datatypes: Input name → Triton datatype (``FP16``...); default from each array's dtype.
        timeout: Seconds per request.
        name: The runner's name in reports (default ``triton-<protocol>``).
        shared_memory: ``none``, ``system`` or ``cuda``: tensors through same-host regions (freed on deactivate).
    """

    def __init__(self, url: str, model: str, output_names: Sequence[str], *, protocol: str = "http",
                 datatypes: Mapping[str, str] | None = None, timeout: float = 60.0, name: str | None = None,
                 shared_memory: str = "none") -> None:
        super().__init__(name or f"triton-{protocol}")
        self.url = url
        self.model = model
        self.output_names = list(output_names)
        self.protocol = protocol
        self.datatypes = dict(datatypes or {})
        self.timeout = timeout
        self.shared_memory = shared_memory
        self.client: Any = None
        self.last_latency_s: float | None = None

    def _activate(self) -> None:
        from trtrepo.runners.triton_client import TritonClient

        self.client = TritonClient(self.protocol, self.url, timeout=self.timeout,
                                   shared_memory=self.shared_memory)

    def _deactivate(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def infer(self, inputs: Tensors) -> dict[str, Any]:
        """One request; numpy in and out (torch inputs are copied to the host first).

        Raises:
            RequestFailed: The server answered with an error (``trtrepo.runners.triton_client.RequestFailed``).
            ServeError: The server could not be reached or did not answer in time.
        """
        self.require_active()
        arrays = {k: v if is_numpy(v) else to_numpy(v) for k, v in inputs.items()}
        result = self.client.infer(self.model, arrays, self.output_names, self.datatypes or None)
        self.last_latency_s = float(result.latency_s)
        return dict(result.outputs)
