"""Shared helpers for the benchmarks: locating shared profiles, medians, table printing."""
import math
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    for candidate in (os.environ.get("SANDBOX_SHARED"), ROOT.parent / "shared", "/work/shared"):
        if candidate and (Path(candidate) / "profiles").is_dir():
            return Path(candidate)
    raise SystemExit("bench: ../shared/profiles not found (set SANDBOX_SHARED)")


def docker_profile() -> str:
    return str(shared_dir() / "profiles" / "docker-default.json")


def median_time(fn, rounds: int, inner: int = 1) -> float:
    """Median seconds per call over `rounds` rounds of `inner` calls."""
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t) / inner)
    return statistics.median(samples)


def interleaved(fns: dict, rounds: int, inner: int) -> dict:
    """Median seconds per call of each function, measured in alternating blocks."""
    return {name: median for name, (_low, median) in
            interleaved_stats(fns, rounds, inner).items()}


def interleaved_stats(fns: dict, rounds: int, inner: int) -> dict:
    """(min, median) seconds per call of each function, measured in alternating blocks."""
    return {name: (min(v), statistics.median(v))
            for name, v in interleaved_samples(fns, rounds, inner).items()}


def interleaved_samples(fns: dict, rounds: int, inner: int, alternate: bool = False) -> dict:
    """Seconds per call of each function in each of `rounds` alternating blocks. alternate:
    every other round runs the functions in reverse order, so that what one leaves behind
    (caches, the kernel's deferred work) does not always land on the same one."""
    samples = {name: [] for name in fns}
    for i in range(rounds):
        order = list(fns.items())
        if alternate and i % 2:
            order.reverse()
        for name, fn in order:
            t = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t) / inner)
    return samples


def paired_ratio(samples, base) -> tuple:
    """(median, min, max) of samples[i] / base[i]: each ratio taken within one round, so a
    drift of the machine's speed between rounds cancels out."""
    ratios = [a / b for a, b in zip(samples, base)]
    return statistics.median(ratios), min(ratios), max(ratios)


# two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (then ~normal)
_T975 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14,
         2.13, 2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05,
         2.05, 2.04)


def ratio_interval(samples, base) -> tuple:
    """(geometric mean, low, high) of the paired ratios samples[i] / base[i], with the 95%
    confidence interval of that mean (t on the log ratios). A target like "no slower than the
    baseline" holds for the measurement when the interval's high end is at most 1 (for times)
    and is undecided by it when the interval contains 1."""
    logs = [math.log(a / b) for a, b in zip(samples, base)]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), float("nan"), float("nan")
    t = _T975[len(logs) - 2] if len(logs) - 1 <= len(_T975) else 1.96
    half = t * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def table(headers, rows) -> str:
    cols = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    out = ["| " + " | ".join(str(h).ljust(c) for h, c in zip(headers, cols)) + " |",
           "|" + "|".join("-" * (c + 2) for c in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(v).ljust(c) for v, c in zip(r, cols)) + " |")
    return "\n".join(out)
