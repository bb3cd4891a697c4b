"""The judge of the conformance host's records, on records a real host run wrote (cases/host_records: bias_gelu fp16
at 7x5x64 and fused_add_rms_norm bf16 at 33x127 with eps=1e-5, TensorRT 11.1 headers, no enqueue): all pass as they
are, and each check fails when the record it reads says what a broken plugin would do."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trtrepo.conformance import host
from trtrepo.conformance.cases import ShapeCase, with_attributes
from trtrepo.conformance.report import Check
from trtrepo.ops.description import OpDescription

CASES = Path(__file__).resolve().parent / "cases"

Records = list[dict[str, Any]]


@pytest.fixture(scope="module")
def records() -> Records:
    return [json.loads(line) for line in (CASES / "host_records" / "records.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def cases(descriptions: dict[str, OpDescription]) -> list[host.HostCase]:
    from trtrepo.tensorrt.opfacts import plugin_fields

    g, n = descriptions["trtrepo::bias_gelu"], descriptions["trtrepo::fused_add_rms_norm"]
    shapes = [ShapeCase(g.name, "spread", ((7, 5, 64), (64,)), ((False, False, True), (True,))),
              ShapeCase(n.name, "spread", ((33, 127), (33, 127), (127,)), ((False, True), (False, True), (True,)),
                        {"eps": 1e-5})]
    out = []
    for i, (case, dtype) in enumerate(zip(shapes, ["fp16", "bf16"], strict=True)):
        desc = descriptions[case.op]
        full = with_attributes(case, desc)
        fields = tuple((f.name, f.field_type, tuple(f.values)) for f in plugin_fields(desc, full.attributes))
        out.append(host.HostCase(f"c{i}", desc, full, dtype, fields))
    return out


def recorded_ops(descriptions: dict[str, OpDescription]) -> dict[str, OpDescription]:
    """The ops of the library the records were written with."""
    return {k: descriptions[k] for k in ("trtrepo::bias_gelu", "trtrepo::fused_add_rms_norm")}


def judged(records: Records, cases: list[host.HostCase], enqueue: bool = False) -> list[Check]:
    return host.judge(records, cases, "11.1.0", enqueue=enqueue)


def mutate(records: Records, case: str, event: str, change: Callable[[dict[str, Any]], None],
           which: int = 0) -> Records:
    out = copy.deepcopy(records)
    hits = [r for r in out if r.get("case") == case and r["event"] == event]
    change(hits[which])
    return out


def failed(checks: list[Check]) -> set[str]:
    return {c.check for c in checks if not c.ok}


def test_real_records_pass(records: Records, cases: list[host.HostCase],
                           descriptions: dict[str, OpDescription]) -> None:
    checks = judged(records, cases)
    assert not failed(checks), [c for c in checks if not c.ok]
    assert len({c.check for c in checks}) >= 18
    load = host.judge_load(records, recorded_ops(descriptions), "11.1.0")
    assert all(c.ok for c in load), [c for c in load if not c.ok]


@pytest.mark.parametrize(("case", "event", "change", "check"), [
    ("c0", "formats", lambda r: r["accepted"].append([0, -1, 3, 0]), "supports_format_combination"),  # INT32
    ("c0", "formats", lambda r: r["accepted"].append([1, 1, 1, 2]), "supports_format_combination"),  # kHWC8
    ("c0", "formats", lambda r: r["accepted"].append([1, 1, 7, 0]), "supports_format_combination"),  # mixed
    ("c0", "formats", lambda r: r["accepted"].remove([0, -1, 7, 0]), "supports_format_combination"),  # no bf16
    ("c0", "output_shapes", lambda r: r["shapes"][0].__setitem__(2, 63), "output_shapes[symbolic]"),
    ("c0", "output_shapes", lambda r: r["constant"][0].__setitem__(0, 1), "output_shapes[symbolic]"),
    ("c0", "output_types", lambda r: r.__setitem__("types", [0]), "output_dtypes"),
    ("c0", "nb_outputs", lambda r: r.__setitem__("value", 2), "nb_outputs"),
    ("c0", "capabilities", lambda r: r.__setitem__("build", ["PLUGIN_V3ONE_BUILD", 2, 0]), "capabilities"),
    ("c0", "configure", lambda r: r.__setitem__("rc", -1), "configure_plugin"),
    ("c1", "runtime", lambda r: r["serialized"][0]["bits"].__setitem__(0, 0x358637BD), "fields_to_serialize"),
    ("c1", "runtime", lambda r: r["fields"][0].__setitem__("name", "epsilon"), "serialize_round_trip"),
    ("c1", "clone", lambda r: r.__setitem__("distinct", False), "clone"),
    ("c1", "attach", lambda r: r.__setitem__("ok", False), "attach_to_context"),
    ("c1", "probe", lambda r: r.__setitem__("refused", False), "refuses_wrong_field_type"),
    ("c1", "creator", lambda r: r["field_names"][0].__setitem__("type", 2), "field_names"),
    ("c1", "shape_change", lambda r: r.__setitem__("rc", 1), "on_shape_change"),
])
def test_each_check_can_fail(records: Records, cases: list[host.HostCase], case: str, event: str,
                             change: Callable[[dict[str, Any]], None], check: str) -> None:
    assert check in failed(judged(mutate(records, case, event, change), cases))


def test_an_error_logged_outside_the_probe_fails(records: Records, cases: list[host.HostCase]) -> None:
    extra = copy.deepcopy(records)
    extra.append({"event": "log", "case": "c0", "severity": 1, "message": "TrtrepoBiasGelu: something failed"})
    assert "no_errors_logged" in failed(judged(extra, cases))


def test_missing_creator_fails(records: Records, cases: list[host.HostCase]) -> None:
    assert "creator_registered" in failed(judged(mutate(records, "c0", "creator", lambda r: r.update(found=False)),
                                                 cases))


def test_load_facts_can_fail(records: Records, descriptions: dict[str, OpDescription]) -> None:
    ops = recorded_ops(descriptions)
    load = next(i for i, r in enumerate(records) if r["event"] == "load")
    for key, value, check in [("setLoggerFinder", False, "exports_setLoggerFinder"),
                              ("getCreators_count", 1, "exports_getCreators"),
                              ("legacy_registry_calls", 1, "no_legacy_registry_calls")]:
        broken = copy.deepcopy(records)
        broken[load][key] = value
        assert check in failed(host.judge_load(broken, ops, "11.1.0")), key
    broken = copy.deepcopy(records)
    broken[load]["static_registrations"].pop()
    assert "static_registration" in failed(host.judge_load(broken, ops, "11.1.0"))
    broken[load]["exported"][0]["registered_again"] = True
    assert "duplicate_registration_refused" in failed(host.judge_load(broken, ops, "11.1.0"))
    assert failed(host.judge_load([], ops, "11.1.0")) == {"dlopen"}


ENQUEUE_OK = {"event": "enqueue", "ran": True, "rc": 0, "launch_error": "no error", "error_after_sync": "no error",
              "stream_ordered": True, "gate_timed_out": False, "guards_intact": True, "inputs_unchanged": True,
              "misaligned": False, "host_error": "", "outputs": []}


@pytest.mark.parametrize(("change", "check"), [
    ({"stream_ordered": False}, "enqueue_on_given_stream"),
    ({"gate_timed_out": True}, "enqueue_on_given_stream"),
    ({"guards_intact": False}, "no_write_outside_outputs"),
    ({"inputs_unchanged": False}, "no_write_outside_outputs"),
    ({"rc": -1}, "enqueue"),
    ({"error_after_sync": "an illegal memory access was encountered"}, "enqueue"),
    ({"ran": False, "why": "no data"}, "enqueue"),
])
def test_enqueue_record_judged(records: Records, cases: list[host.HostCase], change: dict[str, Any],
                               check: str) -> None:
    good = [*copy.deepcopy(records), {**ENQUEUE_OK, "case": "c0"}, {**ENQUEUE_OK, "case": "c1"}]
    assert not failed(judged(good, cases, enqueue=True))
    bad = [*copy.deepcopy(records), {**ENQUEUE_OK, "case": "c0", **change}, {**ENQUEUE_OK, "case": "c1"}]
    assert check in failed(judged(bad, cases, enqueue=True))


def test_without_the_stream_gate_the_stream_check_is_left_out(records: Records, cases: list[host.HostCase]) -> None:
    ungated = [*copy.deepcopy(records), *({**ENQUEUE_OK, "case": c, "stream_ordered": None} for c in ("c0", "c1"))]
    checks = judged(ungated, cases, enqueue=True)
    assert not failed(checks) and "enqueue_on_given_stream" not in {c.check for c in checks}


def test_outputs_compared_with_eager(tmp_path: Path, cases: list[host.HostCase]) -> None:
    import torch

    hc = cases[0]
    want = torch.randn(7, 5, 64).to(torch.float16)
    path = tmp_path / "out.bin"
    with_file = host.HostCase(hc.id, hc.desc, hc.case, hc.dtype, hc.fields, (), (path,))
    want.view(torch.uint8).numpy().tofile(path)
    assert all(c.ok for c in host.compare_outputs(with_file, [want], "11.1.0"))
    bad = want.clone()
    bad[3, 2, 1] += 0.5
    bad.view(torch.uint8).numpy().tofile(path)
    [check] = host.compare_outputs(with_file, [want], "11.1.0")
    assert not check.ok and check.max_abs == pytest.approx(0.5, abs=0.01)
    path.write_bytes(path.read_bytes()[:-2])
    [check] = host.compare_outputs(with_file, [want], "11.1.0")
    assert not check.ok and "bytes" in check.detail


def test_expected_constness_follows_static_dims(descriptions: dict[str, OpDescription]) -> None:
    desc = descriptions["trtrepo_conf::chunk_sum"]
    case = with_attributes(ShapeCase(desc.name, "spread", ((4, 9, 10),), ((False, True, True),), {"k": 3}), desc)
    assert host.expected_shapes(desc, case, symbolic=True) == ([[4, 9, 4]], [[0, 1, 1]])
    assert host.expected_shapes(desc, case, symbolic=False) == ([[4, 9, 4]], [[1, 1, 1]])


def test_case_file_carries_float_bits(cases: list[host.HostCase]) -> None:
    text = host.case_text(Path("/lib/x.so"), cases)
    assert "field eps 1 1 0x3727c5ac" in text  # float32(1e-5), exact
    assert "input 3 7 5 64 001 -" in text and "probe wrongtype eps" in text
    with pytest.raises(Exception, match="without blanks"):
        host.case_text(Path("/a b/x.so"), cases)
