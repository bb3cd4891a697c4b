"""The manifest check before serving (no server, no build): changed, missing and extra files, and what the Python
backend writes into ``__pycache__``."""

from __future__ import annotations

import importlib.util
import logging
import marshal
import os
from pathlib import Path

import pytest

from trtrepo._hashing import hash_tree
from trtrepo.errors import ServeError
from trtrepo.repository.manifest import Manifest, ServingRecord
from trtrepo.serve import Finding, inspect_repository, verify_repository

MODEL_PY = "class TritonPythonModel:\n    def execute(self, requests):\n        return []\n"


def _repository(root: Path) -> Path:
    """A repository as a build leaves it: model ``m`` with config, model.py, a library, logs; its manifest."""
    model = root / "m"
    (model / "1").mkdir(parents=True)
    (model / "plugins").mkdir()
    (model / "logs").mkdir()
    (model / "config.pbtxt").write_text('name: "m"\nbackend: "python"\n')
    (model / "1" / "model.py").write_text(MODEL_PY)
    (model / "plugins" / "libops.so").write_bytes(b"\x7fELF library")
    (model / "logs" / "build.log").write_text("not recorded, not served\n")
    files = {f"m/{rel}": sha for rel, sha in hash_tree(model, skip=["logs"]).items()}
    record = ServingRecord(target="torch", version=1, precision="fp32", inputs=(), outputs=(), output_names={},
                           backend="python", plugin_libraries=("plugins/libops.so",), files=files)
    manifest = Manifest(environment={}, spec_path="/specs/model.yaml", spec_sha256="", device="cpu",
                        models={"m": record}, plugins={"m/plugins/libops.so": files["m/plugins/libops.so"]})
    (root / "trtrepo-manifest.json").write_text(__import__("json").dumps(manifest.to_dict()))
    return root


def _pyc(source: Path, code: str | None = None, *, mtime_shift: int = 0) -> Path:
    """``__pycache__`` entry of ``source`` as the import system writes it (``code`` under source's header)."""
    stat = source.stat()
    body = compile(code if code is not None else source.read_bytes(), str(source), "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little") + \
        ((int(stat.st_mtime) + mtime_shift) & 0xFFFFFFFF).to_bytes(4, "little") + \
        (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    target = Path(importlib.util.cache_from_source(str(source)))
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(header + marshal.dumps(body))
    return target


def test_a_repository_as_built_verifies(tmp_path: Path) -> None:
    result = inspect_repository(_repository(tmp_path))
    assert result.ok and result.has_manifest and result.files_checked == 3 and result.findings == ()
    assert verify_repository(tmp_path).ok


def test_changed_missing_and_extra_files_are_named_in_path_order(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    (repo / "m" / "1" / "model.py").write_text(MODEL_PY + "# edited\n")
    (repo / "m" / "plugins" / "libops.so").unlink()
    (repo / "m" / "1" / "extra.bin").write_bytes(b"x")
    (repo / "m" / "logs" / "new.log").write_text("logs are never findings\n")
    result = inspect_repository(repo)
    assert [(f.path, f.kind) for f in result.findings] == [
        ("m/1/extra.bin", "extra"), ("m/1/model.py", "changed"), ("m/plugins/libops.so", "missing")]
    assert result.findings[1].detail.startswith("manifest sha256 ") and ", file " in result.findings[1].detail
    with pytest.raises(ServeError) as info:
        verify_repository(repo)
    assert info.value.message == (f"repository {repo}: m/1/extra.bin is not in the manifest; m/1/model.py changed "
                                  f"after the build ({result.findings[1].detail}); m/plugins/libops.so is missing")
    assert info.value.hint == "rebuild it (trtrepo build /specs/model.yaml), or pass --allow-modified to serve it " \
                              "as it is"


def test_more_than_three_findings_are_counted(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    for name in ("a", "b", "c", "d", "e"):
        (repo / "m" / "1" / name).write_text(name)
    with pytest.raises(ServeError, match=r"m/1/a is not in the manifest; m/1/b .*; m/1/c .*; and 2 more$"):
        verify_repository(repo)


def test_allow_modified_warns_naming_each_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    repo = _repository(tmp_path)
    (repo / "m" / "config.pbtxt").write_text('name: "m"\nbackend: "python"\nmax_batch_size: 4\n')
    with caplog.at_level(logging.WARNING, logger="trtrepo.serve.verify"):
        result = verify_repository(repo, allow_modified=True)
    assert not result.ok
    assert [r.getMessage() for r in caplog.records] == [
        f"{repo}: {result.findings[0].describe()}: served anyway (--allow-modified)"]
    assert result.findings[0].path == "m/config.pbtxt"


def test_the_servers_own_pyc_is_accepted_and_a_forged_one_is_not(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    source = repo / "m" / "1" / "model.py"
    pyc = _pyc(source)
    assert inspect_repository(repo).ok, "the bytecode of the recorded model.py is what Python runs anyway"
    _pyc(source, "raise SystemExit('other code')")  # same header: Python would run this instead of model.py
    assert [(f.path, f.kind) for f in inspect_repository(repo).findings] == [
        (pyc.relative_to(repo).as_posix(), "extra")]
    _pyc(source, "raise SystemExit('other code')", mtime_shift=-100)  # stale header: Python recompiles
    assert inspect_repository(repo).ok


def test_pyc_of_an_edited_source_is_that_edit_not_a_second_finding(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    source = repo / "m" / "1" / "model.py"
    source.write_text(MODEL_PY + "x = 1\n")
    _pyc(source)
    assert [(f.path, f.kind) for f in inspect_repository(repo).findings] == [("m/1/model.py", "changed")]


def test_pyc_without_a_recorded_source_and_other_cache_files_are_extra(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    helper = repo / "m" / "1" / "helper.py"
    helper.write_text("y = 2\n")
    pyc = _pyc(helper)
    helper.unlink()
    (pyc.parent / "notes.txt").write_text("?")
    assert sorted(f.path for f in inspect_repository(repo).findings) == [
        pyc.relative_to(repo).as_posix(), "m/1/__pycache__/notes.txt"]


def test_a_symlinked_folder_is_one_extra_entry(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    target = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    target.mkdir()
    (target / "big.bin").write_bytes(b"0" * 10)
    os.symlink(target, repo / "m" / "2")
    assert [(f.path, f.kind) for f in inspect_repository(repo).findings] == [("m/2", "extra")]


def test_unrecorded_model_folders_are_listed_and_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    repo = _repository(tmp_path)
    (repo / "theirs").mkdir()
    (repo / "theirs" / "config.pbtxt").write_text('name: "theirs"\n')
    (repo / "README.md").write_text("root files are not models\n")
    with caplog.at_level(logging.WARNING, logger="trtrepo.serve.verify"):
        result = verify_repository(repo)
    assert result.ok and result.unrecorded_models == ("theirs",)
    assert caplog.records[0].getMessage() == f"{repo}: model folder 'theirs' is not in the manifest: served unverified"


def test_without_manifest_nothing_is_claimed(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    (repo / "trtrepo-manifest.json").unlink()
    (repo / "m" / "1" / "model.py").write_text("anything\n")
    result = verify_repository(repo)
    assert result.ok and not result.has_manifest and result.files_checked == 0


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.mkdir(), "{p}: not a readable file"),
    (lambda p: p.symlink_to(p.parent / "nowhere.json"), "{p}: not a readable file"),
    (lambda p: p.write_bytes(b"\xff\xfe{"), "{p}: not JSON: 'utf-8' codec can't decode byte 0xff in position 0: "
                                            "invalid start byte"),
], ids=["folder", "dangling-symlink", "not-utf8"])
def test_a_manifest_that_cannot_be_read_is_an_error_not_no_manifest(tmp_path: Path, make, message: str) -> None:
    repo = _repository(tmp_path)
    manifest = repo / "trtrepo-manifest.json"
    manifest.unlink()
    make(manifest)
    with pytest.raises(ServeError) as info:
        inspect_repository(repo)
    assert info.value.message == message.format(p=manifest)


def test_finding_lines() -> None:
    assert Finding("m/1/x", "missing").describe() == "m/1/x is missing"
    assert Finding("m/1/x", "unreadable", "Permission denied").describe() == "m/1/x cannot be read (Permission denied)"
