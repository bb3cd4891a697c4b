"""``trtrepo build``."""

from __future__ import annotations

import click

from trtrepo.cli._app import cli, csv, progress


@cli.command()
# plain strings: trtrepo checks the paths itself (one line naming the argument, NUL bytes and loops included)
@click.argument("model_yaml", metavar="MODEL_YAML")
@click.option("--out", metavar="FOLDER", default=None,
              help="Repository folder (default: the spec's `repository:`).")
@click.option("--target", type=click.Choice(["auto", "tensorrt", "torch"]), default=None,
              help="Override every model's target (auto = tensorrt where TensorRT is installed, else torch).")
@click.option("--torch-program", type=click.Choice(["exported", "aoti"]), default=None,
              help="Override every model's torch.program (torch target: the exported program, or an AOTInductor "
                   "package compiled from it).")
@click.option("--models", default=None, metavar="A,B", help="Build only these models; keep the others.")
@click.option("--force", is_flag=True,
              help="Build even when nothing the models are built from changed (else: 'up to date', nothing written).")
def build(model_yaml: str, out: str | None, target: str | None, torch_program: str | None, models: str | None,
          force: bool) -> int:
    """Build the Triton model repository described by MODEL_YAML."""
    from trtrepo.build import build as run_build

    result = run_build(model_yaml, out=out, target=target, models=csv(models), force=force, progress=progress,
                       torch_program=torch_program)
    click.echo(f"repository: {result.repository}")
    for name, chosen in result.targets.items():
        click.echo(f"  {name}: {chosen}")
    click.echo(f"manifest: {result.manifest}")
    return 0
