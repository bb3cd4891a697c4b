"""``trtrepo bench``: a group whose default is the served sweep.

Layout::

    trtrepo bench MODEL_YAML [...]          = trtrepo bench served MODEL_YAML   (served vs eager; what it always was)
    trtrepo bench MODEL_YAML --soak [...]   = trtrepo bench soak MODEL_YAML
    trtrepo bench engines MODEL_YAML [...]  eager / torch.compile / plans / hybrid side by side in one process
    trtrepo bench soak MODEL_YAML [...]     many requests; --faults adds a restart and malformed requests
    trtrepo bench kernels ...               kernel bandwidth from op.yaml (registered by its own module)

A further subcommand registers itself with ``@bench.command("<name>")`` in its own ``cli/bench_<name>_cmd.py``
(imported in ``trtrepo/cli/__init__.py``); :class:`BenchGroup` routes anything that is not a subcommand name to
``served``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from trtrepo.cli._app import cli, csv, int_csv, progress

SERVED = "served"
SOAK_FLAG = "--soak"


class BenchGroup(click.Group):
    """A group whose first argument may be a model.yaml: then the ``served`` subcommand runs (``--soak``: ``soak``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["soak", *[a for a in args if a != SOAK_FLAG]] if SOAK_FLAG in args else [SERVED, *args]
        return super().parse_args(ctx, args)


@cli.group(cls=BenchGroup)
def bench() -> None:
    """Measure: served vs eager (default), engines side by side, soak.

    \b
    trtrepo bench MODEL_YAML             served latency/throughput vs eager (= bench served)
    trtrepo bench MODEL_YAML --soak      the soak (= bench soak)
    trtrepo bench engines MODEL_YAML     eager, torch.compile, TensorRT plans, hybrid: ratios in one run
    """


@bench.command(SERVED)
@click.argument("model_yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--concurrency", default="1,4,16", show_default=True, metavar="N,M", help="Concurrency levels.")
@click.option("--requests", type=int, default=200, show_default=True, help="Requests per concurrency level.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON report path.")
@click.option("--plot", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder for plots.")
@click.option("--batch-sizes", default=None, metavar="N,M", help="Batch sizes (default: each model's opt batch).")
@click.option("--models", default=None, metavar="A,B", help="Bench only these models.")
@click.option("--url-http", default=None, metavar="HOST:PORT", help="A running Triton's HTTP endpoint.")
@click.option("--url-grpc", default=None, metavar="HOST:PORT",
              help="A running Triton's gRPC endpoint (with --protocol grpc and --url-http).")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default="http", show_default=True,
              help="The protocol the timed requests use (statistics are read over HTTP either way).")
@click.option("--repository", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Repository to serve when no URL is given (default: the spec's).")
@click.option("--parity-report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A `trtrepo check --report` JSON whose errors are plotted as a histogram.")
@click.option("--shared-memory", type=click.Choice(["none", "system", "cuda"]), default="none", show_default=True,
              help="Send tensors through system or CUDA shared memory (server on this host).")
def served(model_yaml: Path, concurrency: str, requests: int, report: Path | None, plot: Path | None,
           batch_sizes: str | None, models: str | None, url_http: str | None, url_grpc: str | None, protocol: str,
           repository: Path | None, parity_report: Path | None, shared_memory: str) -> int:
    """Latency and throughput of the served models against eager PyTorch."""
    from trtrepo.bench.run import run_bench

    levels = int_csv(concurrency, "--concurrency") or []
    result = run_bench(model_yaml, concurrency=levels, requests=requests, report_path=report, plot_dir=plot,
                       batch_sizes=int_csv(batch_sizes, "--batch-sizes"), models=csv(models), url_http=url_http,
                       repository=repository, parity_report=parity_report, progress=progress,
                       shared_memory=shared_memory, protocol=protocol, url_grpc=url_grpc)
    click.echo(result.table())
    if any(r.breakdown is not None for r in result.rows):
        click.echo("\nper request (mean ms): client total = queue + compute input/infer/output + rest "
                   "(client, network, protocol)")
        click.echo(result.breakdown_table())
    return 0


@bench.command("engines")
@click.argument("model_yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("out/engines"),
              show_default=True, help="Folder for engines.json, engines.txt, engines.png and build logs.")
@click.option("--models", default=None, metavar="A,B", help="Only these models.")
@click.option("--batch-sizes", default=None, metavar="N,M", help="Default: min, opt and max of dim 0.")
@click.option("--engines", "engine_names", default=None, metavar="A,B",
              help="Engines to run (default: every one that can run here; `--engines list` lists them).")
@click.option("--require", default=None, metavar="A,B", help="Fail (exit 3) if one of these engines cannot run.")
@click.option("--profiles", default="dynamic,static,buckets", show_default=True, metavar="A,B",
              help="Plan profiles: dynamic (model.yaml's range), static (one plan per batch size), buckets.")
@click.option("--buckets", default=None, metavar="N,M",
              help="Bucket upper bounds (default: the batch sizes, and the profile's max).")
@click.option("--native", default=None, metavar="MODULE:FACTORY",
              help="The same model in native aten ops, a factory beside model.yaml (e.g. model:build_native).")
@click.option("--runs", type=int, default=3, show_default=True, help="Repeated measurements (the spread).")
@click.option("--iterations", type=int, default=200, show_default=True, help="Timed calls per run (per-call).")
@click.option("--pipeline", type=int, default=64, show_default=True, help="Calls per pipelined sample.")
@click.option("--max-seconds", type=float, default=5.0, show_default=True, help="Bound per engine, batch and run.")
@click.option("--warmup-seconds", type=float, default=10.0, show_default=True,
              help="Most time spent warming up one engine at one shape (until its timings settle).")
@click.option("--kernel-specialization", type=click.Choice(["lazy", "eager", "none", "default"]), default="eager",
              show_default=True, help="TensorRT-RTX dynamic-shape kernel specialisation strategy.")
@click.option("--cuda-graphs/--no-cuda-graphs", default=True, show_default=True,
              help="Also run plans and the lean hybrid captured in CUDA graphs.")
def engines(model_yaml: Path, out: Path, models: str | None, batch_sizes: str | None, engine_names: str | None,
            require: str | None, profiles: str, buckets: str | None, native: str | None, runs: int, iterations: int,
            pipeline: int, max_seconds: float, warmup_seconds: float, kernel_specialization: str,
            cuda_graphs: bool) -> int:
    """Engines side by side in one process: per-call p50/p90 and pipelined throughput, ratios to eager."""
    from trtrepo.bench.engines import EngineOptions, describe_engines, run_engines
    from trtrepo.bench.timing import WarmUpPolicy

    if engine_names == "list":
        click.echo(describe_engines())
        return 0
    options = EngineOptions(
        engines=csv(engine_names), require=csv(require) or [], profiles=csv(profiles) or [],
        buckets=int_csv(buckets, "--buckets"), native=native, runs=runs, iterations=iterations, pipeline=pipeline,
        max_seconds=max_seconds, kernel_specialization=None if kernel_specialization == "default"
        else kernel_specialization, cuda_graphs=cuda_graphs, warmup=WarmUpPolicy(max_seconds=warmup_seconds))
    report = run_engines(model_yaml, options, out=out, models=csv(models),
                         batch_sizes=int_csv(batch_sizes, "--batch-sizes"), progress=progress)
    click.echo(report.table())
    click.echo(report.summary())
    return 0


@bench.command("soak")
@click.argument("model_yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", default=None, help="Model name (default: the first).")
@click.option("--repository", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Repository to serve (default: the spec's).")
@click.option("--url", default=None, metavar="HOST:PORT", help="A running server (no --faults then).")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default="grpc", show_default=True)
@click.option("--requests", type=int, default=10000, show_default=True, help="Good requests in total.")
@click.option("--concurrency", type=int, default=16, show_default=True, help="Client threads.")
@click.option("--batch-sizes", default="1,2,4,8", show_default=True, metavar="N,M", help="In rotation.")
@click.option("--max-seconds", type=float, default=900.0, show_default=True, help="Bound on the whole soak.")
@click.option("--check-every", type=int, default=50, show_default=True, help="Compare every Nth answer with eager.")
@click.option("--faults", is_flag=True, help="Restart the server mid-run and interleave malformed requests.")
@click.option("--bad-every", type=int, default=10, show_default=True, help="With --faults: every Nth request is bad.")
@click.option("--restarts", type=int, default=1, show_default=True, help="With --faults: server restarts.")
@click.option("--restart-mode", type=click.Choice(["kill", "graceful"]), default="kill", show_default=True,
              help="With --faults: SIGKILL (in-flight requests die) or SIGINT (the server drains them).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON report path.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a Markdown summary (docs/soak.md's tables).")
def soak(model_yaml: Path, **options: Any) -> int:
    """Many requests against a served model on loopback; errors, mismatches and latency. Exit 1 on any loss."""
    from trtrepo.bench.soak import SoakOptions, run_soak

    report_path, markdown = options.pop("report"), options.pop("markdown")
    opts = SoakOptions(**{**options, "batch_sizes": int_csv(options["batch_sizes"], "--batch-sizes") or [1]})
    result = run_soak(model_yaml, opts, report_path=report_path, markdown_path=markdown, progress=progress)
    click.echo(result.table())
    return 0 if result.passed else 1
