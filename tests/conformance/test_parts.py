"""The harness's small parts: shape cases, the report and its comparison, header versions, the broken copies, and
that importing the harness imports no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trtrepo.conformance import broken, cases, report
from trtrepo.errors import SpecError
from trtrepo.ops.description import OpDescription
from trtrepo.ops.toolchain import header_version

REPO = Path(__file__).resolve().parents[2]


def test_spread_cases(descriptions: dict[str, OpDescription]) -> None:
    desc = descriptions["trtrepo::fused_add_rms_norm"]
    spread = cases.spread_cases(desc)
    assert len(spread) == len(cases.SPREAD) + len(cases.MISALIGNED) + len(cases.FLOAT_VALUES)
    first = next(c for c in spread if c.shapes[0] == (7, 5, 64))
    assert first.shapes == ((7, 5, 64), (7, 5, 64), (64,))
    assert first.static == ((False, False, True), (False, False, True), (True,))  # the last dim static
    assert sum(c.misaligned for c in spread) == len(cases.MISALIGNED)
    assert {c.attributes.get("eps") for c in spread} >= set(cases.FLOAT_VALUES)
    small = cases.spread_cases(desc, small=True)
    assert [c.shapes[0] for c in small] == [(*lead, last) for lead, last in cases.SMALL]
    chunk = cases.spread_cases(descriptions["trtrepo_conf::chunk_sum"])
    assert {c.attributes.get("k") for c in chunk} == {None, *cases.INT_VALUES}


def test_int32_cases_and_signature(descriptions: dict[str, OpDescription]) -> None:
    below, at = cases.int32_cases(descriptions["trtrepo::bias_gelu"])
    assert (below.elements, at.elements) == (2**31 - 2048, 2**31)
    assert below.signature() == at.signature()  # one build-time call of the plugin serves both shapes
    desc = descriptions["trtrepo::fused_add_rms_norm"]
    full = cases.with_attributes(below, desc) if below.op == desc.name else cases.with_attributes(
        cases.int32_cases(desc)[0], desc)
    assert full.attributes == {"eps": 1e-6} and "eps=1e-06" in full.label


def test_report_ok_table_and_files(tmp_path: Path) -> None:
    empty = report.Report()
    assert not empty.ok  # no checks is no proof
    r = report.Report()
    r.extend([report.Check("aot", "-", "ns::op", "fp32", "1x1", "matches_eager[out]", True, "bit-exact", 0.0, 0.0),
              report.Check("host", "11.1.0", "ns::op", "fp16", "1x1", "enqueue", False, "rc -1")])
    r.skipped.append("something")
    assert not r.ok and r.counts() == {"aot/-": {"passed": 1, "total": 1}, "host/11.1.0": {"passed": 0, "total": 1}}
    table = r.table()
    assert "FAIL: 1/2 checks passed" in table and "enqueue: rc -1" in table and "skipped: something" in table
    json_path, table_path = report.write_report(r, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert data["ok"] is False and data["failures"][0]["check"] == "enqueue" and table_path.is_file()


def test_compare(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float16)
    assert report.compare(a, a.clone(), 1e-3, 1e-3)[0:1] == (True,)
    assert report.compare(a, a.clone(), 1e-3, 1e-3)[3] == "bit-exact"
    ok, max_abs, _, detail = report.compare(a + 0.5, a, 1e-3, 1e-3)
    assert not ok and max_abs == pytest.approx(0.5)
    nan = a.clone()
    nan[1] = float("nan")
    ok, _, _, detail = report.compare(nan, a, 1.0, 1.0)
    assert not ok and "unwritten" in detail  # a NaN-poisoned element nobody wrote never matches
    assert not report.compare(a, a.float(), 1.0, 1.0)[0]  # dtype differs
    assert not report.compare(a, a[:2], 1.0, 1.0)[0]  # shape differs
    monkeypatch.setattr(report, "CHUNK", 16)
    big = torch.zeros(report.CHUNK * 3 + 5)
    other = big.clone()
    other[-1] = 1.0  # in the last chunk
    assert not report.compare(other, big, 1e-5, 1e-5)[0]
    assert report.tolerance("fp16") == {"rtol": 2.0**-10, "atol": 2.0**-10}


def test_header_version(tmp_path: Path) -> None:
    (tmp_path / "NvInferVersion.h").write_text(
        "#define TRT_MAJOR_ENTERPRISE 11\n#define TRT_MINOR_ENTERPRISE 1\n#define TRT_PATCH_ENTERPRISE 0\n"
        "#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE //!< major\n#define NV_TENSORRT_MINOR TRT_MINOR_ENTERPRISE\n"
        "#define NV_TENSORRT_PATCH TRT_PATCH_ENTERPRISE\n")
    assert header_version(tmp_path) == "11.1.0"
    (tmp_path / "NvInferVersion.h").write_text("#define NV_TENSORRT_MAJOR 10\n#define NV_TENSORRT_MINOR 9\n"
                                               "#define NV_TENSORRT_PATCH 2\n")
    assert header_version(tmp_path) == "10.9.2"
    assert header_version(tmp_path / "absent") == "unknown"


@pytest.mark.parametrize("kind", broken.KINDS)
def test_broken_copies(kind: str, tmp_path: Path) -> None:
    root = broken.make_broken(kind, REPO / "plugin_src", tmp_path / "src")
    op = root / broken.DEFAULT_OP[kind]
    original = REPO / "plugin_src" / broken.DEFAULT_OP[kind]
    changed = [p.name for p in sorted(op.iterdir()) if p.is_file()
               and (not (original / p.name).is_file() or p.read_bytes() != (original / p.name).read_bytes())]
    expected = {"swapped-scalars": "op.yaml", "wrong-cpu-reference": f"{op.name}_cpu.cpp"}
    assert changed == [expected.get(kind, f"{op.name}_plugin.cpp")]
    if kind == "wrong-cpu-reference":
        assert "0.55f * v" in (op / f"{op.name}_cpu.cpp").read_text()
    elif kind != "swapped-scalars":  # the bundled ops' plugins are generated: the copy holds the broken generated one
        plugin = (op / f"{op.name}_plugin.cpp").read_text()
        assert '#include "launch.h"' in plugin and "TRTREPO_REGISTER_PLUGIN" in plugin
        assert ("kTrtrepoF16;  // deliberately wrong" if kind == "wrong-dtype" else '"epsilon"') in plugin
    others = [p for p in sorted((REPO / "plugin_src").iterdir()) if (p / "op.yaml").is_file() and p.name != op.name]
    assert others and all((root / p.name / "op.yaml").read_bytes() == (p / "op.yaml").read_bytes() for p in others)
    if kind == "swapped-scalars":
        from trtrepo.ops.description import load_op_description

        assert [s.name for s in load_op_description(op / "op.yaml").require_kernel().scalars] == ["cols", "n"]


def test_broken_refuses_what_it_cannot_make(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not one of"):
        broken.make_broken("nope", REPO / "plugin_src", tmp_path)
    with pytest.raises(SpecError, match="not found"):  # bias_gelu serializes no eps
        broken.make_broken("bad-serialization", REPO / "plugin_src", tmp_path, "bias_gelu")


def test_importing_the_harness_imports_no_torch() -> None:
    code = ("import sys, trtrepo.conformance.run, trtrepo.conformance.aot, trtrepo.conformance.host, "
            "trtrepo.conformance.__main__; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'tensorrt', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                         check=True)
    assert out.stdout.strip() == "[]"
