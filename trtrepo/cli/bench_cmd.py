"""``trtrepo bench``."""

from __future__ import annotations

from pathlib import Path

import click

from trtrepo.cli._app import cli, csv, int_csv


@cli.command()
@click.argument("model_yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--concurrency", default="1,4,16", show_default=True, metavar="N,M", help="Concurrency levels.")
@click.option("--requests", type=int, default=200, show_default=True, help="Requests per concurrency level.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JSON report path.")
@click.option("--plot", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder for plots.")
@click.option("--batch-sizes", default=None, metavar="N,M", help="Batch sizes (default: each model's opt batch).")
@click.option("--models", default=None, metavar="A,B", help="Bench only these models.")
@click.option("--url-http", default=None, metavar="HOST:PORT", help="A running Triton's HTTP endpoint.")
@click.option("--repository", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Repository to serve when no URL is given (default: the spec's).")
@click.option("--parity-report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A `trtrepo check --report` JSON whose errors are plotted as a histogram.")
def bench(model_yaml: Path, concurrency: str, requests: int, report: Path | None, plot: Path | None,
          batch_sizes: str | None, models: str | None, url_http: str | None, repository: Path | None,
          parity_report: Path | None) -> int:
    """Latency and throughput of the served models against eager PyTorch."""
    from trtrepo.bench import run_bench

    levels = int_csv(concurrency, "--concurrency") or []
    result = run_bench(model_yaml, concurrency=levels, requests=requests, report_path=report, plot_dir=plot,
                       batch_sizes=int_csv(batch_sizes, "--batch-sizes"), models=csv(models), url_http=url_http,
                       repository=repository, parity_report=parity_report)
    click.echo(result.table())
    return 0
