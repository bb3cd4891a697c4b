"""The loaded CPU ops against their pure-PyTorch decompositions, opcheck, schema agreement, fake kernels."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

PLUGIN_SRC = __import__("pathlib").Path(__file__).resolve().parents[2] / "plugin_src"

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# rows x cols, odd and vector-unfriendly cols included (1, 3, 127, 8193), plus a 3-D input.
SHAPES = [(1, 1), (4, 3), (2, 5, 127), (6, 64), (3, 4096), (2, 8193)]


def _tolerance(dtype: torch.dtype) -> dict[str, float]:
    """Both sides compute in fp32 and round once. fp32: they differ only in summation order and the libm tanh used,
    a few ulp (1e-5 relative is ~80 ulp of headroom for an 8193-long fp32 sum). fp16/bf16: the fp32 values agree
    to ~1e-6, so the rounded results differ by at most one ulp of the dtype, i.e. finfo.eps relative; atol covers
    values below 1, where one ulp is at most eps."""
    if dtype == torch.float32:
        return {"rtol": 1e-5, "atol": 1e-5}
    eps = torch.finfo(dtype).eps
    return {"rtol": eps, "atol": eps}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_bias_gelu_matches_decomposition(built_ops, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(shape, generator=gen)).to(dtype)
    bias = torch.randn(shape[-1], generator=gen).to(dtype)
    ref = built_ops.descriptions["trtrepo::bias_gelu"].load_decomposition()(x, bias)
    out = torch.ops.trtrepo.bias_gelu(x, bias)
    assert out.dtype == dtype and out.shape == x.shape
    torch.testing.assert_close(out, ref, **_tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fused_add_rms_norm_matches_decomposition(built_ops, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=gen).to(dtype)
    residual = torch.randn(shape, generator=gen).to(dtype)
    weight = (1 + 0.1 * torch.randn(shape[-1], generator=gen)).to(dtype)
    ref_out, ref_res = built_ops.descriptions["trtrepo::fused_add_rms_norm"].load_decomposition()(
        x, residual, weight, 1e-5)
    out, res = torch.ops.trtrepo.fused_add_rms_norm(x, residual, weight, 1e-5)
    assert out.dtype == res.dtype == dtype and out.shape == res.shape == x.shape
    torch.testing.assert_close(res, ref_res, rtol=0, atol=0)  # one rounding of the same fp32 sum: bit-exact
    torch.testing.assert_close(out, ref_out, **_tolerance(dtype))


def test_eps_is_used(built_ops) -> None:
    x = torch.full((1, 4), 1e-3)
    zero = torch.zeros_like(x)
    w = torch.ones(4)
    small, _ = torch.ops.trtrepo.fused_add_rms_norm(x, zero, w, 1e-12)
    big, _ = torch.ops.trtrepo.fused_add_rms_norm(x, zero, w, 1.0)
    torch.testing.assert_close(small, torch.ones_like(x), rtol=1e-4, atol=0)
    torch.testing.assert_close(big, x / (1e-6 + 1.0) ** 0.5)


def test_default_eps_from_schema(built_ops) -> None:
    x = torch.randn(2, 8)
    r = torch.randn(2, 8)
    w = torch.ones(8)
    a, _ = torch.ops.trtrepo.fused_add_rms_norm(x, r, w)
    b, _ = torch.ops.trtrepo.fused_add_rms_norm(x, r, w, 1e-6)
    assert torch.equal(a, b)


def test_bad_arguments_are_rejected(built_ops) -> None:
    with pytest.raises(RuntimeError, match=r"bias must have shape \[8\]"):
        torch.ops.trtrepo.bias_gelu(torch.randn(2, 8), torch.randn(7))
    with pytest.raises(RuntimeError, match="dtype must be float32, float16 or bfloat16"):
        torch.ops.trtrepo.bias_gelu(torch.randn(2, 8, dtype=torch.float64), torch.randn(8, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="residual shape"):
        torch.ops.trtrepo.fused_add_rms_norm(torch.randn(2, 8), torch.randn(3, 8), torch.ones(8), 1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_opcheck(built_ops, dtype: torch.dtype) -> None:
    """Schema, fake kernel, autograd registration and dispatch agree (torch.library.opcheck raises otherwise)."""
    x = torch.randn(3, 5, 17, dtype=dtype)
    torch.library.opcheck(torch.ops.trtrepo.bias_gelu.default, (x, torch.randn(17, dtype=dtype)))
    torch.library.opcheck(torch.ops.trtrepo.fused_add_rms_norm.default,
                          (x, torch.randn_like(x), torch.randn(17, dtype=dtype), 1e-5))


def test_schema_matches_op_yaml(built_ops) -> None:
    for desc in built_ops.descriptions.values():
        declared = torch._C.parse_schema(f"{desc.namespace}::{desc.schema}")
        assert str(desc.torch_op()._schema) == str(declared), desc.path


def test_fake_kernels_follow_output_rules(built_ops) -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(5, 7, dtype=torch.float16)
        out = torch.ops.trtrepo.bias_gelu(x, torch.empty(7, dtype=torch.float16))
        a, b = torch.ops.trtrepo.fused_add_rms_norm(x, x, torch.empty(7, dtype=torch.float16), 1e-6)
    assert (out.shape, out.dtype) == ((5, 7), torch.float16)
    assert a.shape == b.shape == (5, 7) and a.dtype == b.dtype == torch.float16


def test_load_ops_is_idempotent(built_ops) -> None:
    from trtrepo.ops.library import load_ops

    load_ops(built_ops)  # a second registration of a fake would raise
    load_ops(built_ops)
    assert torch.ops.trtrepo.bias_gelu(torch.zeros(1, 2), torch.zeros(2)).abs().max().item() == 0.0


def test_same_ops_from_another_cache_folder_are_not_loaded_twice(built_ops, tmp_path) -> None:
    """Two stages may point at different caches: loading the second copy of
    the ops would be a duplicate registration, so load_ops keeps the first."""
    import dataclasses
    import shutil

    from trtrepo.ops import library

    copy = tmp_path / "libcopy.so"
    shutil.copy2(built_ops.torch_library, copy)
    first = built_ops.torch_libraries[0]
    library.load_ops(dataclasses.replace(built_ops, torch_libraries=(dataclasses.replace(first, path=copy),)))
    assert copy.resolve() not in library._LOADED_LIBRARIES
    assert torch.ops.trtrepo.bias_gelu(torch.zeros(1, 2), torch.zeros(2)).abs().max().item() == 0.0


def test_ensure_loaded_builds_nothing_when_loaded(built_ops) -> None:
    from trtrepo.ops import build, library

    before = build.compile_count()
    assert library.ensure_loaded([PLUGIN_SRC]).descriptions.keys() == built_ops.descriptions.keys()
    assert build.compile_count() == before
