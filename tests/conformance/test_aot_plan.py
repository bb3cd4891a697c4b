"""The AOT plan without a GPU: trtrepo's lowering at every case, resolved and checked against the PTX ABI, the
concrete launch rule, the int32 refusal and the float attribute bits — and each check fails when what it guards
breaks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from trtrepo.conformance import aot, qdp
from trtrepo.conformance.cases import int32_cases, spread_cases
from trtrepo.ops.description import OpDescription


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch: pytest.MonkeyPatch) -> None:
    from trtrepo.tensorrt import lowering

    monkeypatch.setattr(lowering, "_AOT_PLUGINS", {})
    monkeypatch.setattr(qdp, "_CAPTURED", {})


def fake_ptx(desc: OpDescription, order: str = "abi") -> str:
    """PTX text with the op's entries; ``order="pointers-first"``: outputs before the scalars (the old ABI)."""
    assert desc.kernel is not None
    n_in, n_sc, n_out = len(desc.inputs), len(desc.kernel.scalars), len(desc.outputs)
    kinds = ["u64"] * n_in + ["u32"] * n_sc + ["u64"] * n_out
    if order == "pointers-first":
        kinds = ["u64"] * (n_in + n_out) + ["u32"] * n_sc
    out = []
    for entry in desc.kernel.entries.values():
        params = ",\n".join(f"\t.param .{t} {entry}_param_{i}" for i, t in enumerate(kinds))
        out.append(f".visible .entry {entry}(\n{params}\n)\n{{\n\tret;\n}}\n")
    return "".join(out)


def plan(descriptions: dict[str, OpDescription], tmp_path: Path, ops: list[str], order: str = "abi",
         small: bool = False) -> tuple[list[aot.AotLaunch], list[aot.Check]]:
    chosen = {name: descriptions[name] for name in ops}
    ptx = {}
    cases = []
    for name, desc in chosen.items():
        ptx[name] = tmp_path / f"{desc.op_name}.ptx"
        ptx[name].write_text(fake_ptx(desc, order))
        cases += spread_cases(desc, small=small) + ([] if small else int32_cases(desc))
    return aot.plan_aot(chosen, ptx, cases)


def test_every_op_plans_and_passes(descriptions: dict[str, OpDescription], tmp_path: Path) -> None:
    launches, checks = plan(descriptions, tmp_path, sorted(descriptions))
    failed = [c for c in checks if not c.ok]
    assert not failed, failed[:3]
    kinds = Counter(c.check for c in checks)
    assert kinds["register_aot_plugin"] == len(descriptions)
    assert kinds["ptx_abi"] == kinds["aot_impl_kernel"] == kinds["output_descriptors"] > 150
    # one op x 3 dtypes x spread, int32 cases in fp16 only
    assert {launch.desc.name for launch in launches} == set(descriptions)
    assert all(launch.param_types[0] == "u64" for launch in launches)


def test_int32_limit_is_refused_by_trtrepo(descriptions: dict[str, OpDescription], tmp_path: Path) -> None:
    launches, checks = plan(descriptions, tmp_path, ["trtrepo::bias_gelu", "trtrepo::fused_add_rms_norm"])
    refusals = [c for c in checks if c.check == "int32_refusal"]
    assert len(refusals) == 1 and refusals[0].ok and refusals[0].op == "trtrepo::bias_gelu"
    assert "kernel scalar n = 2147483648 does not fit int32" in refusals[0].detail
    assert refusals[0].dtype == "fp16" and "2097152x1024" in refusals[0].case
    # fused_add_rms_norm takes rows and cols, each far below 2^31: launched at 2^31 elements, not refused
    edge = [x for x in launches if x.case.origin == "int32" and x.desc.name == "trtrepo::fused_add_rms_norm"]
    assert [x.case.elements for x in edge] == [2**31 - 2048, 2**31] and all(x.refusal is None for x in edge)
    below = next(x for x in launches if x.case.origin == "int32" and x.desc.name == "trtrepo::bias_gelu")
    assert below.scalars == (2**31 - 2048, 1024)


def test_a_missing_refusal_fails_the_check(descriptions: dict[str, OpDescription], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from trtrepo.tensorrt import launch

    real = launch.concrete_launch

    def lenient(desc: OpDescription, shapes: object, dtype: str, attrs: object = None) -> object:
        try:
            return real(desc, shapes, dtype, attrs)  # type: ignore[arg-type]
        except Exception:
            return launch.ConcreteLaunch(1, 256, 0, (0, 0))

    monkeypatch.setattr(launch, "concrete_launch", lenient)
    _, checks = plan(descriptions, tmp_path, ["trtrepo::bias_gelu"])
    refusal = [c for c in checks if c.check == "int32_refusal"]
    assert len(refusal) == 1 and not refusal[0].ok and "did not refuse" in refusal[0].detail


def test_float_attribute_bits(descriptions: dict[str, OpDescription], tmp_path: Path) -> None:
    _, checks = plan(descriptions, tmp_path, ["trtrepo::fused_add_rms_norm"])
    bits = [c for c in checks if c.check == "float_attribute_bits"]
    assert bits and all(c.ok for c in bits)
    subnormal = [c for c in bits if "eps=3e-39" in c.case]
    assert len(subnormal) == 3 and "0x0020aac8" in subnormal[0].detail  # float32(3e-39), a subnormal
    assert aot.float_attribute_bits(1e-6) == 0x358637BD and aot.float_attribute_bits(-0.0) == -(2**31)


def test_wrong_float_bits_fail_the_check(descriptions: dict[str, OpDescription], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import struct

    from trtrepo.ops import expr

    # float64 bits truncated to 32: what a mistaken float_bits would hand the kernel
    monkeypatch.setattr(expr, "float_bits", lambda v: struct.unpack("<q", struct.pack("<d", v))[0] & 0x7FFFFFFF)
    _, checks = plan(descriptions, tmp_path, ["trtrepo::fused_add_rms_norm"], small=True)
    bits = [c for c in checks if c.check == "float_attribute_bits"]
    assert bits and not any(c.ok for c in bits)


def test_pointers_before_scalars_fail_the_abi_check(descriptions: dict[str, OpDescription], tmp_path: Path) -> None:
    launches, checks = plan(descriptions, tmp_path, ["trtrepo::bias_gelu"], order="pointers-first", small=True)
    abi = [c for c in checks if c.check == "ptx_abi"]
    assert abi and not any(c.ok for c in abi)
    assert launches == []  # nothing is launched against a mismatched entry


def test_shape_rule_op_descriptors(descriptions: dict[str, OpDescription], tmp_path: Path) -> None:
    launches, checks = plan(descriptions, tmp_path, ["trtrepo_conf::chunk_sum"])
    assert not [c for c in checks if not c.ok]
    k3 = next(x for x in launches if x.case.attributes == {"k": 3} and x.dtype == "fp32")
    assert k3.output_shapes == ((33, 43),) and k3.scalars == (33, 127, 3)
    assert k3.grid == 12  # ceil(33 * 43 / 128)
