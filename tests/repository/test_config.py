"""config.pbtxt: generated through ModelConfig and compared with known-good files, parsed and byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trtrepo.contracts import IOSpec, ModelArtifacts
from trtrepo.errors import BuildError
from trtrepo.repository import config as cfg
from trtrepo.spec import ModelSpec, parse_spec

GOLDEN = Path(__file__).resolve().parent / "golden"


def model_from_yaml(text: str) -> ModelSpec:
    """One ModelSpec from a model.yaml snippet (the factory is a stdlib module: validation only)."""
    return parse_spec(yaml.safe_load(text), Path("/nonexistent/model.yaml")).models[0]


TORCH_BATCHED = """
models:
  - name: gelu_block
    source: json:loads
    inputs:
      - {name: x, shape: [-1, 64], min: [1, 64], opt: [4, 64], max: [8, 64]}
      - {name: bias, shape: [-1, 64], min: [1, 64], opt: [4, 64], max: [8, 64]}
    outputs: [y]
    triton:
      max_batch_size: 8
      dynamic_batching: {preferred_batch_size: [2, 4], max_queue_delay_microseconds: 500}
"""

TENSORRT_UNBATCHED = """
models:
  - name: seq_block
    version: 2
    source: json:loads
    precision: fp16
    inputs:
      - {name: x, dtype: fp16, shape: [2, -1, 32], min: [2, 1, 32], opt: [2, 16, 32], max: [2, 64, 32]}
    outputs: [out]
    triton:
      instance_group: [{count: 2, gpus: [0]}]
      version_policy: all
      warmup: {data: zero, count: 3}
"""

MIXED_DTYPES = """
models:
  - name: mixed
    source: json:loads
    inputs:
      - {name: a, dtype: bf16, shape: [-1, 3], min: [2, 3], opt: [4, 3], max: [6, 3]}
      - {name: ids, dtype: int64, shape: [-1, 5], min: [1, 5], opt: [4, 5], max: [6, 5]}
      - {name: mask, dtype: bool, shape: [-1, 5], min: [1, 5], opt: [4, 5], max: [6, 5]}
      - {name: n, dtype: int32, shape: [-1, 1], min: [1, 1], opt: [4, 1], max: [6, 1]}
    outputs: [y]
    triton:
      max_batch_size: 6
      instance_group: [{kind: cpu, count: 1}, {kind: gpu, count: 1, gpus: [1, 2]}]
      version_policy: {specific: [1, 3]}
      warmup: {data: random}
"""


def _cases() -> dict[str, tuple[ModelSpec, ModelArtifacts, dict[str, object]]]:
    torch_model = model_from_yaml(TORCH_BATCHED)
    torch_art = ModelArtifacts(
        target="torch",
        inputs=(IOSpec("x", "fp32", (-1, 64)), IOSpec("bias", "fp32", (-1, 64))),
        outputs=(IOSpec("y", "fp32", (-1, 64)),),
        output_names={"y": "y"},
        backend="python",
        parameters={"trtrepo_target": "torch", "EXECUTION_ENV_PATH": "$$TRITON_MODEL_DIRECTORY/env"},
    )
    trt_model = model_from_yaml(TENSORRT_UNBATCHED)
    trt_art = ModelArtifacts(
        target="tensorrt",
        inputs=(IOSpec("x", "fp16", (2, -1, 32)),),
        outputs=(IOSpec("out", "fp16", (2, -1, 32)),),
        output_names={"out": "out"},
        platform="tensorrt_plan",
        default_model_filename="model.plan",
        gpu_required=True,
    )
    mixed_model = model_from_yaml(MIXED_DTYPES)
    mixed_art = ModelArtifacts(
        target="torch",
        inputs=(IOSpec("a", "bf16", (-1, 3)), IOSpec("ids", "int64", (-1, 5)), IOSpec("mask", "bool", (-1, 5)),
                IOSpec("n", "int32", (-1, 1))),
        outputs=(IOSpec("y", "fp32", (-1, 3)),),
        output_names={"y": "y"},
        backend="python",
    )
    return {
        "torch_batched": (torch_model, torch_art, {"op_libraries": ["plugins/libtrtrepo_ops.so"]}),
        "tensorrt_unbatched": (trt_model, trt_art, {"op_libraries": ["plugins/libtrtrepo_plugins.so"]}),
        "mixed_dtypes": (mixed_model, mixed_art, {"device": "cuda"}),
    }


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_matches_golden(name: str) -> None:
    model, artifacts, kwargs = CASES[name]
    config = cfg.model_config(model, artifacts, **kwargs)  # type: ignore[arg-type]
    golden = (GOLDEN / f"{name}.pbtxt").read_text()
    assert cfg.parse_text(golden) == config
    assert cfg.to_text(config) == golden
    assert cfg.parse_text(cfg.to_text(config)) == config


def test_batching_drops_batch_dim_and_keeps_dynamic_dims() -> None:
    model, artifacts, kwargs = CASES["torch_batched"]
    config = cfg.model_config(model, artifacts, **kwargs)  # type: ignore[arg-type]
    assert config.max_batch_size == 8
    assert [list(i.dims) for i in config.input] == [[64], [64]]
    trt_model, trt_art, trt_kwargs = CASES["tensorrt_unbatched"]
    trt = cfg.model_config(trt_model, trt_art, **trt_kwargs)  # type: ignore[arg-type]
    assert trt.max_batch_size == 0
    assert list(trt.input[0].dims) == [2, -1, 32]
    assert list(trt.model_warmup[0].inputs["x"].dims) == [2, 16, 32]


def test_instance_kind_auto() -> None:
    assert cfg.instance_kind("auto", gpu_required=True, device="cpu") == "KIND_GPU"
    assert cfg.instance_kind("auto", gpu_required=False, device="cuda") == "KIND_GPU"
    assert cfg.instance_kind("auto", gpu_required=False, device="cpu") == "KIND_CPU"
    assert cfg.instance_kind("cpu", gpu_required=True, device="cuda") == "KIND_CPU"
    assert cfg.instance_kind("gpu", gpu_required=False, device="cpu") == "KIND_GPU"


def test_every_dtype_maps_to_a_triton_type() -> None:
    from tritonclient.grpc import model_config_pb2

    from trtrepo.spec import DTYPES

    for dtype in DTYPES:
        assert cfg.triton_dtype(dtype) in model_config_pb2.DataType.keys()  # noqa: SIM118  (an enum wrapper, not a dict)
    with pytest.raises(BuildError, match="fp64"):
        cfg.triton_dtype("fp64")


def test_batching_with_static_built_dim0_is_an_error() -> None:
    model, artifacts, _ = CASES["torch_batched"]
    artifacts = ModelArtifacts(target="torch", inputs=(IOSpec("x", "fp32", (8, 64)), artifacts.inputs[1]),
                               outputs=artifacts.outputs, output_names={"y": "y"}, backend="python")
    with pytest.raises(BuildError, match=r"models\[0\]: input 'x': built shape \[8, 64\] has no dynamic batch dim"):
        cfg.model_config(model, artifacts)


def test_sample_warmup_files_are_seeded_opt_inputs() -> None:
    import numpy as np

    from trtrepo.samples import sample_inputs

    model, artifacts, _ = CASES["torch_batched"]
    files = cfg.warmup_files(model, artifacts)
    assert sorted(files) == ["bias", "x"]
    one = [t.__class__(**{**t.__dict__, "opt": (1, 64)}) for t in model.inputs]
    expected = sample_inputs(tuple(one), "opt", "cpu", seed=model.parity.seed)
    for (name, data), tensor in zip(sorted(files.items(), key=lambda kv: ["x", "bias"].index(kv[0])), expected,
                                    strict=True):
        assert np.array_equal(np.frombuffer(data, dtype="<f4").reshape(1, 64), tensor.numpy()), name


def test_warmup_raw_bytes_for_16_bit_and_bool_types() -> None:
    import torch

    bf16 = torch.tensor([1.0, -2.0], dtype=torch.bfloat16)
    assert cfg.raw_bytes(bf16, "bf16") == bytes([0x80, 0x3F, 0x00, 0xC0])  # bf16 1.0 = 0x3f80, -2.0 = 0xc000
    assert cfg.raw_bytes(torch.tensor([1.0], dtype=torch.float16), "fp16") == bytes([0x00, 0x3C])
    assert cfg.raw_bytes(torch.tensor([True, False]), "bool") == b"\x01\x00"
    assert cfg.raw_bytes(torch.tensor([1], dtype=torch.int64), "int64") == (1).to_bytes(8, "little")

    model, artifacts, _ = CASES["mixed_dtypes"]
    assert cfg.warmup_files(model, artifacts) == {}  # random data: nothing to write


def test_min_batch_above_one_is_respected_in_warmup() -> None:
    model, artifacts, _ = CASES["mixed_dtypes"]
    config = cfg.model_config(model, artifacts)
    assert config.model_warmup[0].batch_size == 2  # input a has min batch 2


GPU_KINDS = """
models:
  - name: gelu_block
    source: json:loads
    inputs:
      - {name: x, shape: [-1, 64], min: [1, 64], opt: [4, 64], max: [8, 64]}
    outputs: [y]
    triton:
      max_batch_size: 8
      instance_group: [KINDS]
"""


@pytest.mark.parametrize(("kinds", "device", "expected"), [
    ("{kind: gpu, count: 1}", "cpu", "no"),
    ("{kind: auto, count: 1}", "cuda", "no"),  # auto on a CUDA build is KIND_GPU
    ("{kind: cpu, count: 1}, {kind: gpu, count: 1}", "cpu", "no"),
    ("{kind: cpu, count: 2}", "cpu", None),
    ("{kind: auto, count: 1}", "cpu", None),
])
def test_gpu_instances_keep_python_backend_inputs_on_the_gpu(kinds: str, device: str, expected: str | None) -> None:
    from trtrepo.targets.torch_target import PARAM_FORCE_CPU_ONLY_INPUTS

    model = model_from_yaml(GPU_KINDS.replace("KINDS", kinds))
    art = ModelArtifacts(target="torch", inputs=(IOSpec("x", "fp32", (-1, 64)),),
                         outputs=(IOSpec("y", "fp32", (-1, 64)),), output_names={"y": "y"}, backend="python",
                         parameters={"trtrepo_program": "model.pt2"},
                         gpu_parameters={PARAM_FORCE_CPU_ONLY_INPUTS: "no"})
    text = cfg.to_text(cfg.model_config(model, art, device=device))
    parsed = cfg.parse_text(text)
    assert parsed.parameters["trtrepo_program"].string_value == "model.pt2"
    if expected is None:
        assert "FORCE_CPU_ONLY_INPUT_TENSORS" not in parsed.parameters
    else:
        assert PARAM_FORCE_CPU_ONLY_INPUTS == "FORCE_CPU_ONLY_INPUT_TENSORS"  # the Python backend's spelling
        assert parsed.parameters["FORCE_CPU_ONLY_INPUT_TENSORS"].string_value == expected
