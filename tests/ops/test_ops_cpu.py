"""The loaded CPU ops: what `trtrepo ops check` (tests/ops/test_ops_check.py: kernels vs decompositions, schema,
fake kernels, opcheck over the shape spread) does not cover — attribute semantics, argument checks, loading."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

PLUGIN_SRC = __import__("pathlib").Path(__file__).resolve().parents[2] / "plugin_src"


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
    """The generated binding (bias_gelu: C++ CPU reference) and the checked decomposition (fused_add_rms_norm: no
    CPU reference) refuse what op.yaml's patterns and dtypes refuse, in the same words."""
    with pytest.raises(RuntimeError, match=r"trtrepo::bias_gelu: input bias must have shape \[D\]: bias\[0\] is 7 "
                                           r"but x\[-1\] gives D = 8"):
        torch.ops.trtrepo.bias_gelu(torch.randn(2, 8), torch.randn(7))
    with pytest.raises(RuntimeError, match=r"trtrepo::bias_gelu: input x is Double; op.yaml dtypes: fp32, fp16, bf16"):
        torch.ops.trtrepo.bias_gelu(torch.randn(2, 8, dtype=torch.float64), torch.randn(8, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"trtrepo::fused_add_rms_norm: input residual: its leading dims \(...\) "
                                           r"\[3\] differ from the other inputs' \[2\]"):
        torch.ops.trtrepo.fused_add_rms_norm(torch.randn(2, 8), torch.randn(3, 8), torch.ones(8), 1e-6)
    with pytest.raises(RuntimeError, match=r"fused_add_rms_norm: input residual: its leading dims \(...\) \[1\]"):
        torch.ops.trtrepo.fused_add_rms_norm(torch.randn(2, 8), torch.randn(1, 8), torch.ones(8), 1e-6)  # no broadcast
    with pytest.raises(RuntimeError, match=r"fused_add_rms_norm: input x is float64; op.yaml dtypes: fp32, fp16, bf16"):
        torch.ops.trtrepo.fused_add_rms_norm(*(torch.randn(2, 8, dtype=torch.float64),) * 2,
                                             torch.ones(8, dtype=torch.float64), 1e-6)
    with pytest.raises(RuntimeError, match=r"fused_add_rms_norm: input weight must have shape \[D\]: weight\[0\] is 4"):
        torch.ops.trtrepo.fused_add_rms_norm(torch.randn(2, 8), torch.randn(2, 8), torch.ones(4), 1e-6)


def test_fake_kernels_follow_output_rules(built_ops) -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.empty(5, 7, dtype=torch.float16)
        out = torch.ops.trtrepo.bias_gelu(x, torch.empty(7, dtype=torch.float16))
        a, b = torch.ops.trtrepo.fused_add_rms_norm(x, x, torch.empty(7, dtype=torch.float16), 1e-6)
    assert (out.shape, out.dtype) == ((5, 7), torch.float16)
    assert a.shape == b.shape == (5, 7) and a.dtype == b.dtype == torch.float16
    with FakeTensorMode():  # a shape rule with a symbolic-free input: [..., 2H] -> [..., H]
        gated = torch.ops.trtrepo.silu_and_mul(torch.empty(3, 4, 10, dtype=torch.bfloat16))
    assert (gated.shape, gated.dtype) == ((3, 4, 5), torch.bfloat16)


def test_silu_and_mul_refuses_an_odd_last_dim(built_ops) -> None:
    with pytest.raises(RuntimeError, match=r"input x must have shape \[..., 2\*H\]: x\[-1\] must be a multiple of 2, "
                                           "got 7"):
        torch.ops.trtrepo.silu_and_mul(torch.randn(2, 7))


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
