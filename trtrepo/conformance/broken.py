"""Deliberately broken copies of an op folder: the harness must fail on each (proof that it can).

Each kind copies a plugin root (every op folder) into a new one and changes one thing in one op; the original is never
touched. The copies keep the ops' names, so they run in a process of their own (one definition of an op per
process); the unchanged files hit the build cache of the original (its keys are the files' contents).

* ``swapped-scalars``: op.yaml's first two ``kernel.scalars`` swapped (bias_gelu: entry(x, bias, cols, n, out)). Only
  the AOT launch on the GPU can see it: the PTX, the C++ plugin and the eager op are unchanged.
* ``wrong-dtype``: the plugin dispatches bf16 tensors to the fp16 kernel. Only enqueue on the GPU can see it.
* ``bad-serialization``: the plugin serializes its float attribute under another field name, so the runtime
  instance made from the serialized fields falls back to the default. Seen without a GPU (the host's round trip).
* ``wrong-cpu-reference``: the op's C++ CPU reference (op.yaml ``cpu:``) scales by 0.55 where it means 0.5 (bias_gelu:
  every nonzero output 10% too large). The op library built from the copy is wrong on CPU; put into a served
  repository it makes ``trtrepo check`` fail and ``check --ops`` name the op. Seen without a GPU.

The plugin cases break the plugin the op builds with: a hand-written ``*_plugin.cpp`` where the folder has one, else
the plugin trtrepo generates from op.yaml, written into the copy as a hand-written one (it includes the generated
``launch.h``, so the build still generates the launcher for it).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from trtrepo.errors import SpecError

KINDS = ("swapped-scalars", "wrong-dtype", "bad-serialization", "wrong-cpu-reference")
DEFAULT_OP = {"swapped-scalars": "bias_gelu", "wrong-dtype": "bias_gelu", "bad-serialization": "fused_add_rms_norm",
              "wrong-cpu-reference": "bias_gelu"}


def _swap_scalars(folder: Path) -> None:
    import yaml

    path = folder / "op.yaml"
    data = yaml.safe_load(path.read_text())
    scalars = (data.get("kernel") or {}).get("scalars") or []
    if len(scalars) < 2:
        raise SpecError(f"{path}: kernel.scalars: needs two scalars to swap")
    scalars[0], scalars[1] = scalars[1], scalars[0]
    path.write_text("# Deliberately broken by trtrepo.conformance.broken: kernel.scalars 0 and 1 swapped.\n"
                    + yaml.safe_dump(data, sort_keys=False))


def _edit_plugin(folder: Path, edits: dict[str, tuple[str, str]], why: str) -> None:
    """Apply the edit for the plugin the op builds with: ``edits["hand"]`` to a hand-written one, else
    ``edits["generated"]`` to the generated one, written into the folder as ``<op>_plugin.cpp``."""
    plugins = sorted(folder.glob("*_plugin.cpp"))
    if plugins:
        target, text, (old, new) = plugins[0], plugins[0].read_text(), edits["hand"]
    else:
        from trtrepo.ops import generated
        from trtrepo.ops.description import load_op_description

        desc = load_op_description(folder / "op.yaml")
        if desc.plugin is None or desc.kernel is None:
            raise SpecError(f"{folder}: no *_plugin.cpp and no plugin to generate (op.yaml plugin and kernel)")
        target, text, (old, new) = folder / f"{folder.name}_plugin.cpp", generated.plugin_source(desc), \
            edits["generated"]
    if old not in text:
        raise SpecError(f"{target}: {old.strip()!r} not found: cannot make the {why} case from this plugin")
    target.write_text(text.replace(old, new, 1))


def _wrong_dtype(folder: Path) -> None:
    wrong = "  if (dtype == kTrtrepoBF16) dtype = kTrtrepoF16;  // deliberately wrong (trtrepo.conformance)\n"
    _edit_plugin(folder, {"hand": ("  if (rows == 0) return 0;", wrong + "  if (rows == 0) return 0;"),
                          "generated": ("    int64_t dims[", "  " + wrong + "    int64_t dims[")}, "wrong-dtype")


def _bad_serialization(folder: Path) -> None:
    edits = {"hand": ('fields.emplace_back("eps", &mEps,', 'fields.emplace_back("epsilon", &mEps,'),
             "generated": ('fields.emplace_back("eps", &m_eps,', 'fields.emplace_back("epsilon", &m_eps,')}
    _edit_plugin(folder, edits, "bad-serialization")


def _wrong_cpu_reference(folder: Path) -> None:
    old, new = "0.5f * ", "0.55f * "
    references = sorted(folder.glob("*_cpu.cpp"))
    text = references[0].read_text() if references else ""
    if old not in text:
        raise SpecError(f"{folder}: no *_cpu.cpp with {old.strip()!r}: cannot make the wrong-cpu-reference case")
    references[0].write_text(text.replace(old, new, 1) + "// deliberately wrong (trtrepo.conformance): 0.55, not 0.5\n")


_MAKERS: dict[str, Callable[[Path], None]] = {"swapped-scalars": _swap_scalars, "wrong-dtype": _wrong_dtype,
                                              "bad-serialization": _bad_serialization,
                                              "wrong-cpu-reference": _wrong_cpu_reference}


def make_broken(kind: str, plugin_root: Path, dest: Path, op_folder: str | None = None) -> Path:
    """Copy every op folder of ``plugin_root`` to ``dest`` and break ``<dest>/<op_folder>``; returns ``dest``.

    Raises:
        SpecError: Unknown kind, missing op folder, or the text to change is not in the copy.
    """
    if kind not in _MAKERS:
        raise SpecError(f"broken case {kind!r} is not one of {', '.join(KINDS)}")
    name = op_folder or DEFAULT_OP[kind]
    root = Path(plugin_root)
    if not (root / name / "op.yaml").is_file():
        raise SpecError(f"{root / name}: no op folder (op.yaml) to copy")
    dest = Path(dest)
    for folder in sorted(p for p in root.iterdir() if (p / "op.yaml").is_file()):
        target = dest / folder.name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("__pycache__"))
    _MAKERS[kind](dest / name)
    return dest
