"""Model source (factory or saved .pt2) → ``torch.export.ExportedProgram`` with the spec's dynamic dims.

Dynamic dims are exported as ``Dim.DYNAMIC(min=, max=)``: torch.export then infers which dims are equal (the batch
dim of ``x`` and ``residual``) instead of the user having to name shared dims in model.yaml.

Before anything is exported the model runs once, eagerly, on seeded sample inputs at the declared dtypes
(:func:`run_once`): fake-tensor tracing never runs it, so an input declared int64 for a float model would export
and only fail when served. What goes wrong in the user's code is reported as one line naming the YAML key, the
file or factory and the user's own exception text: :class:`~trtrepo.errors.SpecError` (exit 2) where the spec
names something that is not there or not usable (a missing module, attribute or file, a factory that needs
arguments, an input dtype the model does not take), :class:`~trtrepo.errors.BuildError` (exit 1) where the user's
code fails when run (a syntax error, an exception at import, in the factory, in forward()). torch's own logging and
printing during loading and export is held back and shown only at debug level (``trtrepo -v``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import io
import logging
import sys
import sysconfig
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo import dtypes
from trtrepo.errors import BuildError, SpecError
from trtrepo.samples import sample_inputs

if TYPE_CHECKING:
    import torch

    from trtrepo.spec import ModelSpec, TensorSpec

LOGGER = logging.getLogger(__name__)

EXPORT_HINT = ("every custom op needs a fake kernel (plugin_src/<op>/op.yaml outputs) and the dims in model.yaml "
               "must match what forward() accepts")
# torch.export specialises a dim traced at size 0 or 1 to that constant: trace a dynamic dim at least this large
SMALLEST_TRACED_DIM = 2


class ExportError(BuildError):
    """torch.export failed: one line in the message, torch's explanation (constraint conflicts, suggested fixes) in
    full in ``details``, printed by the CLI below the error line."""


# ------------------------------------------------------------------------------------------------ the source
def load_module(model: ModelSpec, root: Path, device: str = "cpu") -> torch.nn.Module:
    """Build the eager module from the model's factory, cast to its precision, in eval mode on ``device``.

    Args:
        model: The model's spec; a saved program's module is returned for an ``exported_program`` source.
        root: The model.yaml folder; a factory module that is a file there wins over an installed module.
        device: Where the module's parameters go.

    Raises:
        SpecError: The factory's module, file or callable is missing or unreadable, needs arguments, or returns
            something that is not an ``nn.Module``.
        BuildError: The factory's module fails to import (syntax error, exception) or the factory raises.
    """
    import torch

    if model.source.factory is None:
        return load_exported(model).module()
    where = f"{model.yaml_path}.source.factory"
    factory = load_factory(model, root)
    try:
        net = factory()
    except (Exception, SystemExit) as exc:
        raise BuildError(f"{where}: {model.source.factory!r} raised {_exception_line(exc)}{_user_frame(exc)}") from exc
    if not isinstance(net, torch.nn.Module):
        raise SpecError(f"{where}: {model.source.factory!r} returned {type(net).__name__}, not nn.Module")
    if model.precision != "fp32":
        net = net.to(dtypes.to_torch(model.precision))
    return net.eval().to(device)


def load_factory(model: ModelSpec, root: Path) -> Callable[[], Any]:
    """The factory callable the spec names, imported and checked to be callable without arguments.

    Raises:
        SpecError: Its module, file or attribute is missing, the file cannot be read, it is not callable or it
            needs arguments.
        BuildError: Its module fails to import (a syntax error or an exception; the user's text and line).
    """
    assert model.source.factory is not None
    where = f"{model.yaml_path}.source.factory"
    module_name, attr = model.source.factory.split(":", 1)
    path = _factory_file(module_name, root)
    what = str(path) if path is not None else f"module {module_name!r}"
    try:
        if path is not None:
            from trtrepo._files import import_file

            module = import_file(path, prefix="_trtrepo_factory")
        else:
            module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise BuildError(f"{where}: {exc.filename or what}:{exc.lineno}: SyntaxError: {exc.msg}") from exc
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if path is None and (module_name == missing or module_name.startswith(missing + ".")):
            raise SpecError(f"{where}: module {module_name!r} not found (looked in {root} and on sys.path)") from None
        raise BuildError(f"{where}: importing {what} raised {_exception_line(exc)}{_user_frame(exc)}") from exc
    except OSError as exc:
        if path is not None and exc.filename is not None and Path(exc.filename).resolve() == path.resolve():
            raise SpecError(f"{where}: cannot read {path}: {exc.strerror}") from None
        raise BuildError(f"{where}: importing {what} raised {_exception_line(exc)}{_user_frame(exc)}") from exc
    except (Exception, SystemExit) as exc:
        raise BuildError(f"{where}: importing {what} raised {_exception_line(exc)}{_user_frame(exc)}") from exc
    fn = getattr(module, attr, None)
    if fn is None:
        raise SpecError(f"{where}: {what} has no {attr!r}")
    if not callable(fn):
        raise SpecError(f"{where}: {model.source.factory!r} is a {type(fn).__name__}, not a callable")
    try:
        inspect.signature(fn).bind()
    except TypeError:
        needed = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        raise SpecError(f"{where}: {model.source.factory!r} needs arguments ({', '.join(needed)}); trtrepo calls "
                        "it with none",
                        hint="give every parameter a default, or name a function without parameters") from None
    except ValueError:  # no signature to read (a builtin): calling it tells
        pass
    return fn  # type: ignore[no-any-return]


def _factory_file(module_name: str, root: Path) -> Path | None:
    """The factory module's file beside model.yaml (``net.py`` or ``net/__init__.py``), or None."""
    candidate = root.joinpath(*module_name.split("."))
    for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
        if path.is_file() or path.is_symlink():
            return path
    return None


def load_exported(model: ModelSpec) -> torch.export.ExportedProgram:
    """Load the model's saved ExportedProgram (.pt2).

    Raises:
        BuildError: It cannot be loaded (torch's reason in one line; torch's log of it only at debug level).
    """
    import torch

    assert model.source.exported_program is not None
    path = model.source.exported_program
    with quiet_torch() as noise:
        try:
            return torch.export.load(str(path))
        except Exception as exc:
            noise.show()
            raise BuildError(f"{model.yaml_path}.source.exported_program: cannot load {path}: "
                             f"{_exception_line(exc)}",
                             hint="save it with torch.export.save() from the torch that builds it") from exc


# --------------------------------------------------------------------------------------------- run it once
def run_once(net: Any, model: ModelSpec, device: str = "cpu") -> Any:
    """Run ``net`` once on seeded sample inputs at the opt shape and the declared dtypes; return what it returns.

    Args:
        net: The eager module (or an ExportedProgram's module).
        model: Its spec (the inputs' dtypes and shapes, the YAML path for messages).
        device: Where the inputs go.

    Raises:
        SpecError: It fails on one input's declared dtype but runs with another (names the input:
            ``models[0].inputs[0].dtype: ...``).
        KernelContractError: A custom op's kernel returned outputs its op.yaml rules do not give (names the op).
        BuildError: It fails on the sample inputs otherwise (the model's name, the inputs and the user's text).
    """
    import torch

    from trtrepo.ops.library import loaded_descriptions
    from trtrepo.ops.trace import KernelContractError, op_watch

    args = sample_inputs(model.inputs, "opt", device)
    with torch.no_grad(), quiet_torch() as noise:
        try:
            # each custom op's real outputs against its op.yaml rules: a kernel that breaks its rule is named here
            with op_watch(loaded_descriptions()):
                return net(*args)
        except KernelContractError:
            raise
        except Exception as exc:
            failure = exc
            noise.show()
        culprit = _dtype_culprit(net, model, args, device)
    if culprit is not None:
        index, works = culprit
        tensor = model.inputs[index]
        raise SpecError(f"{model.yaml_path}.inputs[{index}].dtype: model {model.name!r} does not run with input "
                        f"{tensor.name!r} as {tensor.dtype} ({_exception_line(failure)}); it runs with {works}",
                        hint=f"declare {model.yaml_path}.inputs[{index}].dtype: {works}") from failure
    shapes = ", ".join(f"{t.name} {t.dtype}{list(t.opt)}" for t in model.inputs)
    raise BuildError(f"{model.yaml_path}: model {model.name!r} fails on sample inputs ({shapes}): "
                     f"{_exception_line(failure)}{_user_frame(failure)}",
                     hint=f"check {model.yaml_path}.inputs against what forward() accepts") from failure


def _dtype_culprit(net: Any, model: ModelSpec, args: tuple[Any, ...], device: str) -> tuple[int, str] | None:
    """(input index, a dtype it runs with) when changing that one input's dtype makes the model run, else None."""
    import torch

    candidates = list(dict.fromkeys([model.precision, "fp32", "int64"]))
    for index, tensor in enumerate(model.inputs):
        for dtype in candidates:
            if dtype == tensor.dtype:
                continue
            (replacement,) = sample_inputs([dataclasses.replace(tensor, dtype=dtype)], "opt", device)
            trial = (*args[:index], replacement, *args[index + 1:])
            try:
                with torch.no_grad():
                    net(*trial)
            except Exception:
                continue
            return index, dtype
    return None


# ------------------------------------------------------------------------------------------------- export
def dynamic_shapes(tensors: Sequence[TensorSpec]) -> dict[str, dict[int, Any]]:
    """``dynamic_shapes`` argument for torch.export: one ``Dim.DYNAMIC(min, max)`` per -1 dim."""
    from torch.export import Dim

    return {t.name: {axis: Dim.DYNAMIC(min=t.min[axis], max=t.max[axis]) for axis in t.dynamic_axes}
            for t in tensors}


def trace_shape(tensor: TensorSpec) -> tuple[int, ...]:
    """The shape the model is traced at: opt, with dynamic dims of size 0 or 1 raised to 2 where max allows.

    torch.export specialises a dim it sees at size 0 or 1 to that constant, which contradicts a dynamic range
    (``opt: [1, 64]`` would fail with a 0/1-specialisation conflict); the range given to export stays min..max.
    """
    dims = list(tensor.opt)
    for axis in tensor.dynamic_axes:
        if dims[axis] < SMALLEST_TRACED_DIM <= tensor.max[axis]:
            dims[axis] = SMALLEST_TRACED_DIM
    return tuple(dims)


def export_model(model: ModelSpec, root: Path, device: str = "cpu") -> torch.export.ExportedProgram:
    """Run the model once (:func:`run_once`), then export it with its inputs' dynamic dims.

    The custom ops must already be loaded.

    Raises:
        SpecError: The source is unusable, or an input's declared dtype does not run (see :func:`run_once`).
        ExportError: torch.export failed (one line naming the model and torch's reason; the rest of torch's
            explanation in ``details``).
        BuildError: The user's code fails when run.
    """
    import torch

    if model.source.exported_program is not None:
        program = load_exported(model)
        run_once(program.module(), model, device)
        return program
    net = load_module(model, root, device)
    run_once(net, model, device)
    traced = tuple(dataclasses.replace(t, opt=trace_shape(t)) for t in model.inputs)
    args = sample_inputs(traced, "opt", device)
    shapes = _by_forward_names(net, model, dynamic_shapes(model.inputs))
    with quiet_torch() as noise:
        try:
            return torch.export.export(net, args, dynamic_shapes=shapes)
        except Exception as exc:
            noise.show()
            first, *rest = _explanation(exc)
            raise ExportError(f"{model.yaml_path}: torch.export of {model.name!r} failed: {first}", hint=EXPORT_HINT,
                              details=rest) from exc


def _explanation(exc: BaseException) -> list[str]:
    """torch's message as lines, without its trailing advice on draft_export and blank lines; never empty."""
    lines = [line.rstrip() for line in str(exc).strip().splitlines()]
    cut = next((i for i, line in enumerate(lines) if line.startswith("The error above occurred when calling")), None)
    lines = [line for line in lines[:cut] if line.strip()]
    return lines or [type(exc).__name__]


def _by_forward_names(net: torch.nn.Module, model: ModelSpec, shapes: dict[str, Any]) -> dict[str, Any]:
    """torch.export keys dynamic_shapes by forward()'s parameter names; the spec's input names must be those."""
    params = [p for p in inspect.signature(net.forward).parameters if p != "self"]
    names = [t.name for t in model.inputs]
    if params[: len(names)] != names:
        raise SpecError(f"{model.yaml_path}.inputs: names {names} must match forward() arguments {params}")
    return shapes


# -------------------------------------------------------------------------------------------- torch's noise
@dataclasses.dataclass
class Noise:
    """What torch logged, printed and warned inside :func:`quiet_torch`."""

    records: list[logging.LogRecord] = dataclasses.field(default_factory=list)
    printed: io.StringIO = dataclasses.field(default_factory=io.StringIO)
    warned: list[warnings.WarningMessage] = dataclasses.field(default_factory=list)

    def show(self) -> None:
        """Pass it all on at debug level (``trtrepo -v`` shows it)."""
        for record in self.records:
            LOGGER.debug("torch: %s", record.getMessage())
        for line in self.printed.getvalue().splitlines():
            LOGGER.debug("torch printed: %s", line)
        for warning in self.warned:
            LOGGER.debug("torch warned: %s", warnings.formatwarning(warning.message, warning.category,
                                                                    warning.filename, warning.lineno).strip())


class _Collect(logging.Handler):
    def __init__(self, noise: Noise) -> None:
        super().__init__(logging.DEBUG)
        self.noise = noise

    def emit(self, record: logging.LogRecord) -> None:
        self.noise.records.append(record)


@contextlib.contextmanager
def quiet_torch() -> Iterator[Noise]:
    """Hold back torch's log records, prints and warnings for the block (its logger handlers write straight to
    stderr: a failure would print pages of traceback before trtrepo's one line).

    Yields:
        The :class:`Noise` collected; call :meth:`Noise.show` to pass it on at debug level.
    """
    noise = Noise()
    collect = _Collect(noise)
    saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
    for name in dict.fromkeys(["torch", *logging.root.manager.loggerDict]):
        logger = logging.getLogger(name)
        if name == "torch" or (name.startswith("torch.") and logger.handlers):
            saved.append((logger, logger.handlers[:], logger.propagate))
            logger.handlers = [collect] if name == "torch" else []
            logger.propagate = name != "torch"
    try:
        with (warnings.catch_warnings(record=True) as warned, contextlib.redirect_stdout(noise.printed),
              contextlib.redirect_stderr(noise.printed)):
            try:
                yield noise
            finally:
                noise.warned.extend(warned)
    finally:
        for logger, handlers, propagate in reversed(saved):
            logger.handlers = handlers
            logger.propagate = propagate


# ------------------------------------------------------------------------------------------------- messages
def _exception_line(exc: BaseException) -> str:
    """``ValueError: the user's text`` on one line (the first line of a multi-line message)."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _user_frame(exc: BaseException) -> str:
    """`` (at /path/net.py:12)``: the innermost frame of the traceback in the user's code, or ''."""
    skip = [Path(sysconfig.get_paths()["stdlib"]).resolve(), Path(__file__).resolve().parent]
    torch_file = getattr(sys.modules.get("torch"), "__file__", None)
    if torch_file:
        skip.append(Path(torch_file).resolve().parent)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith("<"):
            continue
        path = Path(frame.filename).resolve()
        if not any(path.is_relative_to(s) for s in skip):
            return f" (at {frame.filename}:{frame.lineno})"
    return ""
