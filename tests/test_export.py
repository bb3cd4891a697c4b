"""trtrepo.export: the model runs once before export, traced sizes avoid torch's 0/1 specialisation, torch's noise
is held back, and the user's own errors are named."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from trtrepo.errors import BuildError, SpecError
from trtrepo.spec import TensorSpec, load_spec

torch = pytest.importorskip("torch", reason="export needs torch")

from trtrepo import export  # noqa: E402  (after the torch probe)

NET = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.linear(x) + 1.0


def build():
    torch.manual_seed(0)
    return Net()
"""


def _model(tmp_path: Path, x: str = "{name: x, shape: [-1, 4], min: [1, 4], opt: [1, 4], max: [8, 4]}"):
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "model.yaml").write_text(f"models:\n  - name: tiny\n    source: net:build\n    inputs: [{x}]\n"
                                         "    outputs: [y]\n")
    return load_spec(tmp_path / "model.yaml").models[0]


@pytest.mark.parametrize(("dims", "traced"), [
    (dict(shape=(-1, 64), min=(1, 64), opt=(1, 64), max=(32, 64)), (2, 64)),   # opt batch 1 → traced at 2
    (dict(shape=(-1, -1), min=(1, 1), opt=(1, 1), max=(4, 1)), (2, 1)),        # max 1: nothing to gain
    (dict(shape=(-1, 8), min=(1, 8), opt=(4, 8), max=(8, 8)), (4, 8)),         # opt already >= 2
    (dict(shape=(1, 8), min=(1, 8), opt=(1, 8), max=(1, 8)), (1, 8)),          # a static 1 stays 1
])
def test_trace_shape_avoids_sizes_zero_and_one(dims: dict[str, tuple[int, ...]], traced: tuple[int, ...]) -> None:
    assert export.trace_shape(TensorSpec(name="x", dtype="fp32", **dims)) == traced


def test_opt_batch_one_exports_with_the_whole_range(tmp_path: Path) -> None:
    """Traced at opt 1, torch.export would specialise the batch dim to 1 and refuse the dynamic range."""
    model = _model(tmp_path)
    program = export.export_model(model, tmp_path)
    (placeholder,) = [n for n in program.graph.nodes if n.op == "placeholder" and n.name == "x"]
    batch = placeholder.meta["val"].shape[0]
    assert isinstance(batch, torch.SymInt), "the batch dim stays symbolic"
    bounds = program.range_constraints[batch.node.expr]
    assert int(bounds.upper) == 8 and int(bounds.lower) <= 2  # torch keeps 2 as the symbol's floor; 1 still runs
    for size in (1, 3, 8):
        x = torch.randn(size, 4)
        assert torch.allclose(program.module()(x), export.load_module(model, tmp_path)(x))


def test_run_once_returns_what_the_model_returns(tmp_path: Path) -> None:
    model = _model(tmp_path, "{name: x, shape: [2, 4]}")
    out = export.run_once(export.load_module(model, tmp_path), model)
    assert tuple(out.shape) == (2, 4)


def test_run_once_names_the_input_whose_dtype_does_not_run(tmp_path: Path) -> None:
    model = _model(tmp_path, "{name: x, dtype: int32, shape: [2, 4]}")
    with pytest.raises(SpecError) as info:
        export.run_once(export.load_module(model, tmp_path), model)
    assert info.value.message.startswith("models[0].inputs[0].dtype: model 'tiny' does not run with input 'x' as int32 "
                                         "(RuntimeError: ")
    assert info.value.message.endswith("; it runs with fp32")


def test_run_once_on_a_model_that_fails_whatever_the_dtype(tmp_path: Path) -> None:
    model = _model(tmp_path, "{name: x, shape: [2, 3]}")  # Linear(4, 4) on 3 features
    with pytest.raises(BuildError) as info:
        export.run_once(export.load_module(model, tmp_path), model)
    assert info.value.message.startswith("models[0]: model 'tiny' fails on sample inputs (x fp32[2, 3]): RuntimeError:")


def test_quiet_torch_holds_back_logs_prints_and_warnings_and_shows_them_on_request(
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    handlers = list(logging.getLogger("torch").handlers)
    with export.quiet_torch() as noise:
        logging.getLogger("torch.fx.experimental.symbolic_shapes").warning("a guard the user did not ask for")
        print("def forward(self, arg0_1): ...")
        warnings.warn("torch deprecation", UserWarning, stacklevel=1)
    assert capsys.readouterr() == ("", "")
    assert [r.getMessage() for r in noise.records] == ["a guard the user did not ask for"]
    assert noise.printed.getvalue() == "def forward(self, arg0_1): ...\n"
    assert [str(w.message) for w in noise.warned] == ["torch deprecation"]
    assert logging.getLogger("torch").handlers == handlers, "torch's handlers are put back"
    with caplog.at_level(logging.DEBUG, logger="trtrepo.export"):
        noise.show()
    assert [r.getMessage() for r in caplog.records][:2] == ["torch: a guard the user did not ask for",
                                                            "torch printed: def forward(self, arg0_1): ..."]
