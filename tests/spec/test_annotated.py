"""examples/annotated/model.yaml shows every key, loads, and the README's reference names every key too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from trtrepo.spec import load_spec

# Every key model.yaml accepts, as dotted paths ([] = list items). Adding a key to spec.py means adding it here,
# to the annotated example and to the README.
ALL_KEYS = {
    "repository", "plugin_sources", "models",
    "models[].name", "models[].version", "models[].source", "models[].source.factory", "models[].precision",
    "models[].target", "models[].inputs", "models[].inputs[].name", "models[].inputs[].dtype",
    "models[].inputs[].shape", "models[].inputs[].min", "models[].inputs[].opt", "models[].inputs[].max",
    "models[].outputs", "models[].outputs[].name", "models[].outputs[].atol", "models[].outputs[].rtol",
    "models[].ops", "models[].triton", "models[].triton.max_batch_size", "models[].triton.dynamic_batching",
    "models[].triton.dynamic_batching.preferred_batch_size",
    "models[].triton.dynamic_batching.max_queue_delay_microseconds", "models[].triton.instance_group",
    "models[].triton.instance_group[].kind", "models[].triton.instance_group[].count",
    "models[].triton.instance_group[].gpus", "models[].triton.version_policy",
    "models[].triton.version_policy.latest", "models[].triton.warmup", "models[].triton.warmup.data",
    "models[].triton.warmup.count", "models[].parity", "models[].parity.atol", "models[].parity.rtol",
    "models[].parity.samples", "models[].parity.seed", "models[].parity.ragged_requests",
    "models[].torch", "models[].torch.program",
}
# keys that are alternatives of a shown key (one of them can be in a valid file): named in comments instead
ALTERNATIVES = {"models[].source.exported_program", "models[].triton.version_policy.all",
                "models[].triton.version_policy.specific"}


def _paths(node: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if "::" in str(key):  # ops map op names, not keys
                continue
            path = f"{prefix}.{key}" if prefix else str(key)
            out.add(path)
            out |= _paths(value, path)
    elif isinstance(node, list):
        for item in node:
            out |= _paths(item, f"{prefix}[]")
    return out


def test_annotated_example_loads(repo_root: Path) -> None:
    spec = load_spec(repo_root / "examples" / "annotated" / "model.yaml")
    (model,) = spec.models
    assert model.name == "annotated_block" and model.source.factory == "net:build"
    assert spec.repository == repo_root / "model_repository"
    assert model.lowering("trtrepo::bias_gelu") == "plugin"


def test_annotated_example_shows_every_key(repo_root: Path) -> None:
    path = repo_root / "examples" / "annotated" / "model.yaml"
    shown = _paths(yaml.safe_load(path.read_text()))
    assert shown == ALL_KEYS
    text = path.read_text()
    for alternative in ALTERNATIVES:
        assert alternative.rsplit(".", 1)[1] in text, f"{alternative} is not mentioned in a comment"


def test_readme_reference_names_every_key(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    section = readme.split("## model.yaml reference", 1)[1].split("\n## ", 1)[0]
    for key in sorted(ALL_KEYS | ALTERNATIVES):
        leaf = key.rsplit(".", 1)[-1].replace("[]", "")
        assert re.search(rf"(?<![\w-]){leaf}(?![\w-])", section), f"README's reference lacks {key}"
