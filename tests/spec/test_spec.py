"""model.yaml validation: every broken spec fails with its exact one-line message; good specs parse to the values."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from trtrepo._hashing import hash_tree
from trtrepo.cli import main
from trtrepo.errors import SpecError
from trtrepo.spec import load_spec

HERE = Path(__file__).resolve().parent
BROKEN = sorted((HERE / "broken").glob("*.yaml"))
GOOD = sorted((HERE / "good").glob("*.yaml"))


@pytest.fixture(autouse=True)
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of its own (``{home}`` in messages): specs that name ``~`` must not depend on the machine's."""
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def _expected(path: Path, home: Path | None = None) -> tuple[str, str | None]:
    """The `# expect:` message and optional `# hint:` of a broken spec, placeholders filled in."""
    lines = path.read_text().splitlines()
    match = re.match(r"^# expect: (.+)$", lines[0]) if lines else None
    assert match, f"{path.name}: first line must be '# expect: <message>'"
    hint = lines[1][len("# hint: "):] if len(lines) > 1 and lines[1].startswith("# hint: ") else None

    def fill(text: str) -> str:
        return text.replace("{path}", str(path)).replace("{root}", str(path.parent)).replace(
            "{parent}", str(path.parent.parent)).replace("{home}", str(home))

    return fill(match.group(1)), fill(hint) if hint else None


def _tree(root: Path) -> dict[str, str]:
    return {k: v for k, v in hash_tree(root).items() if "__pycache__" not in k}


def test_broken_corpus_covers_the_issue() -> None:
    assert len(BROKEN) >= 24
    names = {p.stem for p in BROKEN}
    for required in ("unknown_key_model", "opt_above_max", "min_above_opt", "rank_mismatch", "static_dim_disagrees",
                     "batching_without_dynamic_dim0", "profile_max_below_max_batch_size",
                     "dynamic_batching_without_batching", "duplicate_model_names", "duplicate_input_names",
                     "duplicate_output_names", "name_escapes_repository", "name_with_slash", "missing_factory_module",
                     "missing_exported_program", "bad_version_policy_key", "bad_lowering", "bad_op_name",
                     "bad_yaml_syntax", "empty", "repository_contains_spec",
                     # issue 14: taken-over folders (class 2) and silently accepted specs (class 8)
                     "repository_is_home", "repository_is_filesystem_root", "repository_is_tmp",
                     "duplicate_key_models", "name_with_trailing_newline", "op_name_with_trailing_newline",
                     "factory_with_trailing_newline", "version_beyond_int64", "max_batch_size_beyond_int32",
                     "dim_beyond_int32", "static_dim_needs_terabytes"):
        assert required in names


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_spec_message(path: Path, fake_home: Path) -> None:
    message, hint = _expected(path, fake_home)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.message == message
    assert "\n" not in info.value.message
    assert info.value.exit_code == 2
    if hint is not None:
        assert info.value.hint == hint


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_spec_through_cli(path: Path, capsys: pytest.CaptureFixture[str], fake_home: Path) -> None:
    message, hint = _expected(path, fake_home)
    before = _tree(path.parent.parent)
    code = main(["build", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == f"error: {message}"
    assert lines[1:] == ([f"hint: {hint}"] if hint else [])
    assert _tree(path.parent.parent) == before, "a failed build must write nothing"


def test_did_you_mean_on_unknown_key(tmp_path: Path) -> None:
    spec = tmp_path / "model.yaml"
    spec.write_text("models:\n  - name: m\n    source: json:loads\n    inputs: [{name: x, shape: [1]}]\n"
                    "    outputs: [y]\n    precison: fp16\n")
    with pytest.raises(SpecError, match=r"^models\[0\]\.precison: unknown key \(did you mean 'precision'\?\)$"):
        load_spec(spec)


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_spec_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.path == path
    assert spec.models


def test_minimal_spec_defaults() -> None:
    spec = load_spec(HERE / "good" / "minimal.yaml")
    (model,) = spec.models
    assert spec.repository == HERE / "good" / "model_repository"
    assert spec.plugin_sources == ()
    assert (model.name, model.version, model.precision, model.target) == ("tiny", 1, "fp32", "auto")
    assert model.source.factory == "tiny_net:build"
    (x,) = model.inputs
    assert (x.dtype, x.shape, x.min, x.opt, x.max) == ("fp32", (2, 8), (2, 8), (2, 8), (2, 8))
    assert model.outputs[0].name == "y" and model.outputs[0].atol is None
    assert model.triton.max_batch_size == 0 and model.triton.dynamic_batching is None
    assert model.triton.version_policy.kind == "latest" and model.triton.version_policy.latest == 1
    assert model.triton.warmup.enabled and model.triton.warmup.data == "sample"
    assert model.lowering("trtrepo::anything") == "decompose"


def test_full_spec_values() -> None:
    spec = load_spec(HERE / "good" / "full.yaml")
    a, b = spec.models
    assert spec.repository == HERE / "good" / "out" / "repo"
    assert spec.plugin_sources == (HERE / "good" / "ops_dir",)
    assert (a.name, a.version, a.precision, a.target) == ("block-a", 3, "fp16", "torch")
    assert a.inputs[0].dynamic_axes == (0, 1) and a.inputs[0].max == (16, 128, 64)
    assert a.inputs[1].dtype == "int64"
    assert (a.outputs[0].atol, a.outputs[0].rtol) == (1e-2, 0.005) and a.outputs[1].name == "z"
    assert a.lowering("trtrepo::bias_gelu") == "plugin" and a.lowering("trtrepo::rms_norm") == "aot"
    t = a.triton
    assert t.max_batch_size == 16
    assert t.dynamic_batching is not None and t.dynamic_batching.preferred_batch_size == (4, 8)
    assert t.dynamic_batching.max_queue_delay_microseconds == 250
    assert [(g.kind, g.count, g.gpus) for g in t.instance_groups] == [("gpu", 2, (0, 1)), ("cpu", 1, ())]
    assert (t.version_policy.kind, t.version_policy.versions) == ("specific", (1, 3))
    assert (t.warmup.enabled, t.warmup.data, t.warmup.count) == (True, "random", 2)
    assert (a.parity.atol, a.parity.rtol, a.parity.samples, a.parity.seed, a.parity.ragged_requests) == (
        0.01, 0.001, 2, 7, 3)
    assert b.triton.dynamic_batching is not None and b.triton.version_policy.kind == "all"
    assert not b.triton.warmup.enabled


def test_merge_keys_and_aliases_are_not_duplicates(tmp_path: Path) -> None:
    """``<<: *defaults`` then a key of its own overrides on purpose; only a key written twice is refused."""
    from trtrepo.spec import _load_yaml

    doc = _load_yaml("x: &x {name: x, shape: [-1, 4], min: [1, 4], opt: [2, 4], max: [8, 4]}\n"
                     "defaults: &defaults {source: json:loads, inputs: [*x, *x], outputs: [y], version: 1}\n"
                     "models:\n  - <<: *defaults\n    name: a\n    version: 2\n  - <<: *defaults\n    name: b\n")
    assert [(m["name"], m["version"]) for m in doc["models"]] == [("a", 2), ("b", 1)]
    assert doc["models"][0]["inputs"][1]["name"] == "x"


def test_a_mount_point_is_never_a_repository() -> None:
    """The root of a filesystem (the one holding the current folder among them) would be swapped as a whole."""
    from trtrepo.spec import SYSTEM_FOLDERS, well_known_folder

    candidates = [Path(p) for p in ("/dev/shm", "/boot/efi", "/run/user") if os.path.ismount(p)]
    candidates = [p for p in candidates if str(p) not in SYSTEM_FOLDERS]
    if not candidates:
        pytest.skip("none of /dev/shm, /boot/efi, /run/user is a mount point here")
    for mount in candidates:
        assert well_known_folder(mount) == "the root of a filesystem (a mount point)"
    assert well_known_folder(Path("/")) == "the filesystem root"
