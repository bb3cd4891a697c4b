"""Model source (factory or saved .pt2) → ``torch.export.ExportedProgram`` with the spec's dynamic dims.

Dynamic dims are exported as ``Dim.DYNAMIC(min=, max=)``: torch.export then infers which dims are equal (the batch
dim of ``x`` and ``residual``) instead of the user having to name shared dims in model.yaml.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo import dtypes
from trtrepo.errors import BuildError, SpecError
from trtrepo.samples import sample_inputs

if TYPE_CHECKING:
    import torch

    from trtrepo.spec import ModelSpec, TensorSpec

LOGGER = logging.getLogger(__name__)

def load_module(model: ModelSpec, root: Path, device: str = "cpu") -> torch.nn.Module:
    """Build the eager module from the model's factory, cast to its precision, in eval mode on ``device``.

    Args:
        model: The model's spec; its source must be a factory.
        root: The model.yaml folder; a factory module that is a file there wins over an installed module.
        device: Where the module's parameters go.
    """
    import torch

    factory = model.source.factory
    if factory is None:
        ep = load_exported(model)
        return ep.module()
    module_name, attr = factory.split(":", 1)
    try:
        module = _import_factory_module(module_name, root)
        fn = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"{model.yaml_path}.source.factory: cannot load {factory!r}: {exc}") from None
    net = fn()
    if not isinstance(net, torch.nn.Module):
        raise SpecError(f"{model.yaml_path}.source.factory: {factory!r} returned {type(net).__name__}, not nn.Module")
    if model.precision != "fp32":
        net = net.to(dtypes.to_torch(model.precision))
    return net.eval().to(device)


def _import_factory_module(module_name: str, root: Path) -> Any:
    """Import the factory's module: a file beside model.yaml wins over the environment.

    Two specs may both name ``model:build``; a file module is imported under a name derived from its path so the
    second does not get the first one's cached module.
    """
    from trtrepo._files import import_file

    candidate = root.joinpath(*module_name.split("."))
    path = candidate.with_suffix(".py") if candidate.with_suffix(".py").is_file() else candidate / "__init__.py"
    if not path.is_file():
        return importlib.import_module(module_name)
    return import_file(path, prefix="_trtrepo_factory")


def load_exported(model: ModelSpec) -> torch.export.ExportedProgram:
    """Load the model's saved ExportedProgram (.pt2)."""
    import torch

    assert model.source.exported_program is not None
    try:
        return torch.export.load(str(model.source.exported_program))
    except Exception as exc:
        raise BuildError(f"{model.yaml_path}.source.exported_program: cannot load: {exc}") from None


def dynamic_shapes(tensors: tuple[TensorSpec, ...]) -> dict[str, dict[int, Any]]:
    """``dynamic_shapes`` argument for torch.export: one ``Dim.DYNAMIC(min, max)`` per -1 dim."""
    from torch.export import Dim

    return {t.name: {axis: Dim.DYNAMIC(min=t.min[axis], max=t.max[axis]) for axis in t.dynamic_axes}
            for t in tensors}


def export_model(model: ModelSpec, root: Path, device: str = "cpu") -> torch.export.ExportedProgram:
    """Export the model with its inputs' dynamic dims; the custom ops must already be loaded.

    Raises:
        BuildError: torch.export failed (message names the model and the first line of the cause).
    """
    import torch

    if model.source.exported_program is not None:
        return load_exported(model)
    net = load_module(model, root, device)
    args = sample_inputs(model.inputs, "opt", device)
    shapes = _by_forward_names(net, model, dynamic_shapes(model.inputs))
    try:
        return torch.export.export(net, args, dynamic_shapes=shapes)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BuildError(
            f"{model.yaml_path}: torch.export of {model.name!r} failed: {first}",
            hint="every custom op needs a fake kernel (plugin_src/<op>/op.yaml outputs) and the dims in model.yaml "
            "must match what forward() accepts",
        ) from exc


def _by_forward_names(net: torch.nn.Module, model: ModelSpec, shapes: dict[str, Any]) -> dict[str, Any]:
    """torch.export keys dynamic_shapes by forward()'s parameter names; the spec's input names must be those."""
    import inspect

    params = [p for p in inspect.signature(net.forward).parameters if p != "self"]
    names = [t.name for t in model.inputs]
    if params[: len(names)] != names:
        raise SpecError(f"{model.yaml_path}.inputs: names {names} must match forward() arguments {params}")
    return shapes
