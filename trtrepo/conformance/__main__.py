"""``python -m trtrepo.conformance``: the conformance harness of the aot and plugin lowerings.

    python -m trtrepo.conformance run --source plugin_src --headers H1 --headers H2 --examples M.yaml --out DIR
    python -m trtrepo.conformance broken KIND --source plugin_src --to DIR

``run`` writes DIR/conformance.json and DIR/conformance.txt and exits 0 when every check passed, 1 when one failed,
2 for a usage or spec error, 3 for a missing dependency, 70 for a bug in trtrepo. ``broken`` writes a deliberately
broken copy of an op folder (a plugin root of its own, printed) that ``run`` must fail on.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from trtrepo.errors import TrtrepoError

EXIT_BUG = 70


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trtrepo.conformance", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="build and run the conformance checks")
    run.add_argument("--source", action="append", type=Path, required=True, help="plugin root (repeatable)")
    run.add_argument("--headers", action="append", type=Path, default=[],
                     help="TensorRT include folder (repeatable: one plugin library and host per folder)")
    run.add_argument("--examples", action="append", type=Path, default=[],
                     help="model.yaml whose models' op shapes at min/opt/max become cases (repeatable)")
    run.add_argument("--lanes", default="aot,host", help="aot, host or both (default)")
    run.add_argument("--small", action="store_true", help="the few shapes for compute-sanitizer")
    run.add_argument("--no-gpu", action="store_true", help="plan and check without launching (as without a GPU)")
    run.add_argument("--no-int32", action="store_true", help="leave out the 2^31-element cases")
    run.add_argument("--no-stream-gate", action="store_true",
                     help="do not hold the enqueue stream shut (under compute-sanitizer, which may serialize launches)")
    run.add_argument("--build-only", action="store_true",
                     help="build the op library, PTX, plugin libraries and hosts, check nothing (exit 0)")
    run.add_argument("--out", type=Path, required=True, help="folder for conformance.json / conformance.txt")
    run.add_argument("--work", type=Path, help="folder for case files, records and data (default OUT/work)")
    broken = sub.add_parser("broken", help="write a deliberately broken copy of an op folder")
    broken.add_argument("kind", help="swapped-scalars, wrong-dtype, bad-serialization or wrong-cpu-reference")
    broken.add_argument("--source", type=Path, required=True, help="the plugin root to copy from")
    broken.add_argument("--to", type=Path, required=True, help="the new plugin root")
    broken.add_argument("--op", help="the op folder to copy (default: the kind's)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    import logging

    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        if args.command == "broken":
            from trtrepo.conformance.broken import make_broken

            print(make_broken(args.kind, args.source, args.to, args.op))
            return 0
        from trtrepo.conformance.report import write_report
        from trtrepo.conformance.run import Options, run_conformance

        options = Options(sources=tuple(args.source), headers=tuple(args.headers),
                          work=args.work or args.out / "work", examples=tuple(args.examples),
                          lanes=tuple(x.strip() for x in args.lanes.split(",") if x.strip()), small=args.small,
                          gpu=False if args.no_gpu else None, int32=not args.no_int32,
                          stream_gate=not args.no_stream_gate, build_only=args.build_only)
        report = run_conformance(options, progress=lambda line: print(line, file=sys.stderr, flush=True))
        if options.build_only:
            print("built (no checks run)")
            return 0
        json_path, _ = write_report(report, args.out)
        print(report.table())
        print(f"report: {json_path}")
        return 0 if report.ok else 1
    except TrtrepoError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except Exception:
        traceback.print_exc()
        print("error: this is a bug in trtrepo.conformance: please report it with the traceback above",
              file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
