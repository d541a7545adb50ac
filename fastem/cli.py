"""The ``fastem`` command. ``fastem bench --help`` for the benchmark options."""
from __future__ import annotations

import argparse
import os
import sys
import time

from .suff_stats import COVARIANCE_TYPES

QUICK = {"n": "2e4", "dims": "16x8,16x32", "cov": "full,diag", "dtype": "float64", "threads": "all",
         "op": "em_stats,fit", "fit_iters": "3", "repeats": "2"}


def _list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _counts(text: str) -> list[int]:
    out = []
    for item in _list(text):
        try:
            value = float(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {item!r}") from None
        if value != int(value) or value < 1:
            raise argparse.ArgumentTypeError(f"sample counts must be positive integers, got {item!r}")
        out.append(int(value))
    return out


def _dims(text: str) -> list[tuple[int, int]]:
    out = []
    for item in _list(text):
        d, _, k = item.lower().partition("x")
        if not (d.isdigit() and k.isdigit() and int(d) > 0 and int(k) > 0):
            raise argparse.ArgumentTypeError(f"dims are DxK pairs such as 16x8, got {item!r}")
        out.append((int(d), int(k)))
    return out


def _choices(allowed):
    def parse(text: str) -> list[str]:
        items = _list(text)
        bad = [item for item in items if item not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {list(allowed)}")
        return items
    return parse


def _threads(text: str) -> list[int]:
    from ._threads import cpu_count

    out = []
    for item in _list(text):
        if item == "all":
            out.append(cpu_count())
        elif item.isdigit() and int(item) > 0:
            out.append(int(item))
        else:
            raise argparse.ArgumentTypeError(f"threads are positive integers or 'all', got {item!r}")
    return list(dict.fromkeys(out))


def _add_bench_parser(subparsers) -> None:
    from .bench import DTYPES, FIT_ITERATIONS, LEVELS, OPS

    p = subparsers.add_parser(
        "bench", help="benchmark fastem against its numpy reference and scikit-learn",
        description="Time fastem's kernels and estimator against the numpy reference and scikit-learn on "
                    "seeded synthetic blobs. Ratios (x reference, x sklearn) need those implementations in the "
                    "selection; '% roofline' is the floor max(bytes/bandwidth, flops/GEMM rate, exps/exp rate), "
                    "with ceilings measured in the same run, over the measured time.")
    p.add_argument("--quick", action="store_true",
                   help="an overview in 20-40 s: N=2e4, 16x8,16x32, full,diag, float64, em_stats and fit "
                        "(3 iterations), best of 2, all threads (explicit options still override)")
    p.add_argument("--n", type=_counts, help="sample counts, e.g. 1e4,1e5 (default 1e4)")
    p.add_argument("--large", action="store_true",
                   help="also N=1e6 and 1e7 (same as FASTEM_BENCH_LARGE=1); needs several GB of memory")
    p.add_argument("--dims", type=_dims, help="DxK pairs (default 2x8,16x8,16x32,64x16)")
    p.add_argument("--cov", type=_choices(COVARIANCE_TYPES), help="covariance types (default all four)")
    p.add_argument("--dtype", type=_choices(DTYPES), help="float64,float32 (default both)")
    p.add_argument("--threads", type=_threads, help="thread counts, integers or 'all' (default 1,all)")
    p.add_argument("--level", choices=sorted(LEVELS),
                   help="kernel: logsumexp, gaussian_log_prob, em_stats; fit: iteration, fit; "
                        "end_to_end: init, default_fit, random_fit, kmeans (default parameters); all")
    p.add_argument("--op", type=_choices(OPS),
                   help=f"operations, overriding --level: {','.join(OPS)} (default em_stats)")
    p.add_argument("--impl", type=_list, help="implementations (fastem backends, 'numpy' = the reference, "
                                              "'sklearn'); default all available")
    p.add_argument("--fit-iters", type=int, help=f"EM iterations of the 'fit' operation (default {FIT_ITERATIONS})")
    p.add_argument("--min-time", type=float, default=0.05,
                   help="seconds to keep repeating each cell (default 0.05)")
    p.add_argument("--repeats", type=int, help="minimum timed repeats per cell (default 3)")
    p.add_argument("--json", metavar="FILE", help="write machine info, ceilings and results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="plot samples/s against N per implementation (matplotlib)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _bench(args, parser) -> int:
    from . import bench
    from .bench import report

    if args.quick:
        quick = parser.parse_args([*(f"--{key.replace('_', '-')}={value}" for key, value in QUICK.items())])
        for key in QUICK:
            if getattr(args, key) is None:
                setattr(args, key, getattr(quick, key))
    if args.repeats is None:
        args.repeats = 3
    large = args.large or os.environ.get("FASTEM_BENCH_LARGE") == "1"
    n_samples = args.n or [bench.N_DEFAULT]
    if large:
        n_samples = sorted({*n_samples, *bench.N_LARGE})
    ops = args.op or (list(bench.LEVELS[args.level]) if args.level else ["em_stats"])
    max_iter = args.fit_iters if args.fit_iters is not None else bench.FIT_ITERATIONS
    if max_iter < 1 or args.repeats < 1 or not args.min_time >= 0:
        parser.error("--fit-iters and --repeats must be >= 1 and --min-time >= 0")
    dims, covs = args.dims or list(bench.DIMS), args.cov or list(COVARIANCE_TYPES)
    dtypes, threads = args.dtype or list(bench.DTYPES), args.threads or _threads("1,all")
    for path in filter(None, (args.json, args.plot)):
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            parser.error(f"cannot write {path!r}: its directory does not exist")
    try:
        if args.plot:
            report.require_matplotlib()
        rows = bench.implementation_table(ops, args.impl)
        configs = bench.matrix(n_samples, dims, covs, dtypes)
    except (ImportError, ValueError) as exc:
        parser.error(str(exc))

    machine = report.machine_info()
    print(report.format_machine(machine))
    show = None
    if not args.quiet and sys.stderr.isatty():
        def show(line):
            print(f"\r\033[K{line}", end="", file=sys.stderr, flush=True)
    start = time.perf_counter()
    roofline = bench.Roofline()
    results, skipped = bench.run(configs, rows, threads, roofline=roofline, min_time=args.min_time,
                                 min_repeats=args.repeats, max_iter=max_iter, progress=show)
    if show:
        show("")
    print()
    print(report.format_table(results))
    print()
    print(report.summary(results))
    print()
    print(report.format_ceilings(roofline.ceilings()))
    for line in skipped:
        print(f"skipped {line}")
    print(f"{len(results)} cells in {time.perf_counter() - start:.1f} s")
    if args.json:
        settings = {"n_samples": n_samples, "dims": [list(d) for d in dims], "covariance_types": covs,
                    "dtypes": dtypes, "threads": threads, "ops": ops, "implementations": sorted({row.name for row in rows}),
                    "fit_iterations": max_iter, "min_time": args.min_time, "min_repeats": args.repeats}
        report.write_json(args.json, report.to_json(results, machine, roofline.ceilings(), settings, skipped))
        print(f"wrote {args.json}")
    if args.plot:
        report.plot(results, args.plot)
        print(f"wrote {args.plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] not in ("bench", "-h", "--help"):  # a program to run on patched scikit-learn
        from ._run import run_patched

        return run_patched(argv)
    parser = argparse.ArgumentParser(prog="fastem", description="fastem command-line tools; "
                                     "'fastem [-v] script.py args' or 'fastem [-v] -m module args' runs a "
                                     "program with scikit-learn patched (fastem.patch_sklearn)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_bench_parser(subparsers)
    args = parser.parse_args(argv)
    return _bench(args, subparsers.choices["bench"])
