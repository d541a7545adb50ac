"""Output: machine description, text table, JSON document, throughput plot."""
from __future__ import annotations

import json
import os
import platform
from collections import defaultdict
from importlib import metadata
from statistics import geometric_mean

from .. import __version__, kernels
from .._kernels import _isa
from .._threads import cpu_count
from .problems import Config, format_count
from .runner import Result

_PACKAGES = ("numpy", "scipy", "scikit-learn", "numba", "threadpoolctl")


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = [flag for flag in ("avx2", "fma", "avx512f") if flag in value.split()]
                    break
    except OSError:
        pass
    return model, flags


def machine_info() -> dict:
    """CPU, cores, library versions, BLAS (threadpoolctl) and fastem backends."""
    import numpy  # noqa: F401 - load the BLAS libraries threadpoolctl reports
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    model, flags = _cpu_model_and_flags()
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    pools = [{key: pool.get(key) for key in ("user_api", "internal_api", "version", "num_threads",
                                              "threading_layer", "architecture")}
             for pool in threadpool_info()]
    return {"cpu": model, "simd": flags, "cores": os.cpu_count(), "usable_cores": cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(), "fastem": __version__,
            "versions": versions, "threadpools": pools, "backends": kernels.available_backends(),
            "cython_isa": _isa.running()}


def format_machine(info: dict) -> str:
    versions = " ".join(f"{name} {version}" for name, version in info["versions"].items() if version)
    pools = "; ".join(f"{p['internal_api']} {p['version']} ({p['user_api']}, {p['num_threads']} threads"
                      f"{', ' + p['architecture'] if p.get('architecture') else ''})" for p in info["threadpools"])
    return "\n".join([
        f"CPU: {info['cpu']} ({', '.join(info['simd']) or 'no AVX2'}), {info['usable_cores']} usable of "
        f"{info['cores']} cores",
        f"Python {info['python']}, fastem {info['fastem']}, {versions}",
        f"Thread pools: {pools or 'none loaded'}",
        f"fastem backends: {', '.join(info['backends'])}"
        + (f" (Cython: the {info['cython_isa']} build)" if info.get("cython_isa") else ""),
    ])


def _seconds(t: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def config_label(op: str, config: Config) -> str:
    """The config as ``op`` sees it (logsumexp depends only on N and K)."""
    if op == "logsumexp":
        return f"N={format_count(config.n_samples)} K={config.n_components}"
    return config.label


def format_table(results: list[Result]) -> str:
    """One line per result, a blank line between groups (op, config, threads)."""
    header = ("implementation", "op", "config", "threads", "time/iter", "spread", "samples/s",
              "x reference", "x sklearn", "% roofline")
    lines, previous = [], None
    for r in results:
        if previous is not None and r.group != previous:
            lines.append(None)
        previous = r.group
        lines.append((r.impl, r.op, config_label(r.op, r.config), str(r.n_threads), _seconds(r.time),
                      f"{100 * r.spread:.0f}%", f"{r.samples_per_s:.3g}", _ratio(r.x_reference),
                      _ratio(r.x_sklearn), f"{100 * r.roofline_fraction:.1f}"))
    widths = [max(len(row[i]) for row in [header, *filter(None, lines)]) for i in range(len(header))]

    def fmt(row):
        return "  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))

    return "\n".join([fmt(header), *("" if row is None else fmt(row) for row in lines)])


def summary(results: list[Result]) -> str:
    """Geometric-mean speedups of each implementation, per operation."""
    ratios = defaultdict(lambda: ([], []))
    for r in results:
        if r.x_reference is not None:
            ratios[(r.op, r.impl)][0].append(r.x_reference)
        if r.x_sklearn is not None:
            ratios[(r.op, r.impl)][1].append(r.x_sklearn)
    lines = ["geometric mean over the configs above:"]
    for (op, impl), (x_ref, x_skl) in ratios.items():
        parts = [f"x reference {geometric_mean(x_ref):.2f}" if x_ref else "",
                 f"x sklearn {geometric_mean(x_skl):.2f}" if x_skl else ""]
        lines.append(f"  {op:<18} {impl:<10} {', '.join(p for p in parts if p)}")
    return "\n".join(lines)


_CEILING_NAMES = {"bandwidth": "read bandwidth", "gemm": "GEMM rate", "exp": "exp rate"}


def format_ceilings(ceilings: list[dict]) -> str:
    """One line per measured ceiling (``Roofline.ceilings()``), with the probe that set it;
    for exp, every probe's rate."""
    lines = ["ceilings:"]
    for c in ceilings:
        what = _CEILING_NAMES.get(c["probe"], c["probe"]) + (f" {c['dtype']}" if "dtype" in c else "")
        others = ", ".join(f"{name} {rate:.3g}" for name, rate in c.get("rates", {}).items()
                           if name != c["measured_by"])
        lines.append(f"  {what:<20} {c['n_threads']:>3} threads  {c['rate']:.3g} {c['unit']}  "
                     f"({c['measured_by']}{'; ' + others if others else ''})")
    return "\n".join(lines)


def to_json(results: list[Result], machine: dict, ceilings: list[dict], settings: dict, skipped: list[str]) -> dict:
    return {"fastem_bench": 1, "machine": machine, "settings": settings, "ceilings": ceilings,
            "skipped": skipped, "results": [r.as_dict() for r in results]}


def write_json(path: str, document: dict) -> None:
    with open(path, "w") as f:
        json.dump(document, f, indent=1)
        f.write("\n")


def require_matplotlib():
    """matplotlib.pyplot with the non-interactive backend, or a clear error."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install matplotlib (or fastem[plot])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(results: list[Result], path: str) -> None:
    """Samples/s against N, one line per implementation, one panel per (op, config, threads)."""
    plt = require_matplotlib()
    panels = defaultdict(lambda: defaultdict(list))
    for r in results:
        without_n = config_label(r.op, r.config).split(" ", 1)[1]
        panel = (r.op, without_n, r.n_threads)
        panels[panel][r.impl].append((r.n_samples, r.samples_per_s))
    n_cols = min(4, len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.5 * n_cols, 3.5 * n_rows), squeeze=False)
    for ax, ((op, label, n_threads), lines) in zip(axes.flat, panels.items()):
        for impl, points in lines.items():
            n, rate = zip(*sorted(points))
            ax.plot(n, rate, marker="o", label=impl)
        ax.set(xscale="log", yscale="log", xlabel="N (samples)", ylabel="samples/s",
               title=f"{op} {label} t={n_threads}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
