"""The repository writer: layout, manifest hashes, partial rebuilds, and atomicity when anything fails."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from trtrepo._hashing import hash_tree, sha256_bytes, sha256_file
from trtrepo.contracts import IOSpec, ModelArtifacts
from trtrepo.errors import BuildError, SpecError
from trtrepo.ops.build import BuiltOps, TorchLibrary
from trtrepo.repository import config as cfg
from trtrepo.repository import writer
from trtrepo.repository.manifest import MANIFEST_FILENAME, environment
from trtrepo.spec import Spec, load_spec

SPEC = """
repository: repo
models:
  - name: a
    source: json:loads
    inputs:
      - {name: x, shape: [-1, 4], min: [1, 4], opt: [2, 4], max: [4, 4]}
    outputs: [y]
    triton: {max_batch_size: 4, dynamic_batching: true}
  - name: b
    source: json:loads
    target: tensorrt
    inputs:
      - {name: x, shape: [3, 4]}
    outputs: [y]
"""


@pytest.fixture
def project(tmp_path: Path) -> Spec:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "model.yaml").write_text(SPEC)
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "libtrtrepo_plugins.so").write_bytes(b"\x7fELF plugin library v1")
    return load_spec(tmp_path / "proj" / "model.yaml")


def artifacts_a(payload: bytes = b"pt2 bytes v1") -> ModelArtifacts:
    return ModelArtifacts(target="torch", inputs=(IOSpec("x", "fp32", (-1, 4)),),
                          outputs=(IOSpec("y", "fp32", (-1, 4)),), output_names={"y": "y"},
                          files={"model.pt2": payload, "model.py": b"# python backend\n"}, backend="python")


def artifacts_b(lib: Path, payload: bytes = b"plan bytes v1") -> ModelArtifacts:
    return ModelArtifacts(target="tensorrt", inputs=(IOSpec("x", "fp32", (3, 4)),),
                          outputs=(IOSpec("output0", "fp32", (3, 4)),), output_names={"y": "output0"},
                          files={"model.plan": payload}, platform="tensorrt_plan", plugin_libraries=(lib,),
                          gpu_required=True, lowerings={"trtrepo::bias_gelu": "plugin"})


def write_both(spec: Spec, out: Path, tmp_path: Path, **kwargs: object) -> Path:
    lib = tmp_path / "libs" / "libtrtrepo_plugins.so"
    built = {"a": (spec.model("a"), artifacts_a()), "b": (spec.model("b"), artifacts_b(lib))}
    return writer.write_repository(spec, built, out, environment={"trtrepo": "test"}, **kwargs)  # type: ignore[arg-type]


def leftovers(parent: Path, out: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{out.name}."))


def fake_ops(root: Path) -> BuiltOps:
    """Built ops whose torch library is a stand-in file with its build log beside it (what the writer copies)."""
    library = root / "torch" / "libtrtrepo_ops.so"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"ops")
    (library.parent / "build.log").write_text("ops build log\n")
    return BuiltOps(descriptions={}, torch_libraries=(TorchLibrary(library, (), root),), with_cuda=False, ptx={},
                    trt_plugin_library=None, hashes={"torch_library": sha256_bytes(b"ops")})


def test_layout_config_and_manifest(project: Spec, tmp_path: Path) -> None:
    logs = tmp_path / "buildlogs"
    (logs / "b").mkdir(parents=True)
    (logs / "b" / "engine.log").write_text("engine build log\n")
    (logs / "a.export.log").write_text("export of a\n")
    (logs / "build.log").write_text("the whole build\n")
    out = write_both(project, project.repository, tmp_path, log_dir=logs, ops=fake_ops(tmp_path / "cache"))

    assert out == project.repository
    # every root folder is a model folder: tritonserver polls each one as a model
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["a", "b"]
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["launch.sh", MANIFEST_FILENAME]
    assert (out / "a" / "1" / "model.pt2").read_bytes() == b"pt2 bytes v1"
    assert (out / "b" / "1" / "model.plan").read_bytes() == b"plan bytes v1"
    assert (out / "b" / "plugins" / "libtrtrepo_plugins.so").read_bytes() == b"\x7fELF plugin library v1"
    assert not (out / "a" / "plugins").exists()
    assert (out / "b" / "logs" / "engine.log").read_text() == "engine build log\n"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and "/logs/" in str(p)) == [
        "a/logs/a.export.log", "a/logs/build.log", "a/logs/ops/torch_library.build.log",
        "b/logs/build.log", "b/logs/engine.log", "b/logs/ops/torch_library.build.log"]
    assert (out / "a" / "logs" / "ops" / "torch_library.build.log").read_text() == "ops build log\n"
    assert len((out / "a" / "warmup" / "x").read_bytes()) == 1 * 4 * 4  # batch 1, per-sample dims [4], fp32

    config_a = cfg.parse_text((out / "a" / "config.pbtxt").read_text())
    assert config_a == cfg.model_config(project.model("a"), artifacts_a())
    assert config_a.instance_group[0].kind == config_a.instance_group[0].KIND_CPU
    config_b = cfg.parse_text((out / "b" / "config.pbtxt").read_text())
    assert list(config_b.model_operations.op_library_filename) == ["plugins/libtrtrepo_plugins.so"]
    assert config_b.instance_group[0].kind == config_b.instance_group[0].KIND_GPU

    manifest = json.loads((out / MANIFEST_FILENAME).read_text())
    assert manifest["environment"] == {"trtrepo": "test"}
    assert manifest["spec"] == {"path": str(project.path), "sha256": sha256_file(project.path)}
    assert manifest["plugins"] == {"b/plugins/libtrtrepo_plugins.so": sha256_bytes(b"\x7fELF plugin library v1")}
    a, b = manifest["models"]["a"], manifest["models"]["b"]
    assert (a["target"], a["precision"], a["version"], b["target"]) == ("torch", "fp32", 1, "tensorrt")
    assert a["inputs"] == [{"name": "x", "dtype": "fp32", "shape": [-1, 4]}]
    assert b["plugin_libraries"] == ["plugins/libtrtrepo_plugins.so"] and a["plugin_libraries"] == []
    assert b["lowerings"] == {"trtrepo::bias_gelu": "plugin"}
    assert (a["output_names"], b["output_names"]) == ({"y": "y"}, {"y": "output0"})
    assert manifest["ops"] == {"ops": [], "with_cuda": False, "hashes": {"torch_library": sha256_bytes(b"ops")}}
    for record in (a, b):
        assert record["files"], "every artifact file is hashed"
        for rel, digest in record["files"].items():
            assert sha256_file(out / rel) == digest
    assert set(a["files"]) == {"a/1/model.pt2", "a/1/model.py", "a/config.pbtxt", "a/warmup/x"}  # logs: no artifact
    assert "b/plugins/libtrtrepo_plugins.so" in b["files"]

    launch = out / "launch.sh"
    assert launch.is_file() and launch.stat().st_mode & stat.S_IXUSR
    assert '"$HERE"/b/plugins/libtrtrepo_plugins.so' in launch.read_text()
    assert leftovers(out.parent, out) == []


def test_rebuilding_one_model_keeps_the_others(project: Spec, tmp_path: Path) -> None:
    out = write_both(project, project.repository, tmp_path)
    before = hash_tree(out)
    old_manifest = json.loads((out / MANIFEST_FILENAME).read_text())

    writer.write_repository(project, {"a": (project.model("a"), artifacts_a(b"pt2 bytes v2"))}, out,
                            environment={"trtrepo": "test"})

    after = hash_tree(out)
    kept = {k: v for k, v in before.items() if k.startswith("b/")}
    assert "b/plugins/libtrtrepo_plugins.so" in kept
    assert {k: v for k, v in after.items() if k.startswith("b/")} == kept
    assert (out / "a" / "1" / "model.pt2").read_bytes() == b"pt2 bytes v2"
    manifest = json.loads((out / MANIFEST_FILENAME).read_text())
    assert manifest["models"]["b"] == old_manifest["models"]["b"]
    assert manifest["models"]["a"]["files"]["a/1/model.pt2"] == sha256_bytes(b"pt2 bytes v2")
    assert (out / "launch.sh").is_file(), "the kept TensorRT model still needs its plugin flags"


def test_user_files_stay_and_removed_models_go(project: Spec, tmp_path: Path) -> None:
    out = write_both(project, project.repository, tmp_path)
    (out / "README.md").write_text("mine\n")
    only_a = load_spec_text(tmp_path, SPEC.split("  - name: b")[0])
    writer.write_repository(only_a, {"a": (only_a.model("a"), artifacts_a())}, out, environment={})
    assert (out / "README.md").read_text() == "mine\n"
    assert not (out / "b").exists() and not (out / "launch.sh").exists()
    assert set(json.loads((out / MANIFEST_FILENAME).read_text())["models"]) == {"a"}


def load_spec_text(tmp_path: Path, text: str) -> Spec:
    (tmp_path / "proj" / "model.yaml").write_text(text)
    return load_spec(tmp_path / "proj" / "model.yaml")


def _missing_library(spec: Spec, tmp_path: Path) -> dict[str, tuple[object, ModelArtifacts]]:
    return {"a": (spec.model("a"), artifacts_a()), "b": (spec.model("b"), artifacts_b(tmp_path / "nope.so"))}


def _escaping_file(spec: Spec, tmp_path: Path) -> dict[str, tuple[object, ModelArtifacts]]:
    art = artifacts_a()
    art.files["../../escape.txt"] = b"x"
    return {"a": (spec.model("a"), art)}


def _static_batch_dim(spec: Spec, tmp_path: Path) -> dict[str, tuple[object, ModelArtifacts]]:
    art = artifacts_a()
    art.inputs = (IOSpec("x", "fp32", (4, 4)),)
    return {"b": (spec.model("b"), artifacts_b(tmp_path / "libs" / "libtrtrepo_plugins.so", b"v2")),
            "a": (spec.model("a"), art)}


def _plugin_clash(spec: Spec, tmp_path: Path) -> dict[str, tuple[object, ModelArtifacts]]:
    """One model, two different libraries that would both be <model>/plugins/libtrtrepo_plugins.so."""
    other = tmp_path / "other" / "libtrtrepo_plugins.so"
    other.parent.mkdir()
    other.write_bytes(b"a different library")
    b = artifacts_b(tmp_path / "libs" / "libtrtrepo_plugins.so")
    b.plugin_libraries = (*b.plugin_libraries, other)
    return {"a": (spec.model("a"), artifacts_a()), "b": (spec.model("b"), b)}


@pytest.mark.parametrize("make_built", [_missing_library, _escaping_file, _static_batch_dim, _plugin_clash],
                         ids=["missing-library", "escaping-file", "static-batch-dim", "plugin-clash"])
def test_failed_write_leaves_previous_repository_byte_identical(project: Spec, tmp_path: Path, make_built) -> None:
    out = write_both(project, project.repository, tmp_path)
    (out / "README.md").write_text("mine\n")
    before = hash_tree(out)
    with pytest.raises(BuildError):
        writer.write_repository(project, make_built(project, tmp_path), out, environment={})
    assert hash_tree(out) == before
    assert leftovers(out.parent, out) == []
    assert not (tmp_path / "escape.txt").exists()


def test_failed_swap_restores_previous_repository(project: Spec, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The rename scheme: the previous repository went aside, the new one cannot move in: the previous comes back."""
    monkeypatch.setenv("TRTREPO_SWAP", "rename")
    out = write_both(project, project.repository, tmp_path)
    before = hash_tree(out)
    real_rename = os.rename
    calls = []

    def rename(src: str | Path, dst: str | Path) -> None:
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # previous → backup succeeded; staging → target fails (e.g. disk quota)
            raise OSError("injected rename failure")
        real_rename(src, dst)

    monkeypatch.setattr(writer.os, "rename", rename)
    with pytest.raises(BuildError, match="could not move the new repository"):
        write_both(project, out, tmp_path)
    monkeypatch.undo()
    assert [dst for _, dst in calls] == [calls[0][1], "repo", "repo"] and ".repo.previous-" in calls[0][1]
    assert hash_tree(out) == before
    assert leftovers(out.parent, out) == []


def test_failed_exchange_leaves_previous_repository(project: Spec, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    out = write_both(project, project.repository, tmp_path)
    before = hash_tree(out)

    def exchange(a: Path, b: Path) -> bool:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(b))

    monkeypatch.setattr(writer, "exchange", exchange)
    expected = f"repository: could not move the new repository into {out}: {os.strerror(errno.EIO)}"
    with pytest.raises(BuildError, match=f"^{re.escape(expected)}$"):
        write_both(project, out, tmp_path)
    assert hash_tree(out) == before
    assert leftovers(out.parent, out) == []


def test_the_exchange_swaps_two_folders_in_one_step(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "from_a").write_text("a")
    (tmp_path / "b").mkdir()
    if not writer.exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this filesystem has no RENAME_EXCHANGE (the rename scheme is tested on its own)")
    assert (tmp_path / "b" / "from_a").is_file() and list((tmp_path / "a").iterdir()) == []


def test_rebuild_in_rename_mode(project: Spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTREPO_SWAP", "rename")
    out = write_both(project, project.repository, tmp_path)
    writer.write_repository(project, {"a": (project.model("a"), artifacts_a(b"v2"))}, out, environment={})
    assert (out / "a" / "1" / "model.pt2").read_bytes() == b"v2" and (out / "b" / "1" / "model.plan").is_file()
    assert leftovers(out.parent, out) == []


def _killed_leftovers(out: Path, *names: str) -> None:
    for name in names:
        (out.parent / name / "half").mkdir(parents=True)
        (out.parent / name / "half" / "written").write_text("x")


def test_next_build_removes_what_killed_builds_left(project: Spec, tmp_path: Path) -> None:
    out = write_both(project, project.repository, tmp_path)
    _killed_leftovers(out, ".repo.staging-123-00000000", ".repo.staging-abc", ".repo.previous-77-11111111")
    told: list[str] = []
    writer.write_repository(project, {"a": (project.model("a"), artifacts_a(b"v2"))}, out, environment={},
                            progress=told.append)
    assert leftovers(out.parent, out) == []
    assert sorted(told) == sorted(f"write: removed {n} beside {out} (left by a build that was killed)"
                                  for n in (".repo.staging-123-00000000", ".repo.staging-abc",
                                            ".repo.previous-77-11111111"))
    assert (out / "b" / "1" / "model.plan").is_file(), "the models of the repository at the path stay"


def test_a_backup_beside_a_missing_repository_is_restored(project: Spec, tmp_path: Path) -> None:
    """Killed between the two renames: the next build must bring the old models back, not start a new repository."""
    out = write_both(project, project.repository, tmp_path)
    before = hash_tree(out)
    backup = out.parent / ".repo.previous-4242-deadbeef"
    os.rename(out, backup)
    _killed_leftovers(out, ".repo.staging-4242-cafecafe")
    told: list[str] = []
    writer.write_repository(project, {"a": (project.model("a"), artifacts_a(b"v2"))}, out, environment={},
                            progress=told.append)
    assert told[0] == f"write: restored {out} from {backup.name} (a build was killed while it swapped the repository)"
    assert {k: v for k, v in hash_tree(out).items() if k.startswith("b/")} == {
        k: v for k, v in before.items() if k.startswith("b/")}, "the kept model came back"
    assert set(json.loads((out / MANIFEST_FILENAME).read_text())["models"]) == {"a", "b"}
    assert leftovers(out.parent, out) == []


def test_two_backups_beside_a_missing_repository_are_not_guessed_between(project: Spec, tmp_path: Path) -> None:
    out = write_both(project, project.repository, tmp_path)
    os.rename(out, out.parent / ".repo.previous-1-aaaaaaaa")
    shutil.copytree(out.parent / ".repo.previous-1-aaaaaaaa", out.parent / ".repo.previous-2-bbbbbbbb")
    with pytest.raises(BuildError) as info:
        write_both(project, out, tmp_path)
    assert info.value.message == (f"repository: {out} is missing and 2 backups of it are beside it "
                                  "(.repo.previous-1-aaaaaaaa, .repo.previous-2-bbbbbbbb); cannot tell which one to "
                                  "restore")
    assert info.value.hint == f"move the one to keep to {out}, then build again"
    assert not out.exists() and len(leftovers(out.parent, out)) == 2


def test_failed_build_leaves_previous_repository_byte_identical(project: Spec, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The orchestrator: a SpecError, or a target raising after another model was built, writes nothing."""
    pytest.importorskip("torch", reason="build() exports with torch")
    from trtrepo import build as build_mod
    from trtrepo.targets import base

    proj = tmp_path / "proj"
    (proj / "tinynet.py").write_text(
        "import torch\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n\n"
        "def build():\n    return Net()\n")
    (proj / "model.yaml").write_text(SPEC.replace("json:loads", "tinynet:build").replace("target: tensorrt",
                                                                                         "target: torch"))
    spec = load_spec(proj / "model.yaml")
    out = write_both(spec, spec.repository, tmp_path)
    before = hash_tree(out)

    with pytest.raises(SpecError, match=r"^--models: unknown model 'nope'$"):
        build_mod.build(spec.path, models="a,nope")
    assert hash_tree(out) == before

    calls = []

    def target(ctx: base.BuildContext, model: object, ep: object) -> ModelArtifacts:
        calls.append(model.name)  # type: ignore[attr-defined]
        if model.name == "b":  # type: ignore[attr-defined]
            raise RuntimeError("target failed mid-build")
        return artifacts_a(b"new")

    monkeypatch.setattr(base, "get_target", lambda name: target)
    with pytest.raises(RuntimeError, match="target failed mid-build"):
        build_mod.build(spec.path, target="torch")
    assert calls == ["a", "b"]
    assert hash_tree(out) == before
    assert leftovers(out.parent, out) == []


def test_environment_facts_are_cheap_and_complete() -> None:
    env = environment()
    for key in ("trtrepo", "python", "torch", "tensorrt", "torch_tensorrt", "tritonclient"):
        assert key in env
    assert env["python"].count(".") == 2


def test_models_of_another_spec_sharing_the_repository_stay(project: Spec, tmp_path: Path) -> None:
    out = write_both(project, project.repository, tmp_path)
    other_dir = tmp_path / "other_proj"
    other_dir.mkdir()
    (other_dir / "model.yaml").write_text(f"repository: {out}\n" + SPEC.split("  - name: b")[0].replace(
        "repository: repo\n", "").replace("name: a", "name: c"))
    other = load_spec(other_dir / "model.yaml")
    before = hash_tree(out)
    writer.write_repository(other, {"c": (other.model("c"), artifacts_a())}, out, environment={})
    after = hash_tree(out)
    assert {k: v for k, v in after.items() if k.startswith(("a/", "b/"))} == {
        k: v for k, v in before.items() if k.startswith(("a/", "b/"))}
    models = json.loads((out / MANIFEST_FILENAME).read_text())["models"]
    assert set(models) == {"a", "b", "c"}
    assert models["c"]["spec"] == str(other.path) and models["a"]["spec"] == str(project.path)


def test_models_get_their_own_copy_and_launch_sh_lists_one(project: Spec, tmp_path: Path) -> None:
    """Two TensorRT models with one library: a copy in each model folder, one entry in the server-wide flags."""
    spec = load_spec_text(tmp_path, SPEC.replace("  - name: a\n    source: json:loads\n",
                                                 "  - name: a\n    source: json:loads\n    target: tensorrt\n"))
    lib = tmp_path / "libs" / "libtrtrepo_plugins.so"
    a = artifacts_b(lib)
    a.inputs, a.outputs = (IOSpec("x", "fp32", (-1, 4)),), (IOSpec("y", "fp32", (-1, 4)),)
    out = writer.write_repository(spec, {"a": (spec.model("a"), a), "b": (spec.model("b"), artifacts_b(lib))},
                                  spec.repository, environment={})
    for name in ("a", "b"):
        assert (out / name / "plugins" / lib.name).read_bytes() == lib.read_bytes()
        assert list(cfg.parse_text((out / name / "config.pbtxt").read_text())
                    .model_operations.op_library_filename) == [f"plugins/{lib.name}"]
    assert set(json.loads((out / MANIFEST_FILENAME).read_text())["plugins"]) == {
        f"a/plugins/{lib.name}", f"b/plugins/{lib.name}"}
    plugin_lines = [line for line in (out / "launch.sh").read_text().splitlines() if line.startswith("plugins=(")]
    assert plugin_lines == [f'plugins=("$HERE"/a/plugins/{lib.name})']


def test_kept_tensorrt_model_takes_the_rebuilt_library(project: Spec, tmp_path: Path) -> None:
    """TensorRT plans share the server's plugin registry: a kept plan must not bring an older copy of the library."""
    spec = load_spec_text(tmp_path, SPEC.replace("  - name: a\n    source: json:loads\n",
                                                 "  - name: a\n    source: json:loads\n    target: tensorrt\n"))
    lib = tmp_path / "libs" / "libtrtrepo_plugins.so"
    a = artifacts_b(lib)
    a.inputs, a.outputs = (IOSpec("x", "fp32", (-1, 4)),), (IOSpec("y", "fp32", (-1, 4)),)
    out = writer.write_repository(spec, {"a": (spec.model("a"), a), "b": (spec.model("b"), artifacts_b(lib))},
                                  spec.repository, environment={})
    lib.write_bytes(b"\x7fELF plugin library v2")
    writer.write_repository(spec, {"a": (spec.model("a"), a)}, out, environment={})
    assert (out / "b" / "plugins" / lib.name).read_bytes() == b"\x7fELF plugin library v2"
    manifest = json.loads((out / MANIFEST_FILENAME).read_text())
    assert manifest["models"]["b"]["files"][f"b/plugins/{lib.name}"] == sha256_bytes(b"\x7fELF plugin library v2")
    assert manifest["plugins"][f"b/plugins/{lib.name}"] == manifest["plugins"][f"a/plugins/{lib.name}"]


def test_a_folder_holding_only_a_placeholder_readme_is_built_into(project: Spec, tmp_path: Path) -> None:
    """model_repository/README.md of a fresh checkout: empty but for what git keeps; the README stays."""
    project.repository.mkdir()
    (project.repository / "README.md").write_text("trtrepo writes here\n")
    (project.repository / ".gitkeep").write_text("")
    out = write_both(project, project.repository, tmp_path)
    assert (out / "README.md").read_text() == "trtrepo writes here\n" and (out / ".gitkeep").is_file()
    assert (out / MANIFEST_FILENAME).is_file()


@pytest.mark.parametrize("entries", [["notes.txt"], ["README.md", "model_a"], ["README.md/"]],
                         ids=["a-file", "readme-and-a-folder", "readme-that-is-a-folder"])
def test_a_folder_of_other_files_is_refused_and_left_alone(project: Spec, tmp_path: Path, entries: list[str]) -> None:
    out = project.repository
    out.mkdir()
    for entry in entries:
        (out / entry).mkdir() if entry.endswith("/") or "." not in entry else (out / entry).write_text("x")
    before = hash_tree(out)
    with pytest.raises(SpecError) as info:
        write_both(project, out, tmp_path)
    foreign = ", ".join(sorted(e.rstrip("/") for e in entries if e != "README.md"))
    assert info.value.message == (f"repository: {out} is not a trtrepo repository (it has no {MANIFEST_FILENAME}) and "
                                  f"holds files trtrepo did not write: {foreign}")
    assert hash_tree(out) == before and sorted(os.listdir(out)) == sorted(e.rstrip("/") for e in entries)
    assert leftovers(out.parent, out) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o2775])
def test_the_repository_folder_keeps_its_mode(project: Spec, tmp_path: Path, mode: int) -> None:
    """tritonserver may run as another user: a rebuild must not turn a 755 repository into 700."""
    out = write_both(project, project.repository, tmp_path)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~_umask(), "a new repository gets the umask's mode"
    os.chmod(out, mode)
    writer.write_repository(project, {"a": (project.model("a"), artifacts_a(b"v2"))}, out, environment={})
    assert stat.S_IMODE(out.stat().st_mode) == mode


def test_kept_files_keep_their_hard_links_and_inode(project: Spec, tmp_path: Path) -> None:
    out = write_both(project, project.repository, tmp_path)
    outside = tmp_path / "model.plan.link"
    os.link(out / "b" / "1" / "model.plan", outside)
    (out / "NOTES.txt").write_text("mine\n")
    os.chmod(out / "NOTES.txt", 0o600)
    notes = (out / "NOTES.txt").stat()
    writer.write_repository(project, {"a": (project.model("a"), artifacts_a(b"v2"))}, out, environment={})
    kept = (out / "b" / "1" / "model.plan").stat()
    assert (kept.st_ino, kept.st_nlink) == (outside.stat().st_ino, 2)
    again = (out / "NOTES.txt").stat()
    assert (again.st_ino, stat.S_IMODE(again.st_mode), again.st_mtime_ns) == (
        notes.st_ino, 0o600, notes.st_mtime_ns)


def test_a_replaced_kept_library_does_not_write_through_its_hard_link(project: Spec, tmp_path: Path) -> None:
    """The kept TensorRT model takes the rebuilt library: the previous repository's file must stay as it was."""
    spec = load_spec_text(tmp_path, SPEC.replace("  - name: a\n    source: json:loads\n",
                                                 "  - name: a\n    source: json:loads\n    target: tensorrt\n"))
    lib = tmp_path / "libs" / "libtrtrepo_plugins.so"
    a = artifacts_b(lib)
    a.inputs, a.outputs = (IOSpec("x", "fp32", (-1, 4)),), (IOSpec("y", "fp32", (-1, 4)),)
    out = writer.write_repository(spec, {"a": (spec.model("a"), a), "b": (spec.model("b"), artifacts_b(lib))},
                                  spec.repository, environment={})
    old_copy = tmp_path / "old_library_copy"
    os.link(out / "b" / "plugins" / lib.name, old_copy)
    lib.write_bytes(b"\x7fELF plugin library v2")
    writer.write_repository(spec, {"a": (spec.model("a"), a)}, out, environment={})
    assert (out / "b" / "plugins" / lib.name).read_bytes() == b"\x7fELF plugin library v2"
    assert old_copy.read_bytes() == b"\x7fELF plugin library v1"


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving files another owner needs root")


@needs_root
def test_owners_are_kept(project: Spec, tmp_path: Path) -> None:
    out = write_both(project, project.repository, tmp_path)
    os.chown(out, 1234, 2345)
    for path in (out / "b", out / "b" / "1", out / "b" / "1" / "model.plan"):
        os.chown(path, 4321, 5432)
    writer.write_repository(project, {"a": (project.model("a"), artifacts_a(b"v2"))}, out, environment={})
    assert (out.stat().st_uid, out.stat().st_gid) == (1234, 2345)
    for path in (out / "b", out / "b" / "1", out / "b" / "1" / "model.plan"):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 5432), path


@needs_root
def test_where_links_are_refused_copies_keep_owner_mode_and_links_among_them(
        project: Spec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = write_both(project, project.repository, tmp_path)
    plan = out / "b" / "1" / "model.plan"
    os.link(plan, out / "b" / "1" / "same.plan")
    os.chown(plan, 4321, 5432)
    os.chmod(plan, 0o640)
    real_link = os.link

    def link(src: object, dst: object, **kwargs: object) -> None:
        if Path(str(src)).is_relative_to(out):  # the previous repository's files: as if across a protected boundary
            raise PermissionError(1, "Operation not permitted")
        real_link(src, dst, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writer.os, "link", link)
    writer.write_repository(project, {"a": (project.model("a"), artifacts_a(b"v2"))}, out, environment={})
    copied, twin = plan.stat(), (out / "b" / "1" / "same.plan").stat()
    assert copied.st_ino == twin.st_ino and copied.st_nlink == 2, "hard links among kept files stay links"
    assert (copied.st_uid, copied.st_gid, stat.S_IMODE(copied.st_mode)) == (4321, 5432, 0o640)
    assert plan.read_bytes() == b"plan bytes v1"


@pytest.mark.parametrize(("content", "reason"), [
    ('{"schema": 1, "models": {"b": {"plugins": ["plugins/lib.so"]}}}',
     "is schema 1, written by another trtrepo (this one writes schema 2)"),
    ("{not json", None),
    ('{"schema": 2, "models": {"b": {"target": "torch"}}}', None),  # names the record and the missing field
], ids=["schema-1", "not-json", "malformed-record"])
def test_a_manifest_that_cannot_be_read_back_is_refused_with_the_fix(project: Spec, tmp_path: Path, content: str,
                                                                      reason: str | None) -> None:
    out = write_both(project, project.repository, tmp_path)
    (out / MANIFEST_FILENAME).write_text(content)
    before = hash_tree(out)
    with pytest.raises(BuildError) as info:
        write_both(project, out, tmp_path)
    message = info.value.message
    assert message.startswith(f"repository: {out / MANIFEST_FILENAME}") and message.endswith(
        "; its models cannot be kept")
    if reason is not None:
        assert message == f"repository: {out / MANIFEST_FILENAME} {reason}; its models cannot be kept"
    assert info.value.hint == f"move the repository aside and build every model again (mv {out} {out}.old)"
    assert hash_tree(out) == before and leftovers(out.parent, out) == []


def test_the_repository_folder_keeps_its_extended_attributes(project: Spec, tmp_path: Path) -> None:
    out = write_both(project, project.repository, tmp_path)
    try:
        os.setxattr(out, "user.trtrepo-test", b"kept")
    except OSError as exc:
        pytest.skip(f"this filesystem takes no user extended attributes ({exc.strerror})")
    writer.write_repository(project, {"a": (project.model("a"), artifacts_a(b"v2"))}, out, environment={})
    assert os.getxattr(out, "user.trtrepo-test") == b"kept"


def test_a_full_disk_while_staging_is_a_build_error_and_changes_nothing(project: Spec, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = write_both(project, project.repository, tmp_path)
    before = hash_tree(out)

    def no_space(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", no_space)
    with pytest.raises(BuildError) as info:
        write_both(project, out, tmp_path)
    monkeypatch.undo()
    assert re.fullmatch(rf"repository: cannot write the new repository beside {re.escape(str(out))}: "
                        rf"{os.strerror(errno.ENOSPC)} \(.*/\.repo\.staging-\d+-[0-9a-f]{{8}}/a/1/model\.pt2\); the "
                        "previous one is unchanged", info.value.message)
    assert hash_tree(out) == before and leftovers(out.parent, out) == []
