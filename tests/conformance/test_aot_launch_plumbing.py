"""The plumbing of the AOT launches on the CPU, with a stand-in of the CUDA driver that runs bias_gelu's entry from
the raw argument list (pointers read and written through ctypes, sizes from the scalar arguments): the argument order
TensorRT uses, the guard-framed NaN-poisoned outputs and the comparison with the eager op. It proves the harness's
own code, not the kernels (the GPU lane launches the real PTX); a swapped scalar and a write past the output fail it.
Builds the CPU op library (integration)."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from trtrepo import deps
from trtrepo.conformance import aot, qdp
from trtrepo.conformance.cases import spread_cases
from trtrepo.conformance.driver import Arg

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(deps.find_nvcc() is None, reason="nvcc not found: the build makes PTX")]


class BiasGeluOnCpu:
    """Runs ``entry(x, bias, n, cols, out)`` in numpy float32 (fp32 / fp16 entries); ``overrun`` writes one element
    past the output."""

    def __init__(self, overrun: bool = False) -> None:
        self.overrun = overrun
        self.names: list[str] = []
        self.calls: list[list[tuple[str, int]]] = []

    def load_ptx(self, ptx: bytes) -> int:
        assert b".visible .entry trtrepo_bias_gelu_f32" in ptx  # the PTX trtrepo built, as aot_impl returned it
        return 1

    def function(self, module: int, name: str) -> int:
        self.names.append(name)
        return len(self.names)

    def unload(self, module: int) -> None:
        pass

    def launch(self, fn: int, grid: int, block: int, shared_memory: int, stream: int, args: Sequence[Arg]) -> None:
        import numpy as np

        self.calls.append([(a.ptx_type, a.value) for a in args])
        name = self.names[fn - 1]
        kind = {"trtrepo_bias_gelu_f32": np.float32, "trtrepo_bias_gelu_f16": np.float16}[name]
        x_ptr, bias_ptr, n, cols, out_ptr = (a.value for a in args)
        item = np.dtype(kind).itemsize

        def read(ptr: int, count: int) -> Any:
            return np.frombuffer(ctypes.string_at(ptr, count * item), dtype=kind).astype(np.float32)

        x = read(x_ptr, n)
        bias = read(bias_ptr, cols)
        v = x + np.tile(bias, n // cols + 1)[:n]
        out = (0.5 * v * (1 + np.tanh(np.float32(0.7978845608028654) * (v + np.float32(0.044715) * v**3))))
        raw = out.astype(kind).tobytes() + (b"\0" * item if self.overrun else b"")
        ctypes.memmove(out_ptr, raw, len(raw))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The CPU op library of plugin_src + its PTX, loaded (the eager reference)."""
    from trtrepo.ops.build import build_ops
    from trtrepo.ops.library import load_ops

    result = build_ops([REPO / "plugin_src"], tmp_path_factory.mktemp("cache"), with_cuda=False)
    load_ops(result)
    return result


def launches(built: Any, monkeypatch: pytest.MonkeyPatch, desc: Any = None) -> list[aot.AotLaunch]:
    from trtrepo.tensorrt import lowering

    monkeypatch.setattr(lowering, "_AOT_PLUGINS", {})
    monkeypatch.setattr(qdp, "_CAPTURED", {})
    desc = desc or built.descriptions["trtrepo::bias_gelu"]
    planned, checks = aot.plan_aot({desc.name: desc}, built.ptx, spread_cases(desc, small=True))
    assert all(c.ok for c in checks)
    return [x for x in planned if x.dtype in ("fp32", "fp16")]


def test_launch_order_outputs_and_comparison(built: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = BiasGeluOnCpu()
    todo = launches(built, monkeypatch)
    checks = aot.run_aot(todo, device="cpu", driver=driver)
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok][:3]
    assert {c.check for c in checks} == {"matches_eager[out]", "no_write_outside_outputs"}
    first = driver.calls[0]
    assert [t for t, _ in first] == ["u64", "u64", "u32", "u32", "u64"]  # inputs, scalars, outputs
    assert [v for _, v in first[2:4]] == list(todo[0].scalars)


def test_a_swapped_scalar_fails(built: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from trtrepo.conformance.broken import make_broken
    from trtrepo.ops.description import load_op_description

    root = make_broken("swapped-scalars", REPO / "plugin_src", tmp_path)
    swapped = load_op_description(root / "bias_gelu" / "op.yaml")
    checks = aot.run_aot(launches(built, monkeypatch, swapped), device="cpu", driver=BiasGeluOnCpu())
    failed = [c for c in checks if not c.ok]
    assert failed and {c.check for c in failed} == {"matches_eager[out]"}
    assert any("NaN" in c.detail for c in failed)  # elements past the swapped n stay poisoned


def test_a_write_past_the_output_fails(built: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = aot.run_aot(launches(built, monkeypatch), device="cpu", driver=BiasGeluOnCpu(overrun=True))
    assert {c.check for c in checks if not c.ok} == {"no_write_outside_outputs"}
