"""A torch module as a runner: the eager model with the custom ops loaded, or any compiled form of it.

The caller loads the module (``trtrepo.export.load_module`` after ``trtrepo.ops.stage.prepare_ops``) and may wrap it
(``torch.compile``, a Torch-TensorRT compiled graph): this runner only binds inputs by name, runs forward() under
``torch.inference_mode`` on its own stream and names the flattened outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trtrepo.runners.base import (
    BaseRunner,
    Prepared,
    Tensors,
    check_names,
    flatten_outputs,
    name_outputs,
    new_stream,
    to_torch,
)


class EagerRunner(BaseRunner):
    """Runs ``module(*inputs)`` with inputs in ``input_names`` order.

    Args:
        module: The torch module (or any callable taking tensors).
        input_names: forward()'s argument names, in order.
        output_names: Names for forward()'s flattened outputs, in order.
        device: ``cuda`` or ``cpu``: where inputs are put.
        name: The runner's name in reports.
        stream: The ``torch.cuda.Stream`` to run on (default: a new non-default stream on activation; CPU: none).
    """

    def __init__(self, module: Any, input_names: Sequence[str], output_names: Sequence[str], *, device: str = "cpu",
                 name: str = "eager", stream: Any = None) -> None:
        super().__init__(name)
        self.module = module
        self.input_names = list(input_names)
        self.output_names = list(output_names)
        self.device = device
        self.stream = stream

    def _activate(self) -> None:
        if self.device.startswith("cuda") and self.stream is None:

            self.stream = new_stream()

    def prepare(self, inputs: Tensors) -> Prepared:
        """Bind ``inputs``; the call runs forward() once (outputs are new tensors each call, as in eager)."""
        import torch

        self.require_active()
        check_names(self.name, list(inputs), self.input_names)
        args = tuple(to_torch(inputs[n], self.device) for n in self.input_names)
        if self.device.startswith("cuda"):
            torch.cuda.current_stream().synchronize()  # the copies above ran there; the calls run on self.stream
        last: list[Any] = []
        module = self.module

        def call() -> None:
            with torch.inference_mode():
                out = module(*args)
            last[:] = [out]

        def outputs() -> dict[str, Any]:
            if not last:
                raise RuntimeError(f"{self.name}: outputs() before the first call")
            return name_outputs(self.name, self.output_names, flatten_outputs(last[0]))

        return Prepared(call=call, outputs=outputs, stream=self.stream if self.device.startswith("cuda") else None)
