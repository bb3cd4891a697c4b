"""``trtrepo bench kernels``: each custom op's CUDA kernel bandwidth against a device copy (ops.bandwidth).

The options are those of ``python -m trtrepo.ops.bandwidth`` (``trtrepo bench kernels --help`` lists them); this
command only hands them over, so the two can never disagree.
"""

from __future__ import annotations

import click

from trtrepo.cli.bench_cmd import bench


@bench.command("kernels", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                            "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def kernels(args: tuple[str, ...]) -> int:
    """Kernel bandwidth from op.yaml vs a device copy (GPU): [ROOTS...] --out DIR [--goal NS::OP=RATIO] [--ncu]."""
    from trtrepo.ops.bandwidth import main

    return main(list(args))
