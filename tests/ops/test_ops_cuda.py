"""The CUDA op library on a GPU: both kernels against their op.yaml decompositions, opcheck, torch.export on cuda.

Marked ``gpu``; skips unless torch sees a CUDA device and nvcc is found. Run on a GPU machine with
``python -m pytest -m gpu`` (in its own process: one op library per process, and tests/ops/conftest.py's
``built_ops`` loads a CPU-only one).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from trtrepo import deps

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SRC = REPO / "plugin_src"
EXAMPLES = REPO / "examples"

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not deps.has_cuda_torch(), reason="needs CUDA torch and a GPU: torch.cuda.is_available() is "
                       "False here (or torch is missing); run `python -m pytest -m gpu` on a GPU machine"),
    pytest.mark.skipif(deps.find_nvcc() is None, reason="needs nvcc to compile the CUDA kernels: none found via "
                       "TRTREPO_NVCC, CUDA_HOME, PATH or /usr/local/cuda"),
]

if TYPE_CHECKING:
    import torch
else:
    torch = pytest.importorskip("torch")

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# rows x cols: odd and vector-unfriendly cols (1, 3, 127, 8193), one past the warp-per-row limit (1025), a 3-D input,
# and large row counts that exercise the grid-stride loops.
SHAPES: list[tuple[int, ...]] = [(1, 1), (5, 3), (33, 127), (9, 1024), (9, 1025), (3, 8193), (2, 5, 127)]
LARGE: list[tuple[int, ...]] = [(100_003, 3), (65_536, 64), (2_048, 4_096)]
# Vector-friendly cols (cols % 8 == 0 for every dtype): only the pointer offset forces the scalar path.
MISALIGNED: list[tuple[int, ...]] = [(5, 8), (3, 1024), (4, 4096)]


def _tolerance(dtype: torch.dtype) -> dict[str, float]:
    """Same rule as tests/ops/test_ops_cpu.py (and scripts/gpu_ops_check.py, which passed on an H200): both sides
    compute in fp32 and round once. fp32: summation order and CUDA's tanhf/rsqrtf vs the CPU's differ by a few ulp
    (1e-5 relative is ~80 ulp of headroom for an 8193-long fp32 sum). fp16/bf16: the fp32 values agree to ~1e-6
    (the fp16/bf16 gelu uses an exp2-based tanh, ~1e-6 relative), so the rounded results differ by at most one ulp
    of the dtype, i.e. finfo.eps relative; atol covers values below 1, where one ulp is at most eps."""
    if dtype == torch.float32:
        return {"rtol": 1e-5, "atol": 1e-5}
    eps = torch.finfo(dtype).eps
    return {"rtol": eps, "atol": eps}


@pytest.fixture(scope="session")
def cuda_ops():  # -> BuiltOps
    """The CPU+CUDA op library, built once (cached in TRTREPO_CACHE_DIR or ~/.cache/trtrepo) and loaded."""
    from trtrepo import settings
    from trtrepo.ops.build import build_ops
    from trtrepo.ops.library import load_ops

    built = build_ops([PLUGIN_SRC], settings.cache_dir(), with_cuda=True)
    assert built.with_cuda
    load_ops(built)
    no_cuda = [name for name in built.descriptions
               if not torch._C._dispatch_has_kernel_for_dispatch_key(name, "CUDA")]
    if no_cuda:
        pytest.fail(f"{', '.join(no_cuda)} have no CUDA kernel in this process: a CPU-only op library was loaded "
                    "first (one op library per process); run the gpu tier on its own: python -m pytest -m gpu")
    return built


def _close(got: torch.Tensor, want: torch.Tensor, tol: dict[str, float]) -> None:
    torch.testing.assert_close(got, want, rtol=tol["rtol"], atol=tol["atol"])


def _cuda(shape: tuple[int, ...], dtype: torch.dtype, gen: torch.Generator, scale: float = 1.0,
          misaligned: bool = False) -> torch.Tensor:
    """Seeded values as a contiguous CUDA tensor; ``misaligned`` puts it one element past an aligned allocation."""
    n = 1
    for d in shape:
        n *= d
    values = (scale * torch.randn(n, generator=gen)).to(dtype)
    if not misaligned:
        return values.reshape(shape).cuda()
    base = torch.empty(n + 1, dtype=dtype, device="cuda")
    base[1:] = values.cuda()
    out = base[1:].view(shape)
    assert out.is_contiguous() and out.data_ptr() % 16 != 0
    return out


def _check_bias_gelu(built, shape: tuple[int, ...], dtype: torch.dtype, misaligned: bool = False) -> None:
    gen = torch.Generator().manual_seed(shape[-1] * 131 + len(shape))
    x = _cuda(shape, dtype, gen, 3.0, misaligned)
    bias = _cuda((shape[-1],), dtype, gen, 1.0, misaligned)
    ref = built.descriptions["trtrepo::bias_gelu"].load_decomposition()(x.cpu(), bias.cpu())
    out = torch.ops.trtrepo.bias_gelu(x, bias)
    assert out.is_cuda and out.dtype == dtype and out.shape == x.shape
    _close(out.cpu(), ref, _tolerance(dtype))


def _check_rms_norm(built, shape: tuple[int, ...], dtype: torch.dtype, misaligned: bool = False) -> None:
    gen = torch.Generator().manual_seed(shape[-1] * 7 + len(shape))
    x = _cuda(shape, dtype, gen, 1.0, misaligned)
    residual = _cuda(shape, dtype, gen, 1.0, misaligned)
    weight = (1 + 0.1 * torch.randn(shape[-1], generator=gen)).to(dtype).cuda()
    ref_out, ref_res = built.descriptions["trtrepo::fused_add_rms_norm"].load_decomposition()(
        x.cpu(), residual.cpu(), weight.cpu(), 1e-5)
    out, res = torch.ops.trtrepo.fused_add_rms_norm(x, residual, weight, 1e-5)
    assert out.is_cuda and res.is_cuda and out.dtype == res.dtype == dtype and out.shape == res.shape == x.shape
    torch.testing.assert_close(res.cpu(), ref_res, rtol=0, atol=0)  # one rounding of the same fp32 sum: bit-exact
    _close(out.cpu(), ref_out, _tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES + LARGE, ids=str)
def test_bias_gelu_cuda_matches_decomposition(cuda_ops, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    _check_bias_gelu(cuda_ops, shape, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES + LARGE, ids=str)
def test_fused_add_rms_norm_cuda_matches_decomposition(cuda_ops, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    _check_rms_norm(cuda_ops, shape, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", MISALIGNED, ids=str)
def test_misaligned_pointers_take_the_scalar_path(cuda_ops, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """Inputs starting one element past a 16-byte boundary: the 16-byte vector path must not be taken."""
    _check_bias_gelu(cuda_ops, shape, dtype, misaligned=True)
    _check_rms_norm(cuda_ops, shape, dtype, misaligned=True)


def test_results_stay_on_the_current_stream(cuda_ops) -> None:
    """The launch uses torch's current stream: work queued on a side stream is ordered with the op's kernel."""
    x = torch.randn(4096, 1024, device="cuda")
    bias = torch.randn(1024, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())  # x and bias were made on the default stream
    with torch.cuda.stream(side):
        # The side stream is held back ~50 ms before it writes y: an op launched on any other stream would read y
        # before it is written (a deterministic failure, not a race that usually passes).
        torch.cuda._sleep(50_000_000)
        y = x * 2  # written on the side stream, read by the op on the same stream
        out = torch.ops.trtrepo.bias_gelu(y, bias)
    side.synchronize()
    ref = cuda_ops.descriptions["trtrepo::bias_gelu"].load_decomposition()((x * 2).cpu(), bias.cpu())
    tol = _tolerance(torch.float32)
    torch.testing.assert_close(out.cpu(), ref, rtol=tol["rtol"], atol=tol["atol"])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_opcheck_cuda(cuda_ops, dtype: torch.dtype) -> None:
    """Schema, fake kernel, autograd registration and CUDA dispatch agree (torch.library.opcheck raises otherwise)."""
    x = torch.randn(3, 5, 17, dtype=dtype, device="cuda")
    torch.library.opcheck(torch.ops.trtrepo.bias_gelu.default, (x, torch.randn(17, dtype=dtype, device="cuda")))
    torch.library.opcheck(torch.ops.trtrepo.fused_add_rms_norm.default,
                          (x, torch.randn_like(x), torch.randn(17, dtype=dtype, device="cuda"), 1e-5))


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"trtrepo_test_cuda_example_{name}", EXAMPLES / name / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _custom_op_nodes(ep) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in ep.graph.nodes:
        if node.op == "call_function" and str(node.target).startswith("trtrepo."):
            counts[str(node.target)] = counts.get(str(node.target), 0) + 1
    return counts


EXPECTED_NODES = {"trtrepo.bias_gelu.default": 1, "trtrepo.fused_add_rms_norm.default": 1}
# Exported program vs eager on the same GPU: the same kernels on the same inputs; cuBLAS may still pick another GEMM
# algorithm for a call made through the exported graph, which moves fp32 results by a few ulp (1e-5 passed in
# scripts/gpu_ops_check.py's export check on an H200).
EXPORT_TOL = {"rtol": 1e-5, "atol": 1e-5}


def test_gelu_block_exports_on_cuda_and_matches_eager(cuda_ops) -> None:
    from torch.export import Dim

    net = _example("gelu_block").build().cuda()
    ep = torch.export.export(net, (torch.randn(4, 64, device="cuda"),),
                             dynamic_shapes={"x": {0: Dim("batch", min=1, max=64)}})
    assert _custom_op_nodes(ep) == EXPECTED_NODES
    module = ep.module()
    for batch in (1, 3, 64):
        x = torch.randn(batch, 64, device="cuda")
        with torch.no_grad():
            got, want = module(x), net(x)
        assert got.is_cuda and got.shape == (batch, 64)
        _close(got, want, EXPORT_TOL)


def test_seq_block_exports_on_cuda_and_matches_eager(cuda_ops) -> None:
    from torch.export import Dim

    net = _example("seq_block").build().cuda()
    shapes = {"x": {0: Dim("batch", min=1, max=16), 1: Dim("seq", min=1, max=128)}}
    ep = torch.export.export(net, (torch.randn(2, 8, 64, device="cuda"),), dynamic_shapes=shapes)
    assert _custom_op_nodes(ep) == EXPECTED_NODES
    module = ep.module()
    for b, s in ((1, 1), (3, 17), (16, 128)):
        x = torch.randn(b, s, 64, device="cuda")
        with torch.no_grad():
            got, want = module(x), net(x)
        assert len(got) == 2
        for g, w in zip(got, want, strict=True):
            assert g.is_cuda and g.shape == (b, s, 64)
            _close(g, w, EXPORT_TOL)
