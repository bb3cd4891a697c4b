"""Unit tests of the object-storage pieces that need no store: URL parsing and the upload order."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtrepo.cli import main
from trtrepo.errors import SpecError
from trtrepo.publish import STEPS, upload_plan
from trtrepo.remote import is_url, parse_url


def test_plain_s3_url() -> None:
    url = parse_url("s3://models/prod/v1/")
    assert (url.scheme, url.bucket, url.prefix, url.endpoint) == ("s3", "models", "prod/v1", None)
    assert url.key("gelu_block/config.pbtxt") == "prod/v1/gelu_block/config.pbtxt"
    assert url.triton_url == "s3://models/prod/v1"
    assert str(url) == "s3://models/prod/v1"


def test_triton_endpoint_form_round_trips() -> None:
    url = parse_url("s3://http://127.0.0.1:9000/models/prod")
    assert (url.bucket, url.prefix, url.endpoint) == ("models", "prod", "http://127.0.0.1:9000")
    assert url.triton_url == "s3://http://127.0.0.1:9000/models/prod"
    assert parse_url(url.triton_url) == url


def test_endpoint_option_and_bucket_root() -> None:
    url = parse_url("s3://models", "https://minio.local:9000/")
    assert (url.prefix, url.endpoint, url.key("a/b")) == ("", "https://minio.local:9000", "a/b")
    assert url.triton_url == "s3://https://minio.local:9000/models"


@pytest.mark.parametrize(("text", "endpoint", "says"), [
    ("s4://models/x", None, "scheme must be one of"),
    ("s3://Bad_Bucket/x", None, "is not a bucket name"),
    ("s3://http://127.0.0.1:9000", None, "(s3://http://HOST:PORT/BUCKET/PREFIX)"),
    ("s3://http://minio/models", None, "the S3 endpoint must be http://host:port"),
    ("s3://models/a/../b", None, "'..' part"),
    ("s3://models/x", "ftp://host", "--endpoint-url 'ftp://host'"),
    ("s3://http://127.0.0.1:1/models/x", "http://127.0.0.1:2", "--endpoint-url says http://127.0.0.1:2"),
])
def test_bad_urls_name_what_is_wrong(text: str, endpoint: str | None, says: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_url(text, endpoint)
    assert says in info.value.message and info.value.exit_code == 2


def test_gcs_and_azure_urls_in_tritons_grammar() -> None:
    gcs = parse_url("gs://my_models/prod/v1")
    assert (gcs.scheme, gcs.bucket, gcs.prefix, gcs.account) == ("gs", "my_models", "prod/v1", None)
    assert gcs.triton_url == str(gcs) == "gs://my_models/prod/v1"
    azure = parse_url("as://acct1/models/prod", "http://127.0.0.1:10000")
    assert (azure.account, azure.bucket, azure.prefix, azure.endpoint) == ("acct1", "models", "prod",
                                                                          "http://127.0.0.1:10000")
    assert azure.triton_url == str(azure) == "as://acct1/models/prod"  # Triton's as:// has no endpoint form
    assert azure.key("m/config.pbtxt") == "prod/m/config.pbtxt"


@pytest.mark.parametrize(("text", "says"), [
    ("as://Bad_Account/models/p", "is not a storage account name"),
    ("as://acct1/bad--container/p", "is not a container name"),
    ("gs://B/p", "is not a bucket name"),
])
def test_bad_gcs_azure_urls(text: str, says: str) -> None:
    with pytest.raises(SpecError, match=says):
        parse_url(text)


@pytest.mark.parametrize(("scheme", "module", "extra"), [("gs", "google.cloud.storage", "trtrepo[gcs]"),
                                                          ("as", "azure.storage.blob", "trtrepo[azure]")])
def test_a_missing_sdk_is_exit_3_with_the_pip_command(scheme: str, module: str, extra: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    monkeypatch.setitem(sys.modules, module, None)  # what an environment without the SDK imports
    parent, _, leaf = module.rpartition(".")
    if parent in sys.modules:  # imported earlier in this session: `from parent import leaf` reads the attribute
        monkeypatch.delattr(sys.modules[parent], leaf, raising=False)
    url = "gs://models/prod" if scheme == "gs" else "as://acct1/models/prod"
    assert main(["publish", "--verify-only", url]) == 3
    err = capsys.readouterr().err
    assert f"{url}: {scheme}:// repositories need" in err and extra in err


def test_is_url() -> None:
    assert is_url("s3://a/b") and not is_url("model_repository") and not is_url(Path("s3:/a"))


def _repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    files = ["b_model/config.pbtxt", "b_model/1/model.plan", "b_model/plugins/libx.so",
             "a_model/config.pbtxt", "a_model/1/model.py", "a_model/1/model.pt2", "a_model/1/python_ops/op.py",
             "a_model/2/model.py", "a_model/warmup/x"]
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "trtrepo-manifest.json").write_text("{}")
    return tmp_path, {rel: f"sha-{i}" for i, rel in enumerate(files)}


def test_upload_order_config_after_all_files_of_its_model_manifest_last(tmp_path: Path) -> None:
    root, files = _repo(tmp_path)
    plan = upload_plan(root, files, ["a_model", "b_model"])
    order = [u.rel for u in plan]
    assert order[-1] == "trtrepo-manifest.json" and plan[-1].step == "manifest"
    assert sorted(order[:-1]) == sorted(files)
    for model in ("a_model", "b_model"):
        mine = [i for i, rel in enumerate(order) if rel.startswith(model + "/")]
        config = order.index(f"{model}/config.pbtxt")
        assert config == max(mine), f"{model}: config.pbtxt must be its model's last object: {order}"
        assert mine == list(range(min(mine), max(mine) + 1)), "a model's objects go up together"
    entries = [u.rel for u in plan if u.step == "entry"]
    assert entries == ["a_model/1/model.pt2", "a_model/1/model.py", "a_model/2/model.py", "b_model/1/model.plan"]
    for entry in entries:  # every other file of the model before its entry files
        model = entry.partition("/")[0]
        others = [order.index(r) for r in files if r.startswith(model + "/") and
                  next(u for u in plan if u.rel == r).step == "files"]
        assert max(others) < order.index(entry)
    assert [STEPS.index(u.step) for u in plan if u.rel.startswith("a_model/")] == sorted(
        STEPS.index(u.step) for u in plan if u.rel.startswith("a_model/"))
    assert plan[0].size == len(plan[0].rel)


def test_upload_order_refuses_a_file_outside_the_model_folders(tmp_path: Path) -> None:
    root, files = _repo(tmp_path)
    files["launch.sh"] = "x"
    with pytest.raises(SpecError, match=r"'launch\.sh' is not inside a model folder"):
        upload_plan(root, files, ["a_model", "b_model"])


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["publish", "only_one_arg"]) == 2
    assert "publish takes REPO URL" in capsys.readouterr().err
    assert main(["publish", "--verify-only"]) == 2
    assert main(["fetch-plugins", "s3://Bad_Bucket/x", "dest"]) == 2
    assert "is not a bucket name" in capsys.readouterr().err
