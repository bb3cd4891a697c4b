"""torch.export of the example models with dynamic dims: each custom op stays ONE node, results match eager."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest

torch = pytest.importorskip("torch")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"trtrepo_test_example_{name}", EXAMPLES / name / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _custom_op_nodes(ep: torch.export.ExportedProgram) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in ep.graph.nodes:
        if node.op == "call_function" and str(node.target).startswith("trtrepo."):
            counts[str(node.target)] = counts.get(str(node.target), 0) + 1
    return counts


EXPECTED = {"trtrepo.bias_gelu.default": 1, "trtrepo.fused_add_rms_norm.default": 1}


def test_gelu_block_exports_with_dynamic_batch(built_ops) -> None:
    from torch.export import Dim

    net = _example("gelu_block").build()
    ep = torch.export.export(net, (torch.randn(4, 64),), dynamic_shapes={"x": {0: Dim("batch", min=1, max=64)}})
    assert _custom_op_nodes(ep) == EXPECTED
    for batch in (1, 3, 64):
        x = torch.randn(batch, 64)
        torch.testing.assert_close(ep.module()(x), net(x), rtol=0, atol=0)


def test_seq_block_exports_with_dynamic_batch_and_sequence(built_ops) -> None:
    from torch.export import Dim

    net = _example("seq_block").build()
    shapes = {"x": {0: Dim("batch", min=1, max=16), 1: Dim("seq", min=1, max=128)}}
    ep = torch.export.export(net, (torch.randn(2, 8, 64),), dynamic_shapes=shapes)
    assert _custom_op_nodes(ep) == EXPECTED
    for b, s in ((1, 1), (3, 17), (16, 128)):
        x = torch.randn(b, s, 64)
        got, want = ep.module()(x), net(x)
        assert len(got) == 2 and got[0].shape == (b, s, 64)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_examples_are_deterministic(built_ops) -> None:
    a = _example("gelu_block").build()
    b = _example("gelu_block").build()
    x = torch.randn(2, 64)
    assert torch.equal(a(x), b(x))
    assert list(inspect.signature(a.forward).parameters) == ["x"]  # forward argument names are the model inputs


def test_saved_program_runs_after_plain_load_library(built_ops, tmp_path: Path) -> None:
    """What the generated Triton model.py does: a fresh process that only load_library()s the .so (no Python fakes)
    and registers the decomposition of the op without a C++ CPU reference (fused_add_rms_norm) as its CPU kernel
    deserializes the ExportedProgram and runs it."""
    import subprocess
    import sys

    from torch.export import Dim

    net = _example("gelu_block").build()
    ep = torch.export.export(net, (torch.randn(4, 64),), dynamic_shapes={"x": {0: Dim("batch", min=1, max=64)}})
    torch.export.save(ep, str(tmp_path / "model.pt2"))
    x = torch.randn(5, 64)
    torch.save({"x": x, "y": net(x)}, tmp_path / "io.pt")
    decomp = EXAMPLES.parent / "plugin_src" / "fused_add_rms_norm" / "fused_add_rms_norm_decomp.py"
    script = (
        "import sys, torch\n"
        f"torch.ops.load_library({str(built_ops.torch_library)!r})\n"
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('decomp', {str(decomp)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert not torch._C._dispatch_has_kernel_for_dispatch_key('trtrepo::fused_add_rms_norm', 'CPU')\n"
        "lib = torch.library.Library('trtrepo', 'IMPL')\n"
        "lib.impl('fused_add_rms_norm', module.fused_add_rms_norm, 'CPU')\n"
        f"ep = torch.export.load({str(tmp_path / 'model.pt2')!r})\n"
        f"io = torch.load({str(tmp_path / 'io.pt')!r})\n"
        "assert not any(m.startswith('trtrepo') for m in sys.modules), 'trtrepo was imported'\n"
        "print('EQUAL' if torch.equal(ep.module()(io['x']), io['y']) else 'DIFFERENT')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("EQUAL")
