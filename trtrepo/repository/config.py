"""config.pbtxt from a ModelSpec and what its target built, through Triton's own ModelConfig protobuf.

Never a string template: the message is filled field by field and printed with ``google.protobuf.text_format``,
so whatever is written here is something Triton's parser reads back. tritonclient (which carries the schema) is
imported inside the functions: the CLI must start without it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trtrepo import dtypes
from trtrepo.errors import BuildError, MissingDependencyError

if TYPE_CHECKING:
    from trtrepo.contracts import IOSpec, ModelArtifacts
    from trtrepo.spec import ModelSpec, TensorSpec

LOGGER = logging.getLogger(__name__)

CONFIG_FILENAME = "config.pbtxt"
WARMUP_DIRNAME = "warmup"  # Triton reads input_data_file from <model>/warmup/

def _pb() -> Any:
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        from trtrepo.deps import INSTALL_HINTS

        raise MissingDependencyError(
            f"writing config.pbtxt needs tritonclient (Triton's ModelConfig schema): {exc}",
            hint=INSTALL_HINTS["tritonclient"],
        ) from None
    return model_config_pb2


def triton_dtype(name: str) -> str:
    """trtrepo dtype name (``fp32``) → Triton DataType name (``TYPE_FP32``)."""
    return dtypes.get(name).config


def instance_kind(kind: str, *, gpu_required: bool, device: str) -> str:
    """Spec instance kind → Triton kind; ``auto`` is GPU when the artifact needs one or the build ran on CUDA."""
    if kind == "gpu" or (kind == "auto" and (gpu_required or device == "cuda")):
        return "KIND_GPU"
    return "KIND_CPU"


def model_config(
    model: ModelSpec,
    artifacts: ModelArtifacts,
    *,
    device: str = "cpu",
    op_libraries: Sequence[str] = (),
) -> Any:
    """Fill a ``ModelConfig`` for one model.

    Args:
        model: The model's validated spec.
        artifacts: What its target built (I/O names, dtypes and shapes are taken from here, not assumed).
        device: ``cuda`` or ``cpu``: where the build ran; decides ``kind: auto`` instance groups.
        op_libraries: Paths of the plugin libraries the model needs, relative to its model folder
            (``plugins/libx.so``).

    Returns:
        A ``tritonclient.grpc.model_config_pb2.ModelConfig``.
    """
    pb = _pb()
    triton = model.triton
    batching = triton.max_batch_size > 0
    config = pb.ModelConfig(name=model.name, max_batch_size=triton.max_batch_size)
    if artifacts.platform:
        config.platform = artifacts.platform
    if artifacts.backend:
        config.backend = artifacts.backend
    if artifacts.default_model_filename:
        config.default_model_filename = artifacts.default_model_filename

    where = model.yaml_path or model.name
    for tensor in artifacts.inputs:
        config.input.add(name=tensor.name, data_type=triton_dtype(tensor.dtype),
                         dims=_dims(tensor, batching, f"{where}: input {tensor.name!r}"))
    for tensor in artifacts.outputs:
        config.output.add(name=tensor.name, data_type=triton_dtype(tensor.dtype),
                          dims=_dims(tensor, batching, f"{where}: output {tensor.name!r}"))

    if triton.dynamic_batching is not None:
        config.dynamic_batching.preferred_batch_size.extend(triton.dynamic_batching.preferred_batch_size)
        config.dynamic_batching.max_queue_delay_microseconds = triton.dynamic_batching.max_queue_delay_microseconds

    for group in triton.instance_groups:
        kind = instance_kind(group.kind, gpu_required=artifacts.gpu_required, device=device)
        entry = config.instance_group.add(kind=kind, count=group.count)
        if kind == "KIND_GPU":
            entry.gpus.extend(group.gpus)

    policy = triton.version_policy
    if policy.kind == "latest":
        config.version_policy.latest.num_versions = policy.latest
    elif policy.kind == "all":
        config.version_policy.all.SetInParent()
    else:
        config.version_policy.specific.versions.extend(policy.versions)

    if triton.warmup.enabled:
        _add_warmup(config, model, artifacts)

    parameters = dict(artifacts.parameters)
    if any(group.kind == pb.ModelInstanceGroup.KIND_GPU for group in config.instance_group):
        parameters.update(artifacts.gpu_parameters)
    for key, value in sorted(parameters.items()):
        config.parameters[key].string_value = str(value)
    if op_libraries:
        config.model_operations.op_library_filename.extend(op_libraries)
    return config


def _dims(tensor: IOSpec, batching: bool, where: str) -> list[int]:
    if not batching:
        return list(tensor.shape)
    if not tensor.shape or tensor.shape[0] != -1:
        raise BuildError(
            f"{where}: built shape {list(tensor.shape)} has no dynamic batch dim 0 but max_batch_size > 0",
            hint="set triton.max_batch_size: 0, or make dim 0 of every input and output dynamic",
        )
    return list(tensor.shape[1:])


def _warmup_tensors(model: ModelSpec, artifacts: ModelArtifacts) -> list[tuple[IOSpec, TensorSpec]]:
    """Pair each built input with its spec input (by name, else by position) for shapes."""
    by_name = {t.name: t for t in model.inputs}
    pairs = []
    for i, built in enumerate(artifacts.inputs):
        spec = by_name.get(built.name) or (model.inputs[i] if i < len(model.inputs) else None)
        if spec is None:
            raise BuildError(f"{model.yaml_path}: built input {built.name!r} has no model.yaml input to warm up with")
        pairs.append((built, spec))
    return pairs


def _warmup_shape(spec: TensorSpec, batching: bool) -> tuple[int, ...]:
    """The opt shape; with batching the batch dim is 1 (or the profile's minimum, if that is larger)."""
    if not batching:
        return spec.opt
    return (max(1, spec.min[0]), *spec.opt[1:])


def _add_warmup(config: Any, model: ModelSpec, artifacts: ModelArtifacts) -> None:
    warmup = model.triton.warmup
    batching = model.triton.max_batch_size > 0
    pairs = _warmup_tensors(model, artifacts)
    batch = max((_warmup_shape(s, batching)[0] for _, s in pairs), default=1) if batching else 1
    entry = config.model_warmup.add(name=f"{model.name}_{warmup.data}", batch_size=batch, count=warmup.count)
    for built, spec in pairs:
        shape = _warmup_shape(spec, batching)
        item = entry.inputs[built.name]
        item.data_type = triton_dtype(built.dtype)
        item.dims.extend(shape[1:] if batching else shape)
        if warmup.data == "sample":
            item.input_data_file = built.name
        elif warmup.data == "random":
            item.random_data = True
        else:
            item.zero_data = True


def warmup_files(model: ModelSpec, artifacts: ModelArtifacts) -> dict[str, bytes]:
    """Raw little-endian warm-up data for ``warmup: {data: sample}``: file name (= input name) → bytes.

    The data are the seeded inputs (seed = ``parity.seed``) at the opt shape, batch dim as in config.pbtxt, made
    by the same generator as the export's example inputs. Empty when warm-up is off or not sample data.
    """
    warmup = model.triton.warmup
    if not warmup.enabled or warmup.data != "sample":
        return {}
    from trtrepo.samples import sample_inputs

    batching = model.triton.max_batch_size > 0
    pairs = _warmup_tensors(model, artifacts)
    batch = max(_warmup_shape(s, batching)[0] for _, s in pairs) if batching and pairs else None
    specs = []
    for built, spec in pairs:
        shape = _warmup_shape(spec, batching)
        if batch is not None:
            shape = (batch, *shape[1:])
        specs.append(dataclasses.replace(spec, dtype=built.dtype, opt=shape))
    tensors = sample_inputs(tuple(specs), "opt", "cpu", seed=model.parity.seed)
    files = {}
    for (built, _), tensor in zip(pairs, tensors, strict=True):
        files[built.name] = raw_bytes(tensor, built.dtype)
    return files


def raw_bytes(tensor: Any, dtype: str) -> bytes:
    """A CPU torch tensor → row-major little-endian bytes as Triton reads ``input_data_file``."""
    import torch

    t = tensor.detach().cpu().contiguous()
    if dtype == "bf16":
        t = t.view(torch.int16)
    elif dtype == "bool":
        t = t.to(torch.uint8)
    return bytes(t.numpy().astype(dtypes.get(dtype).raw, copy=False).tobytes())


def to_text(config: Any) -> str:
    """The config.pbtxt text of a ModelConfig (deterministic: field order, map keys sorted)."""
    from google.protobuf import text_format

    return str(text_format.MessageToString(config))


def parse_text(text: str) -> Any:
    """config.pbtxt text → ModelConfig (raises google.protobuf.text_format.ParseError on bad text)."""
    from google.protobuf import text_format

    return text_format.Parse(text, _pb().ModelConfig())


def config_dict(config: Any) -> Mapping[str, Any]:
    """A ModelConfig as a plain dict (for the manifest and for comparisons)."""
    from google.protobuf import json_format

    return dict(json_format.MessageToDict(config, preserving_proto_field_name=True))
