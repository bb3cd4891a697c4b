"""``trtrepo ops``: work on custom-op folders (``check`` proves an op keeps its op.yaml, ``new`` writes one)."""

from __future__ import annotations

from pathlib import Path

import click

from trtrepo.cli._app import cli, progress


@cli.group()
def ops() -> None:
    """Custom-op folders: check them, or start a new one."""


@ops.command("check")
@click.argument("roots", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Which kernels to check.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON report here.")
@click.option("--sanitize", is_flag=True, help="Also run the CUDA check under compute-sanitizer memcheck.")
@click.option("--op", "only", default=None, metavar="NS::NAME", help="Check only this op.")
def check_command(roots: tuple[Path, ...], device: str, report: Path | None, sanitize: bool, only: str | None) -> int:
    """Check every op of ROOTS (default: ./plugin_src) against its op.yaml: schema, kernel ABI, shape rule, fake
    kernel, kernel vs decomposition, opcheck."""
    from trtrepo.errors import SpecError
    from trtrepo.ops.check import run_ops_check

    if not roots:
        if not Path("plugin_src").is_dir():
            raise SpecError("ops check: no ROOT given and no ./plugin_src here", hint="trtrepo ops check PLUGIN_ROOT")
        roots = (Path("plugin_src"),)
    result = run_ops_check(roots, device=device, report_path=report, sanitize_run=sanitize, progress=progress,
                           select=(lambda d: d.name == only) if only else None)
    if only and not any(r.op == only for r in result.results):
        raise SpecError(f"--op: {only} is not an op of {', '.join(map(str, roots))}")
    click.echo(result.table())
    return 0 if result.passed else 1


@ops.command("new")
@click.argument("name", metavar="NS::NAME")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("plugin_src"),
              show_default=True, help="The plugin root to write the op folder into.")
@click.option("--cpu-reference", is_flag=True,
              help="Also write a C++ CPU reference (op.yaml cpu:); without it the decomposition serves on CPU.")
def new_command(name: str, folder: Path, cpu_reference: bool) -> int:
    """Write a minimal elementwise op folder NS::NAME (op.yaml, CUDA kernel, decomposition, README) that builds,
    passes `trtrepo ops check` and serves as written; trtrepo generates its torch binding and TensorRT plugin."""
    from trtrepo.ops.scaffold import new_op

    created = new_op(name, folder, cpu_reference=cpu_reference)
    click.echo(f"op folder: {created}")
    click.echo(f"next: trtrepo ops check {folder}")
    return 0


@ops.command("generate")
@click.argument("name", metavar="NS::NAME")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The folder to write the generated sources into (created; files there are replaced).")
@click.option("--root", "roots", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="A plugin root to find the op in (repeatable; default: ./plugin_src).")
def generate_command(name: str, out: Path, roots: tuple[Path, ...]) -> int:
    """Write the sources trtrepo generates from NS::NAME's op.yaml (torch binding, kernel launcher, TensorRT plugin)
    into OUT, to read or to start a hand-written binding or plugin from."""
    from trtrepo.errors import SpecError
    from trtrepo.ops import generated
    from trtrepo.ops.description import discover_ops

    roots = roots or (Path("plugin_src"),)
    descriptions = discover_ops(list(roots))
    desc = descriptions.get(name)
    if desc is None:
        raise SpecError(f"ops generate: {name} is not an op of {', '.join(map(str, roots))}",
                        hint=f"ops there: {', '.join(sorted(descriptions)) or 'none'}")
    if desc.kernel is None:
        raise SpecError(f"{desc.path}: kernel: missing; trtrepo generates a binding and a plugin only for an op "
                        "with a kernel block")
    for path in generated.write(desc, out, desc.cpu):
        click.echo(str(path))
    return 0
