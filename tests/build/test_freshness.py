"""A build with nothing changed writes nothing and says ``up to date``; a change to what a model is built from (its
factory's files, its model.yaml entry, an op folder, a repository file edited by hand) builds again; ``--force``
always builds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from buildproc import Builds, tiny_project

from trtrepo._hashing import hash_tree
from trtrepo.freshness import inputs_key, up_to_date
from trtrepo.repository.manifest import MANIFEST_FILENAME
from trtrepo.spec import load_spec

REPO = Path(__file__).resolve().parents[2]


def _built(stderr: str) -> bool:
    return any(line.startswith("export: ") for line in stderr.splitlines())


@pytest.mark.integration
def test_unchanged_build_writes_nothing_and_changes_build_again(builds: Builds, tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    spec = tiny_project(tmp_path / "proj", "alpha", repository)
    first = builds.run(["build", str(spec)])
    assert first.returncode == 0 and _built(first.stderr), first.stderr
    manifest = repository / MANIFEST_FILENAME
    before, stat = hash_tree(repository), manifest.stat()

    again = builds.run(["build", str(spec)])
    assert again.returncode == 0 and not _built(again.stderr), again.stderr
    assert any(line.startswith(f"up to date: {repository}") for line in again.stderr.splitlines())
    assert hash_tree(repository) == before and (manifest.stat().st_ino, manifest.stat().st_mtime_ns) == (
        stat.st_ino, stat.st_mtime_ns), "an up-to-date build must not rewrite the repository"

    forced = builds.run(["build", str(spec), "--force"])
    assert forced.returncode == 0 and _built(forced.stderr)

    with (spec.parent / "helpers.py").open("w") as f:  # a new file in the factory's folder
        f.write("SCALE = 3\n")
    changed = builds.run(["build", str(spec)])
    assert changed.returncode == 0 and _built(changed.stderr), "a file of the factory's folder changed"
    assert builds.run(["build", str(spec)]).returncode == 0

    config = repository / "alpha" / "config.pbtxt"
    config.write_text(config.read_text() + "\n# edited by hand\n")
    repaired = builds.run(["build", str(spec)])
    assert repaired.returncode == 0 and _built(repaired.stderr), "a repository edited by hand is rebuilt"
    assert "edited by hand" not in config.read_text()


def test_the_key_follows_what_the_model_is_built_from(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    shutil.copytree(REPO / "plugin_src" / "bias_gelu", ops / "bias_gelu")
    spec_path = tiny_project(tmp_path / "proj", "alpha", tmp_path / "repo")
    text = spec_path.read_text().replace("models:", f"plugin_sources: [{ops}]\nmodels:", 1)
    spec_path.write_text(text + "  - name: beta\n    source: {factory: \"net:build\"}\n    target: torch\n"
                         "    inputs: [{name: x, shape: [-1, 4], min: [1, 4], opt: [2, 4], max: [8, 4]}]\n"
                         "    outputs: [y]\n")

    def key(model: str = "alpha", target: str = "torch", device: str = "cpu") -> str | None:
        spec = load_spec(spec_path)
        return inputs_key(spec, next(m for m in spec.models if m.name == model), target, device)

    base = key()
    assert base is not None and base == key()
    assert key(device="cuda") != base and key(target="tensorrt") != base
    spec_path.write_text(spec_path.read_text().replace("max: [8, 4]}]\n    outputs: [y]\n",
                                                       "max: [16, 4]}]\n    outputs: [y]\n"))
    assert key() == base, "another model's entry changed, not alpha's"
    spec_path.write_text(spec_path.read_text().replace("triton: {max_batch_size: 8}", "triton: {max_batch_size: 4}"))
    assert key() != base, "alpha's own entry changed"
    base = key()
    op_yaml = ops / "bias_gelu" / "op.yaml"
    op_yaml.write_text(op_yaml.read_text() + "# a comment\n")
    assert key() != base, "an op folder changed"
    base = key()
    (spec_path.parent / "net.py").write_text((spec_path.parent / "net.py").read_text() + "# changed\n")
    assert key() != base, "the factory changed"


def test_up_to_date_needs_every_key_and_a_clean_repository() -> None:
    class Record:
        def __init__(self, key: str | None) -> None:
            self.inputs_key = key

    records = {"a": Record("k1"), "b": Record("k2")}
    assert up_to_date(records, {"a": "k1", "b": "k2"}, repository_ok=True)
    assert not up_to_date(records, {"a": "k1", "b": "k2"}, repository_ok=False)
    assert not up_to_date(records, {"a": "k1", "b": "other"}, repository_ok=True)
    assert not up_to_date(records, {"a": "k1", "c": "k3"}, repository_ok=True)
    assert not up_to_date(records, {"a": None}, repository_ok=True)
    assert not up_to_date({"a": Record(None)}, {"a": "k1"}, repository_ok=True)
    assert not up_to_date(records, {}, repository_ok=True)
