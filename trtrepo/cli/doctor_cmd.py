"""``trtrepo doctor``."""

from __future__ import annotations

import click

from trtrepo.cli._app import cli


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> int:
    """Report python, torch, CUDA, nvcc, GPU, TensorRT, Torch-TensorRT, tritonserver and tritonclient."""
    from trtrepo.doctor import run_doctor, to_json, to_table

    checks = run_doctor()
    click.echo(to_json(checks) if as_json else to_table(checks))
    return 0
