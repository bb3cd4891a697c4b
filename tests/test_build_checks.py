"""Cross-model checks of trtrepo.build that run before anything is compiled."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtrepo.build import check_converter_lowerings
from trtrepo.errors import SpecError
from trtrepo.spec import load_spec

SPEC = """
models:
  - name: a
    source: a.pt2
    inputs: [{{name: x, shape: [4, 8]}}]
    outputs: [y]
    ops: {{"trtrepo::bias_gelu": {a}}}
  - name: b
    source: a.pt2
    inputs: [{{name: x, shape: [4, 8]}}]
    outputs: [y]
    ops: {{"trtrepo::bias_gelu": {b}}}
"""


def _models(tmp_path: Path, a: str, b: str):  # -> tuple[ModelSpec, ...]
    (tmp_path / "a.pt2").write_bytes(b"")
    (tmp_path / "model.yaml").write_text(SPEC.format(a=a, b=b))
    return load_spec(tmp_path / "model.yaml").models


def test_plugin_and_aot_for_one_op_in_one_build_is_refused(tmp_path: Path) -> None:
    models = _models(tmp_path, "plugin", "aot")
    with pytest.raises(SpecError) as err:
        check_converter_lowerings(models, {"a": "tensorrt", "b": "tensorrt"})
    assert str(err.value) == ("models[1].ops.trtrepo::bias_gelu: aot here but plugin in models[0]; one build registers "
                              "one TensorRT converter per op")
    assert "--models" in (err.value.hint or "")


@pytest.mark.parametrize(("a", "b", "targets"), [
    ("plugin", "plugin", {"a": "tensorrt", "b": "tensorrt"}),      # same converter
    ("plugin", "decompose", {"a": "tensorrt", "b": "tensorrt"}),   # decompose removes the op: no converter
    ("plugin", "aot", {"a": "tensorrt", "b": "torch"}),            # the torch target converts nothing
])
def test_compatible_lowerings_pass(tmp_path: Path, a: str, b: str, targets: dict[str, str]) -> None:
    models = _models(tmp_path, a, b)
    check_converter_lowerings(models, targets)
    assert [m.lowering("trtrepo::bias_gelu") for m in models] == [a, b]
