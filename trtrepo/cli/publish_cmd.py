"""``trtrepo publish`` and ``trtrepo fetch-plugins``: a repository to and from object storage."""

from __future__ import annotations

import json

import click

from trtrepo.cli._app import cli, progress


@cli.command()
@click.argument("args", nargs=-1, metavar="REPO URL")
@click.option("--endpoint-url", default=None, metavar="URL",
              help="An S3-compatible endpoint (MinIO, moto), a GCS emulator or an Azure Blob emulator (Azurite): "
                   "http(s)://HOST:PORT.")
@click.option("--verify-only", "--verify", "verify_only", is_flag=True,
              help="Upload nothing: re-check every object of the published repository at URL against its manifest "
                   "(REPO may be left out).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
def publish(args: tuple[str, ...], endpoint_url: str | None, verify_only: bool, as_json: bool) -> int:
    """Upload the repository REPO (written by trtrepo build) to URL (s3://bucket/prefix,
    gs://bucket/prefix, as://account/container/prefix) and verify it there.

    Objects go up in an order that never shows a polling replica half a model (config.pbtxt of each model after
    all its files, the manifest last); each carries its sha256 as metadata. Credentials: the store SDK's standard
    chain (boto3; google-auth; AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY).
    """
    from trtrepo.publish import publish as run_publish
    from trtrepo.publish import verify_published

    if verify_only:
        if len(args) not in (1, 2):
            raise click.UsageError("publish --verify-only takes URL (or REPO URL)")
        count = verify_published(args[-1], endpoint_url=endpoint_url, progress=progress)
        click.echo(json.dumps({"url": args[-1], "verified": count}) if as_json
                   else f"{args[-1]}: {count} objects match the manifest")
        return 0
    if len(args) != 2:
        raise click.UsageError("publish takes REPO URL")
    report = run_publish(args[0], args[1], endpoint_url=endpoint_url, progress=progress)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())
    return 0


@cli.command("fetch-plugins")
@click.argument("repo_url", metavar="REPO_URL")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--endpoint-url", default=None, metavar="URL",
              help="An S3-compatible endpoint (MinIO, moto), a GCS emulator or an Azure Blob emulator (Azurite): "
                   "http(s)://HOST:PORT.")
def fetch_plugins(repo_url: str, dest: str, endpoint_url: str | None) -> int:
    """Verify the published repository REPO_URL and fetch its TensorRT plugin libraries into DEST.

    DEST/backend-config.txt gets the one tritonserver flag that loads them
    (--backend-config=tensorrt,plugins=...; empty when no model needs one).
    """
    from trtrepo.remote import fetch_plugins as run_fetch

    click.echo(str(run_fetch(repo_url, dest, endpoint_url=endpoint_url, progress=progress)))
    return 0
