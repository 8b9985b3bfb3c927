"""Resource limits of a run, and the parsing of sizes and durations given by people."""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from typing import Optional

DEFAULT_OUTPUT_LIMIT = 64 << 20   # bytes kept per captured stream unless told otherwise
# Below this no program starts: with 1K, `true` ended with status 127 and not a word (the
# dynamic loader could not map its libraries); Docker refuses less than 6M
MIN_MEMORY = 1 << 20

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.I)
_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


_MAX_SIZE = (1 << 63) - 1   # what a kernel limit (rlim_t, memory.max) can hold


def parse_size(value) -> Optional[int]:
    """Bytes from an int or a string such as 64M, 1.5G, 512k, 100MiB (powers of 1024)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("size must be a number of bytes or a string like 64M, got %r" % value)
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("size must not be negative: %r" % value)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("size must be a finite number of bytes, got %r" % value)
        size = int(value)
    else:
        m = _SIZE.match(str(value))
        if not m:
            raise ValueError("bad size %r: use bytes or a number with K, M, G or T (e.g. 256M)"
                             % value)
        size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size > _MAX_SIZE:
        raise ValueError("size %r is beyond what the kernel can hold (8E)" % value)
    return size


def parse_output(value) -> Optional[int]:
    """An output limit in bytes (parse_size), refused at 0: it would mean none, and the limit
    is what keeps untrusted output out of the supervisor's memory."""
    size = parse_size(value)
    if size == 0:
        raise ValueError("output limit must be positive, got %r" % (value,))
    return size


def parse_count(value, what: str = "value") -> Optional[int]:
    """A positive whole number (processes, open files) from an int or a string of digits."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("%s must be a positive integer, got %r" % (what, value))
    return value


@functools.lru_cache(maxsize=None)
def open_files_ceiling() -> Optional[int]:
    """The most RLIMIT_NOFILE can be raised to (fs.nr_open), None when unknown. Read once: a
    batch whose jobs set open_files builds their Limits per run."""
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def cli_type(parse, keep_text: bool = False):
    """An argparse type from a parser (these, or the profile loader's): its ValueError becomes
    a usage error that names the option. keep_text: the value stays the text, only checked
    (for options the loader parses itself)."""
    import argparse

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e))
        return text if keep_text else value
    return convert


def parse_memory(value) -> Optional[int]:
    """A memory limit in bytes (parse_size), refused below MIN_MEMORY."""
    memory = parse_size(value)
    if memory is not None and memory < MIN_MEMORY:
        if memory == 0:
            raise ValueError("memory limit must be positive, got 0")
        raise ValueError("memory limit %s is below the minimum of 1M: no program starts in less"
                         % format_size(memory))
    return memory


def format_size(n: int) -> str:
    """A size for people: 64M, 1.5G, 100 bytes."""
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size and n % size == 0:
            return "%d%s" % (n // size, unit)
        if n >= size:
            return "%.1f%s" % (n / size, unit)
    return "%d bytes" % n


def parse_seconds(value) -> Optional[float]:
    """Seconds from a number or a string such as 2, 1.5s, 500ms, 2m."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("time must be a number of seconds, got %r" % value)
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _TIME.match(str(value))
        if not m:
            raise ValueError("bad duration %r: use seconds or a number with ms, s, m or h" % value)
        seconds = float(m.group(1)) * _SECONDS[m.group(2).lower() if m.group(2) else None]
    if seconds <= 0 or math.isinf(seconds) or math.isnan(seconds):
        raise ValueError("a time limit must be a positive number of seconds, got %r" % value)
    return seconds


# the command-line limit options, by the key add_limit_options takes: (flag, metavar, parser)
_OPTIONS = {
    "time": ("--time-limit", "S", parse_seconds),
    "wall": ("--wall-limit", "S", parse_seconds),
    "memory": ("--memory-limit", "SIZE", parse_memory),
    "output": ("--output-limit", "SIZE", parse_output),
    "file_size": ("--file-size-limit", "SIZE", parse_size),
    "processes": ("--processes", "N", lambda v: parse_count(v, "processes")),
    "open_files": ("--open-files", "N", lambda v: parse_count(v, "open files")),
    "stack": ("--stack-limit", "SIZE", parse_size),
}


def add_limit_options(group, **helps) -> None:
    """Add the limit options named by helps (keys of _OPTIONS: time, wall, memory, output,
    file_size, processes, open_files, stack; the value is the option's help) to an argparse
    group, each parsed as the API parses that limit, a bad value being a usage error."""
    for key, text in helps.items():
        flag, metavar, parse = _OPTIONS[key]
        group.add_argument(flag, metavar=metavar, type=cli_type(parse), help=text)


@dataclasses.dataclass(frozen=True)
class Limits:
    cpu_time: Optional[float] = None      # seconds of CPU, the whole tree where a cgroup measures it
    wall_time: Optional[float] = None     # seconds of real time
    memory: Optional[int] = None          # bytes (cgroup memory.max, else RLIMIT_AS)
    output: Optional[int] = None          # bytes kept per captured stream; more -> OUTPUT_LIMIT
    processes: Optional[int] = None       # tasks in the tree (cgroup pids.max, else RLIMIT_NPROC)
    file_size: Optional[int] = None       # RLIMIT_FSIZE: largest file the program may write
    open_files: Optional[int] = None      # RLIMIT_NOFILE
    stack: Optional[int] = None           # RLIMIT_STACK

    @classmethod
    def build(cls, *, cpu_time=None, wall_time=None, memory=None, output=None, processes=None,
              file_size=None, open_files=None, stack=None) -> "Limits":
        """Limits from numbers or strings. `output` defaults to DEFAULT_OUTPUT_LIMIT per stream:
        captured output lives in the supervisor's memory, so untrusted code must not choose its
        size; pass a larger value (or float("inf") for none) when you need it."""
        if output is None:
            output = DEFAULT_OUTPUT_LIMIT
        elif isinstance(output, float) and math.isinf(output) and output > 0:
            output = 0  # the C supervisor's "unlimited"
        else:
            parse_output(output)   # (0 is refused: float("inf") says none)
        memory = parse_memory(memory)
        for name, value in (("processes", processes), ("open_files", open_files)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError("%s must be a positive integer, got %r" % (name, value))
        ceiling = open_files_ceiling() if open_files is not None else None
        if ceiling is not None and open_files > ceiling:
            raise ValueError("open files limit %d is above what the kernel allows, %d "
                             "(fs.nr_open)" % (open_files, ceiling))
        return cls(cpu_time=parse_seconds(cpu_time), wall_time=parse_seconds(wall_time),
                   memory=memory, output=parse_size(output), processes=processes,
                   file_size=parse_size(file_size), open_files=open_files,
                   stack=parse_size(stack))

    def merged(self, **overrides) -> "Limits":
        given = {k: v for k, v in overrides.items() if v is not None}
        if not given:
            return self
        current = dataclasses.asdict(self)
        if current["output"] == 0:
            current["output"] = float("inf")   # (built from it: none)
        current.update(given)
        return Limits.build(**current)

    def effective_wall(self) -> Optional[float]:
        """The wall limit enforced: the given one, else twice the CPU limit plus a second, so a
        program that sleeps instead of computing is still stopped."""
        if self.wall_time is not None:
            return self.wall_time
        if self.cpu_time is not None:
            return self.cpu_time * 2 + 1
        return None

    def to_json(self) -> dict:
        # every Result carries this: made once per (frozen) Limits, then a shallow copy each
        made = self.__dict__.get("_json")
        if made is None:
            made = {f.name: getattr(self, f.name) for f in _FIELDS}
            made["wall_time"] = self.effective_wall()
            object.__setattr__(self, "_json", made)
        return dict(made)


_FIELDS = dataclasses.fields(Limits)
