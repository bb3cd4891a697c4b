"""``trtrepo ops check`` passes the project's ops, a user's op in an outside root and what ``ops new`` writes, and
fails (naming the op, the case and the worst error) an op whose decomposition, shape rule, schema or kernel argument
order is broken.

The broken ops are copies of the outside op (tests/ops/cases/outside/softclip_pool), each renamed and broken one
way, all in one temporary root so that one build compiles them all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from trtrepo import deps
from trtrepo.cli import main

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(deps.find_nvcc() is None, reason="nvcc not found: ops check reads the kernels' PTX")]

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SRC = REPO / "plugin_src"
OUTSIDE = Path(__file__).parent / "cases" / "outside"

# name suffix → the replacements (file, old text, new text) that break the op one way
BREAKS: dict[str, list[tuple[str, str, str]]] = {
    "bad_decomp": [("softclip_pool_decomp.py", "y.mean(dim=-1)", "y.sum(dim=-1)")],
    "bad_rule": [("op.yaml", '"x[:-1] + [2]"', '"x[:-1] + [3]"')],
    "bad_schema": [("op.yaml", "float beta) -> Tensor", "float beta=0.5) -> Tensor"),
                   ("op.yaml", "  - {name: beta, type: float}", "  - {name: beta, type: float, default: 0.5}")],
    # the fp32 entry takes its output pointer before the scalars (and its launcher calls it so: it compiles)
    "bad_abi": [("softclip_pool_kernel.cu",
                 "int32_t alpha_bits,\n" + " " * 51 + "int32_t beta_bits, float* out)",
                 "float* out,\n" + " " * 51 + "int32_t alpha_bits, int32_t beta_bits)"),
                ("softclip_pool_kernel.cu", "static_cast<const float*>(x), r, c, a, b,\n"
                 "                                                           static_cast<float*>(out));",
                 "static_cast<const float*>(x), r, c, static_cast<float*>(out), a, b);")],
}


def _variant(root: Path, suffix: str, replacements: list[tuple[str, str, str]]) -> None:
    """A copy of softclip_pool named softclip_pool_<suffix> (op, entries, files), broken by the replacements."""
    name = f"softclip_pool_{suffix}"
    folder = root / name
    folder.mkdir(parents=True)
    for src in (OUTSIDE / "softclip_pool").iterdir():
        text = src.read_text()
        for file, old, new in replacements:
            if src.name == file:
                assert old in text, (file, old)
                text = text.replace(old, new)
        text = text.replace("softclip_pool", name)
        (folder / src.name.replace("softclip_pool", name)).write_text(text)


@pytest.fixture(scope="module")
def broken_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("broken_ops")
    for suffix, replacements in BREAKS.items():
        _variant(root, suffix, replacements)
    return root


def _run(tmp_path: Path, *roots: Path, extra: tuple[str, ...] = ()) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    code = main(["ops", "check", *map(str, roots), "--report", str(report), *extra])
    return code, json.loads(report.read_text())


def _failed(report: dict, op: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in report["results"]:
        if r["op"] == op and r["status"] == "fail":
            out.setdefault(r["check"], []).append(r)
    return out


def test_project_ops_and_an_outside_op_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _run(tmp_path, PLUGIN_SRC, OUTSIDE)
    table = capsys.readouterr().out
    assert code == 0, table
    assert report["passed"] and report["device"] == "cpu"
    ops = {r["op"] for r in report["results"]}
    assert ops == {"trtrepo::bias_gelu", "trtrepo::fused_add_rms_norm", "trtrepo::silu_and_mul",
                   "mylab::softclip_pool"}
    for op in ops:
        checks = {r["check"] for r in report["results"] if r["op"] == op and r["status"] == "pass"}
        # fused_add_rms_norm has no C++ CPU reference: on CPU its decomposition is its kernel, nothing to compare
        want = {"schema", "sources", "abi", "fake", "rule", "opcheck"} | (
            set() if op == "trtrepo::fused_add_rms_norm" else {"numerics"})
        assert checks == want, (op, checks)
    rms_numerics = [r for r in report["results"] if r["op"] == "trtrepo::fused_add_rms_norm"
                    and r["check"] == "numerics"]
    assert rms_numerics and all(r["status"] == "skip" and "the CPU kernel is the decomposition" in r["message"]
                                for r in rms_numerics)
    sources = {(r["op"], r["case"]): r["message"] for r in report["results"] if r["check"] == "sources"}
    assert sources[("trtrepo::bias_gelu", "binding")] == "generated from op.yaml"
    assert sources[("trtrepo::bias_gelu", "plugin")] == "generated from op.yaml"
    assert sources[("mylab::softclip_pool", "binding")] == "hand-written (*_torch.cpp)"
    # every dtype over every layout of the spread, for each op
    layouts = {r["case"].split(" ", 1)[0] + (" misaligned" if "misaligned" in r["case"] else "")
               for r in report["results"] if r["op"] == "trtrepo::silu_and_mul" and r["check"] == "rule"}
    assert {"fp32", "fp16", "bf16", "fp16 misaligned"} <= layouts
    assert "ops check: PASS" in table


def test_each_broken_op_fails_its_check_and_only_that(broken_root: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _run(tmp_path, broken_root)
    table = capsys.readouterr().out
    assert code == 1 and not report["passed"]

    decomp = _failed(report, "mylab::softclip_pool_bad_decomp")
    assert set(decomp) == {"numerics"}, decomp
    worst = max(r["worst"] for r in decomp["numerics"])
    assert worst > 0.1 and "beyond atol" in decomp["numerics"][0]["message"]

    rule = _failed(report, "mylab::softclip_pool_bad_rule")
    # the kernel disagrees with the rule (the fake kernel follows the rule, so opcheck sees the disagreement too)
    assert "rule" in rule and set(rule) <= {"rule", "opcheck"}, rule
    first = rule["rule"][0]["message"]
    assert "returned out of shape" in first and "x[:-1] + [3]" in first and "gives" in first

    schema = _failed(report, "mylab::softclip_pool_bad_schema")
    assert set(schema) == {"schema"}, schema
    assert "float beta=0.5" in schema["schema"][0]["message"] and "registers" in schema["schema"][0]["message"]

    abi = _failed(report, "mylab::softclip_pool_bad_abi")
    assert set(abi) == {"abi"}, abi
    assert [r["case"] for r in abi["abi"]] == ["mylab_softclip_pool_bad_abi_f32"]
    assert "TensorRT launches AOT kernels" in abi["abi"][0]["message"]
    for op in ("bad_decomp", "bad_rule", "bad_schema", "bad_abi"):
        assert f"FAIL mylab::softclip_pool_{op}" in table


def test_ops_new_writes_an_op_that_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ops new` writes only op.yaml, the kernel, the decomposition and a README (``--cpu-reference`` adds the C++
    reference); the binding and the plugin are generated, and both ops pass."""
    root = tmp_path / "my_ops"
    assert main(["ops", "new", "mylab::scale_it", "--dir", str(root)]) == 0
    assert main(["ops", "new", "mylab::scale_ref", "--dir", str(root), "--cpu-reference"]) == 0
    folder = root / "scale_it"
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        "op.yaml", "scale_it_kernel.cu", "scale_it_decomp.py", "README.md"])
    assert sorted(p.name for p in (root / "scale_ref").iterdir()) == sorted([
        "op.yaml", "scale_ref_kernel.cu", "scale_ref_cpu.cpp", "scale_ref_decomp.py", "README.md"])
    code, report = _run(tmp_path, root)
    assert code == 0, capsys.readouterr().out
    passed = {(r["op"], r["check"]) for r in report["results"] if r["status"] == "pass"}
    for op in ("mylab::scale_it", "mylab::scale_ref"):
        assert {(op, c) for c in ("schema", "sources", "abi", "rule", "fake", "opcheck")} <= passed
    assert ("mylab::scale_ref", "numerics") in passed  # the C++ reference against the decomposition
    # a second `ops new` of the same op writes nothing and says so
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert main(["ops", "new", "mylab::scale_it", "--dir", str(root)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_ops_generate_writes_the_generated_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gen"
    assert main(["ops", "generate", "trtrepo::fused_add_rms_norm", "--root", str(PLUGIN_SRC), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["binding.cpp", "launch.cu", "launch.h", "op_host.h",
                                                      "op_rules.h", "plugin.cpp"]
    plugin = (out / "plugin.cpp").read_text()
    assert '"eps"' in plugin and "readFloatField" in plugin  # the attribute is a plugin field
    assert 'TORCH_LIBRARY_FRAGMENT(trtrepo' in (out / "binding.cpp").read_text()
    assert str(tmp_path) in capsys.readouterr().out
    assert main(["ops", "generate", "trtrepo::nope", "--root", str(PLUGIN_SRC), "--out", str(tmp_path / "x")]) == 2
    assert "trtrepo::nope is not an op of" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_hand_written_plugin_without_an_attribute_field_fails_sources(tmp_path: Path) -> None:
    """A hand-written plugin that never names op.yaml's attribute beta as a field: `sources` fails, naming it."""
    root = tmp_path / "root"
    _variant(root, "hand_plugin", [])
    folder = root / "softclip_pool_hand_plugin"
    (folder / "softclip_pool_hand_plugin_plugin.cpp").write_text(
        '// reads only one of the two fields\nstatic char const* kFields[] = {"alpha"};\n')
    code, report = _run(tmp_path, root)
    failed = _failed(report, "mylab::softclip_pool_hand_plugin")
    assert code == 1 and set(failed) == {"sources"}, failed
    assert "is a TensorRT plugin but op.yaml names none" in failed["sources"][0]["message"]

    with (folder / "op.yaml").open("a") as f:
        f.write('plugin: {name: MylabSoftclipPool, version: "1"}\n')
    code, report = _run(tmp_path, root)
    failed = _failed(report, "mylab::softclip_pool_hand_plugin")
    assert code == 1 and set(failed) == {"sources"}, failed
    assert "never names the field(s) beta" in failed["sources"][0]["message"]


@pytest.mark.parametrize("name", ["noop", "a::b::c", "ns::has-dash", "ns::op\n"])
def test_ops_new_refuses_bad_names(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "new", name, "--dir", str(tmp_path)]) == 2
    assert "must be 'namespace::op'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_outside_root_holds_only_its_op_folder() -> None:
    """What the issue asks the outside root to be: the op folder alone (no common/, no CMake, no Meta kernel)."""
    assert [p.name for p in OUTSIDE.iterdir()] == ["softclip_pool"]
    files = {p.name for p in (OUTSIDE / "softclip_pool").iterdir()}
    assert not {"CMakeLists.txt", "common"} & files
    assert "Meta" not in (OUTSIDE / "softclip_pool" / "softclip_pool_torch.cpp").read_text()


def test_sanitize_needs_cuda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "check", str(OUTSIDE), "--sanitize"]) == 2
    assert "use it with --device cuda" in capsys.readouterr().err
    shutil.rmtree(tmp_path, ignore_errors=True)
