"""The AOT kernel ABI: TensorRT launches ``entry(input pointers..., int32 scalars..., output pointers...)``.

Checked two ways on the CPU machine: the ``extern "C"`` entries in each op's ``.cu`` declare exactly op.yaml's
inputs, then its ``kernel.scalars``, then its outputs; and the aot lowering's ``aot_impl`` hands TensorRT the scalars
in that same order (``tensorrt.plugin`` is faked: TensorRT cannot run here). The PTX side is
tests/ops/test_ops_build.py::test_ptx_entries_take_inputs_scalars_outputs.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from trtrepo.ops.description import OpDescription
from trtrepo.ops.expr import float_bits

PLUGIN_SRC = Path(__file__).resolve().parents[2] / "plugin_src"
FOLDERS = {"trtrepo::bias_gelu": "bias_gelu", "trtrepo::fused_add_rms_norm": "fused_add_rms_norm"}


def entry_params(source: str, entry: str) -> list[tuple[str, str]]:
    """(type, name) of each parameter of ``extern "C" __global__ void <entry>(...)`` in CUDA ``source``."""
    found = re.search(rf'extern "C" __global__ void {re.escape(entry)}\((.*?)\)\s*\{{', source, re.S)
    assert found, f"no extern \"C\" __global__ entry {entry}"
    params = []
    for raw in found.group(1).split(","):
        m = re.fullmatch(r"(.*?[\s*])(\w+)", " ".join(raw.split()))
        assert m, raw
        params.append((m.group(1).replace(" *", "*").strip(), m.group(2)))
    return params


@pytest.mark.parametrize("op", sorted(FOLDERS))
def test_cu_entries_declare_inputs_scalars_outputs(op: str) -> None:
    from trtrepo.ops.description import load_op_description

    desc = load_op_description(PLUGIN_SRC / FOLDERS[op] / "op.yaml")
    assert desc.kernel is not None
    source = desc.kernel.source.read_text()
    inputs, outputs = list(desc.inputs), [o.name for o in desc.outputs]
    scalars = [s.name for s in desc.kernel.scalars]
    for entry in desc.kernel.entries.values():
        params = entry_params(source, entry)
        assert [name for _, name in params] == inputs + scalars + outputs, entry
        kinds = [t for t, _ in params]
        assert all(t.startswith("const ") and t.endswith("*") for t in kinds[:len(inputs)]), (entry, kinds)
        assert kinds[len(inputs):len(inputs) + len(scalars)] == ["int32_t"] * len(scalars), (entry, kinds)
        assert all(t.endswith("*") and not t.startswith("const") for t in kinds[len(inputs) + len(scalars):]), kinds


def test_entry_params_parser() -> None:
    src = 'extern "C" __global__ void k_f32(const float* x, int32_t n,\n    float *out) {\n}\n'
    assert entry_params(src, "k_f32") == [("const float*", "x"), ("int32_t", "n"), ("float*", "out")]


class _Exprs(list):  # type: ignore[type-arg]
    def __init__(self, n: int) -> None:
        super().__init__([None] * n)


class _Shape(list):  # type: ignore[type-arg]
    def numel(self) -> int:
        total = 1
        for d in self:
            total *= d
        return total


def _fake_trtp(captured: dict[str, Any]) -> types.ModuleType:
    """The few ``tensorrt.plugin`` names register_aot_plugin uses; ``aot_impl`` captures the function."""
    trtp = types.ModuleType("tensorrt.plugin")

    def decorator(kind: str) -> Any:
        def for_op(op: str) -> Any:
            def keep(fn: Any) -> Any:
                captured[kind] = fn
                return fn
            return keep
        return for_op

    trtp.TensorDesc = type("TensorDesc", (), {})  # type: ignore[attr-defined]
    trtp.KernelLaunchParams = type("KernelLaunchParams", (), {})  # type: ignore[attr-defined]
    trtp.SymIntExprs = _Exprs  # type: ignore[attr-defined]
    trtp.SymInt32 = lambda v: v  # type: ignore[attr-defined]
    trtp.cdiv = lambda a, b: -(-a // b)  # type: ignore[attr-defined]
    trtp.min = min  # type: ignore[attr-defined]
    trtp.max = max  # type: ignore[attr-defined]
    trtp.ShapeExpr = int  # type: ignore[attr-defined]
    trtp.from_shape_expr = lambda shape, dtype: ("desc", shape, dtype)  # type: ignore[attr-defined]
    trtp.register = decorator("register")  # type: ignore[attr-defined]
    trtp.aot_impl = decorator("aot_impl")  # type: ignore[attr-defined]
    return trtp


@pytest.mark.parametrize(("which", "shape", "dtype", "attrs", "expected"), [
    ("bias_gelu", (8, 128), "fp32", {}, {"n": 1024, "cols": 128}),
    ("rms_norm", (4, 3, 64), "fp16", {"eps": 1e-5}, {"rows": 12, "cols": 64, "eps_bits": float_bits(1e-5)}),
])
def test_aot_impl_passes_scalars_in_entry_order(which: str, shape: tuple[int, ...], dtype: str,
                                                attrs: dict[str, float], expected: dict[str, int],
                                                request: pytest.FixtureRequest, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from trtrepo import dtypes
    from trtrepo.tensorrt import lowering, tt_adapter

    op: OpDescription = request.getfixturevalue(which)
    assert op.kernel is not None
    captured: dict[str, Any] = {}
    trtp = _fake_trtp(captured)
    package = types.ModuleType("tensorrt")
    package.plugin = trtp  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tensorrt", package)
    monkeypatch.setitem(sys.modules, "tensorrt.plugin", trtp)
    monkeypatch.setattr(tt_adapter, "generate_plugin_converter", lambda op: captured.setdefault("converter", op))
    monkeypatch.setattr(lowering, "_AOT_PLUGINS", {})
    ptx = tmp_path / "op.ptx"
    ptx.write_bytes(b"// ptx")

    lowering.register_aot_plugin(op, ptx)
    assert captured["converter"] == op.name
    desc = types.SimpleNamespace(dtype=types.SimpleNamespace(name=dtypes.get(dtype).tensorrt), shape_expr=_Shape(shape),
                                 ndim=len(shape))
    values = [attrs.get(a.name, a.default) for a in op.attributes]
    entry, code, params, extra = captured["aot_impl"](*[desc] * len(op.inputs), *values, (desc,), 0)

    assert entry == op.kernel.entries[dtype].encode() and code == b"// ptx"
    source = (PLUGIN_SRC / FOLDERS[op.name] / f"{FOLDERS[op.name]}_kernel.cu").read_text()
    names = [n for _, n in entry_params(source, op.kernel.entries[dtype])]
    scalar_names = names[len(op.inputs):len(names) - len(op.outputs)]
    assert sorted(scalar_names) == sorted(expected), names
    assert list(extra) == [expected[n] for n in scalar_names]
    assert params.block_x == 256 and params.grid_x >= 1
