"""model.yaml's ``torch:`` section (the torch target's options): typed, defaulted, errors with the YAML key path;
``--torch-program`` overrides it and is part of the inputs key; the bench comparison table."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtrepo.errors import SpecError
from trtrepo.spec import DEFAULT_TORCH_PROGRAM, parse_spec

pytestmark = pytest.mark.unit


def _spec(tmp_path: Path, torch_section: object = None) -> dict[str, object]:
    model: dict[str, object] = {"name": "m", "source": "f.pt2", "inputs": [{"name": "x", "shape": [4]}],
                                "outputs": ["y"]}
    if torch_section is not None:
        model["torch"] = torch_section
    (tmp_path / "f.pt2").write_bytes(b"")
    return {"repository": "repo", "models": [model]}


def test_default_is_the_exported_program(tmp_path: Path) -> None:
    spec = parse_spec(_spec(tmp_path), tmp_path / "model.yaml")
    assert spec.models[0].torch.program == DEFAULT_TORCH_PROGRAM == "exported"


def test_aoti_is_accepted(tmp_path: Path) -> None:
    spec = parse_spec(_spec(tmp_path, {"program": "aoti"}), tmp_path / "model.yaml")
    assert spec.models[0].torch.program == "aoti"


@pytest.mark.parametrize(("section", "message"), [
    ({"program": "aot"}, r"^models\[0\]\.torch\.program: must be one of exported, aoti, got 'aot'"),
    ({"program": 1}, r"^models\[0\]\.torch\.program: must be one of exported, aoti, got int 1"),
    ({"cuda_graphs": True}, r"^models\[0\]\.torch\.cuda_graphs: unknown key"),
    ("aoti", r"^models\[0\]\.torch: must be a mapping, got str 'aoti'"),
])
def test_bad_torch_section_names_the_key(tmp_path: Path, section: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(_spec(tmp_path, section), tmp_path / "model.yaml")


def test_override_sets_every_model_and_changes_the_inputs_key(tmp_path: Path) -> None:
    from trtrepo.build import override_torch_program
    from trtrepo.freshness import inputs_key

    spec = parse_spec(_spec(tmp_path), tmp_path / "model.yaml")
    aoti = override_torch_program(spec, "aoti")
    assert [m.torch.program for m in aoti.models] == ["aoti"]
    assert inputs_key(spec, spec.models[0], "torch", "cpu") != inputs_key(aoti, aoti.models[0], "torch", "cpu")
    with pytest.raises(SpecError, match=r"^--torch-program: must be one of exported, aoti, got 'jit'"):
        override_torch_program(spec, "jit")


def test_compare_table_ratios() -> None:
    from trtrepo.bench.compare import compare_table
    from trtrepo.bench.report import BenchReport, BenchRow
    from trtrepo.bench.stats import LatencyStats

    def report(p50: float) -> BenchReport:
        row = BenchRow(model="m", batch_size=1, concurrency=1, client="trtrepo-loop",
                       served=LatencyStats(p50, p50, p50, p50), served_ips=1000 / p50,
                       eager=LatencyStats(0.5, 0.5, 0.5, 0.5), server_compute_ms=p50 / 2)
        return BenchReport(spec="s", url="u", device="cpu", rows=[row])

    table = compare_table({"exported": report(2.0), "aoti": report(1.0)})
    last = table.splitlines()[-1].split()
    assert last[:4] == ["m", "1", "1", "0.500"]
    assert last[4:8] == ["2.000", "4.00x", "1.000", "500"] and last[8:12] == ["1.000", "2.00x", "0.500", "1000"]
    assert last[-1] == "2.00x"  # aoti's p50 is half exported's
