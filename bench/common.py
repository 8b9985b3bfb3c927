"""Shared helpers for the benchmarks: locating shared profiles, medians, table printing."""
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


def interleaved_samples(fns: dict, rounds: int, inner: int) -> dict:
    """Seconds per call of each function in each of `rounds` alternating blocks."""
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
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


def table(headers, rows) -> str:
    cols = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    out = ["| " + " | ".join(str(h).ljust(c) for h, c in zip(headers, cols)) + " |",
           "|" + "|".join("-" * (c + 2) for c in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(v).ljust(c) for v, c in zip(r, cols)) + " |")
    return "\n".join(out)
