"""Triton Python-backend model that serves a torch.export program (model.pt2), written by trtrepo.

Self-contained: imports torch, numpy and triton_python_backend_utils only, so a deployment does not need trtrepo.
Everything model-specific comes from config.pbtxt: the input order (= forward() arguments), the output names and
dtypes, max_batch_size, and these parameters:

    trtrepo_op_libraries    ';'-separated custom-op libraries, relative to this model's folder (where
                            trtrepo copies them: plugins/<lib>.so), loaded with torch.ops.load_library before
                            the program is loaded.
    trtrepo_program         the program file in the version folder (default model.pt2).
    trtrepo_python_cpu_ops  ';'-separated JSON files in the version folder (python_ops/<ns>__<op>.json): an op
                            whose library has no CPU kernel gets its decomposition (the file and function the
                            JSON names), behind op.yaml's input checks (python_ops/_shape_check.py), as one.
    trtrepo_tensor_transfer ``dlpack`` (default) or ``numpy``: how tensors cross into and out of torch.
    trtrepo_aoti_packages   ``<device>=<file>`` pairs, ';'-separated (``cpu=model.aoti-cpu.pt2``): AOTInductor
                            packages in the version folder. When set, the instance runs the package of its
                            device (cpu or cuda), loaded after the op libraries and the CPU decompositions (its
                            custom-op calls go through them); a package that is missing or fails to load is a
                            load error naming the file; model.py never falls back to the program.

Tensors cross by DLPack, not NumPy: the Python backend's NumPy bridge is built against NumPy 1.x and misreads
NumPy 2 arrays, and it cannot carry bf16 or GPU tensors at all. Each request that fails gets its own error
response; the stub never crashes on a bad request.

On a GPU instance (KIND_GPU) trtrepo sets the backend's ``FORCE_CPU_ONLY_INPUT_TENSORS: no``: inputs already in GPU
memory (CUDA shared memory, an ensemble step) arrive there and are used in place; host inputs are copied to the
device once. Outputs leave as the torch tensors themselves: the stub asks each for its DLPack capsule on its own
CUDA stream (``__dlpack__(stream=...)``, so torch orders that stream after the kernels that wrote it) and waits on
that stream before Triton reads the memory. That is the only synchronisation; model.py adds none.
"""

import json
import os
import sys
import threading
from pathlib import Path

# The stub embeds its own Python and ignores PYTHONPATH; `trtrepo serve` passes the packages of the interpreter it
# runs in (torch, numpy) as TRTREPO_PYTHONPATH. A deployment with torch installed where the stub looks needs none.
for _entry in reversed(os.environ.get("TRTREPO_PYTHONPATH", "").split(os.pathsep)):
    if _entry and _entry not in sys.path:
        sys.path.insert(0, _entry)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

_TORCH_DTYPES = {
    "TYPE_BOOL": torch.bool,
    "TYPE_UINT8": torch.uint8,
    "TYPE_INT8": torch.int8,
    "TYPE_INT16": torch.int16,
    "TYPE_INT32": torch.int32,
    "TYPE_INT64": torch.int64,
    "TYPE_FP16": torch.float16,
    "TYPE_FP32": torch.float32,
    "TYPE_FP64": torch.float64,
    "TYPE_BF16": torch.bfloat16,
}


class RequestError(Exception):
    """A problem with one request (its inputs); answered with an error response for that request only."""


class TritonPythonModel:
    """Runs the exported program on the instance's device; batches requests along dim 0."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        model_dir = Path(args["model_repository"])  # despite its name: this model's folder
        version_dir = model_dir / str(args["model_version"])
        self.name = args["model_name"]
        self.max_batch_size = int(config.get("max_batch_size", 0))
        self.inputs = [(t["name"], _TORCH_DTYPES[t["data_type"]]) for t in config["input"]]
        self.outputs = [(t["name"], _TORCH_DTYPES[t["data_type"]]) for t in config["output"]]
        self.transfer = params.get("trtrepo_tensor_transfer", "dlpack") or "dlpack"
        if args.get("model_instance_kind") == "GPU":
            self.device = torch.device("cuda", int(args.get("model_instance_device_id", 0)))
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        for rel in filter(None, params.get("trtrepo_op_libraries", "").split(";")):
            library = model_dir / rel
            if not library.is_file():
                raise pb_utils.TritonModelException(
                    f"{self.name}: op library {rel} not found at {library} (paths are relative to the model folder)")
            torch.ops.load_library(str(library))
        self.python_cpu = _register_python_cpu(params.get("trtrepo_python_cpu_ops", ""), version_dir, self.name)
        packages = params.get("trtrepo_aoti_packages", "")
        if packages:
            program = version_dir / _package_for(packages, self.device.type, self.name)
            self.module = _load_package(program, self.device, self.name)
        else:
            program = version_dir / (params.get("trtrepo_program") or "model.pt2")
            ep = torch.export.load(str(program))
            ep = _to_device(ep, self.device)
            self.module = ep.module()
        self.lock = threading.Lock()
        pb_utils.Logger.log_info(
            f"{self.name}: loaded {program.name} on {self.device} (torch {torch.__version__}, numpy {np.__version__}, "
            f"transfer {self.transfer})"
        )

    def execute(self, requests):
        responses = [None] * len(requests)
        groups: dict[tuple, list] = {}  # the requests' non-batch shapes → (index, tensors) of each
        for i, request in enumerate(requests):
            try:
                tensors = [self._input(request, name, dtype) for name, dtype in self.inputs]
            except Exception as exc:  # one bad request must not fail the others
                responses[i] = _error(f"{self.name}: {exc}")
                continue
            key = tuple((tuple(t.shape[1:]) if self.max_batch_size > 0 else tuple(t.shape)) for t in tensors)
            groups.setdefault(key, []).append((i, tensors))
        for members in groups.values():
            try:
                results = self._run_group(members)
            except Exception:
                if len(members) == 1:
                    responses[members[0][0]] = _describe_failure(self.name)
                    continue
                results = {}
                for member in members:  # find out which request failed; answer the others
                    try:
                        results.update(self._run_group([member]))
                    except Exception:
                        responses[member[0]] = _describe_failure(self.name)
            for i, outs in results.items():
                try:
                    responses[i] = pb_utils.InferenceResponse(
                        output_tensors=[self._output(name, t) for (name, _), t in zip(self.outputs, outs, strict=True)]
                    )
                except Exception:
                    responses[i] = _describe_failure(self.name)
        return responses

    def finalize(self):
        self.module = None

    # -- helpers
    def _run_group(self, members):
        """Run requests whose inputs agree on all non-batch dims as one batch; return {index: [outputs]}."""
        if self.max_batch_size > 0 and len(members) > 1:
            sizes = [tensors[0].shape[0] for _, tensors in members]
            args = [torch.cat([tensors[k] for _, tensors in members], dim=0) for k in range(len(self.inputs))]
        else:
            sizes = [members[0][1][0].shape[0] if self.max_batch_size > 0 else None]
            args = members[0][1]
        with self.lock, torch.inference_mode():
            # GPU inputs on this device are used as they are (no copy); host inputs cross once.
            outs = self.module(*[a.to(self.device, non_blocking=True) for a in args])
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        if len(outs) != len(self.outputs):
            raise RequestError(f"program returned {len(outs)} outputs, config.pbtxt declares {len(self.outputs)}")
        for (name, dtype), out in zip(self.outputs, outs, strict=True):
            if out.dtype != dtype:
                raise RequestError(f"output {name}: program returned {out.dtype}, config.pbtxt declares {dtype}")
        if len(members) == 1:
            # An output may alias the request's input memory (a pass-through), which is released with the request.
            inputs = {a.untyped_storage().data_ptr() for a in args}
            return {members[0][0]: [o.clone() if o.untyped_storage().data_ptr() in inputs else o for o in outs]}
        total = sum(sizes)
        for (name, _), out in zip(self.outputs, outs, strict=True):
            if out.dim() == 0 or out.shape[0] != total:
                raise RequestError(f"output {name}: dim 0 is not the batch dim ({tuple(out.shape)}, batch {total})")
        pieces = [torch.split(out, sizes, dim=0) for out in outs]
        return {i: [p[j] for p in pieces] for j, (i, _) in enumerate(members)}

    def _input(self, request, name, dtype):
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            raise RequestError(f"input {name!r} missing from the request")
        if self.transfer == "numpy" and tensor.is_cpu():
            value = torch.from_numpy(np.array(tensor.as_numpy(), copy=True))
        else:
            value = torch.utils.dlpack.from_dlpack(tensor.to_dlpack())
        if value.dtype != dtype:
            value = value.view(dtype) if value.element_size() == torch.empty((), dtype=dtype).element_size() \
                else value.to(dtype)
        return value

    def _output(self, name, value):
        value = value.detach()
        if self.transfer == "numpy":
            # Only for diagnosis: with NumPy 2 in the stub this path sends 0-byte outputs (pybind11 NumPy 1 ABI).
            array = value.cpu().contiguous().numpy()
            return pb_utils.Tensor(name, np.ascontiguousarray(array))
        if value.is_cuda:
            # The tensor, not a capsule: the stub then takes it on its stream and waits for the kernels (see above).
            return pb_utils.Tensor.from_dlpack(name, value.contiguous())
        return pb_utils.Tensor.from_dlpack(name, torch.utils.dlpack.to_dlpack(value.contiguous()))


def _register_python_cpu(entries, version_dir, name):
    """Register each listed decomposition, behind its input checks, as its op's CPU kernel where the loaded
    libraries gave it none. Returns the torch.library.Library objects (dropping one removes its registrations)."""
    libraries: list = []  # torch.library.Library objects
    entries = [version_dir / rel for rel in filter(None, entries.split(";"))]
    if not entries:
        return libraries
    shape_check = _import(entries[0].parent / "_shape_check.py", "trtrepo_served_shape_check", name)
    for path in entries:
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise pb_utils.TritonModelException(f"{name}: cannot read {path.name}: {exc}") from None
        op = entry["op"]
        if torch._C._dispatch_has_kernel_for_dispatch_key(op, "CPU"):
            continue
        namespace, _, op_name = op.partition("::")
        module = _import(path.parent / entry["file"], f"trtrepo_served_{namespace}_{op_name}", name)
        fn = shape_check.checked(op, entry["inputs"], entry["dtypes"], getattr(module, entry["function"]))
        library = torch.library.Library(namespace, "IMPL")
        library.impl(op_name, fn, "CPU")
        libraries.append(library)
    return libraries


def _import(path, module_name, name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise pb_utils.TritonModelException(f"{name}: {path.name} not found at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _package_for(packages, device_type, name):
    """The package file listed for ``device_type`` in ``trtrepo_aoti_packages``; a load error when none is."""
    listed = dict(entry.split("=", 1) for entry in filter(None, packages.split(";")) if "=" in entry)
    if device_type not in listed:
        raise pb_utils.TritonModelException(
            f"{name}: trtrepo_aoti_packages lists no AOTInductor package for {device_type} instances ({packages!r}); "
            "rebuild with this instance kind in triton.instance_group")
    return listed[device_type]


def _load_package(path, device, name):
    """The AOTInductor package at ``path`` as a callable on a list of tensors returning a list of tensors."""
    if not path.is_file():
        raise pb_utils.TritonModelException(f"{name}: AOTInductor package {path.name} not found at {path}")
    try:
        compiled = torch._inductor.aoti_load_package(
            str(path), device_index=device.index if device.type == "cuda" else -1)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise pb_utils.TritonModelException(
            f"{name}: cannot load AOTInductor package {path.name} ({path}): {type(exc).__name__}: {first}") from None
    return _Package(compiled)


class _Package:
    """Calls the package's loader on the flat inputs (no pytree round trip per request); outputs come flat."""

    def __init__(self, compiled):
        self._compiled = compiled
        loader = getattr(compiled, "loader", None)
        self._run = loader.boxed_run if loader is not None and hasattr(loader, "boxed_run") else None

    def __call__(self, *args):
        if self._run is not None:
            return self._run(list(args))  # boxed: the loader takes the list and drops it
        return self._compiled(*args)


def _to_device(ep, device):
    """Move the program (weights and device arguments inside the graph) to ``device``."""
    current = {v.device for v in ep.state_dict.values()} | {v.device for v in ep.constants.values()
                                                            if isinstance(v, torch.Tensor)}
    if current <= {device}:
        return ep
    try:
        from torch.export.passes import move_to_device_pass
    except ImportError:  # older torch: move the parameters of the unlifted module instead
        return _ModuleOnDevice(ep, device)
    return move_to_device_pass(ep, device)


class _ModuleOnDevice:
    def __init__(self, ep, device):
        self._module = ep.module().to(device)

    def module(self):
        return self._module


def _error(message):
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))


def _describe_failure(name):
    exc = sys.exc_info()[1]
    first = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__
    pb_utils.Logger.log_error(f"{name}: request failed: {type(exc).__name__}: {first}")
    return _error(f"{name}: {type(exc).__name__}: {first}")
