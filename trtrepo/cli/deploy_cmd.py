"""``trtrepo deploy k8s``."""

from __future__ import annotations

from pathlib import Path

import click

from trtrepo.cli._app import cli, progress


@cli.group()
def deploy() -> None:
    """Deployment manifests for a repository in object storage."""


@deploy.command("k8s")
@click.argument("repo_url")
@click.option("--repository-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Local copy of the repository at REPO_URL to read its trtrepo-manifest.json from (default: the "
                   "published repository itself, verified against its manifest).")
@click.option("--replicas", type=int, default=1, show_default=True, help="Replicas (the autoscaler's minimum).")
@click.option("--max-replicas", type=int, default=None, help="The autoscaler's maximum (default: 2 x --replicas).")
@click.option("--gpus", type=int, default=1, show_default=True, help="GPUs per replica (nvidia.com/gpu); 0: CPU.")
@click.option("--name", default=None, help="Name of the objects (default: triton-<last part of REPO_URL>).")
@click.option("--image", default=None,
              help="tritonserver image (default: the NGC image of the release the manifest records).")
@click.option("--init-image", default=None, help="Image with trtrepo for the plugin-fetching init container.")
@click.option("--secret", default=None, help="Secret with the storage credentials (default: <name>-storage).")
@click.option("--queue-time-us", type=int, default=None,
              help="Average queue time per request (µs) above which the autoscaler adds replicas (default 50000).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("k8s"), show_default=True,
              help="Folder the YAML files are written to.")
@click.option("--kserve", is_flag=True, help="Write a KServe InferenceService instead of Deployment/Service/HPA.")
def k8s(repo_url: str, repository_dir: Path | None, replicas: int, max_replicas: int | None, gpus: int,
        name: str | None, image: str | None, init_image: str | None, secret: str | None, queue_time_us: int | None,
        out: Path, kserve: bool) -> int:
    """Write Kubernetes manifests serving the repository at REPO_URL (s3://, gs://, as://) with N replicas."""
    from trtrepo.deploy import deploy_k8s
    from trtrepo.deploy.k8s import DEFAULT_QUEUE_TARGET_US

    result = deploy_k8s(repo_url, repository_dir, out, progress=progress, replicas=replicas,
                        max_replicas=max_replicas, gpus=gpus, name=name, image=image, init_image=init_image,
                        secret=secret, kserve=kserve,
                        queue_target_us=queue_time_us if queue_time_us is not None else DEFAULT_QUEUE_TARGET_US)
    click.echo(result.summary())
    return 0
