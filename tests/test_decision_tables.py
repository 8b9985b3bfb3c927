"""Data-driven decision tables: tests/decision_tables/NAME.{json,table} (format in its README)."""
from pathlib import Path

import pytest

from sandbox import _core, profile
from sandbox.filter import Filter
from sandbox.policy import action_name

import bpfsim

TABLES = Path(__file__).parent / "decision_tables"


def _options(line: str) -> dict:
    opts = {}
    for item in line[1:].split():
        key, _, value = item.partition("=")
        if key in ("enosys_stub", "args_like_libseccomp"):
            opts[key] = value == "1"
        elif key == "kernel":
            opts[key] = tuple(int(x) for x in value.split("."))
        else:
            opts[key] = value
    return opts


def _cases():
    for table in sorted(TABLES.glob("*.table")):
        opts = {}
        for lineno, raw in enumerate(table.read_text().splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("%"):
                opts = _options(line)
                continue
            call, _, expected = line.partition("->")
            words = call.split()
            yield pytest.param(table.with_suffix(".json"), dict(opts), words[0], words[1],
                               [int(a, 0) for a in words[2:]], expected.strip(),
                               id="%s:%d" % (table.stem, lineno))


_filters = {}


def _filter(path, opts) -> Filter:
    key = (path, tuple(sorted(opts.items())))
    if key not in _filters:
        load_opts = {"host_arch": "x86_64", "caps": "none", "kernel": (6, 18)}
        load_opts.update(opts)
        _filters[key] = Filter(profile.load(path, **load_opts))
    return _filters[key]


@pytest.mark.parametrize("path,opts,arch,syscall,args,expected", list(_cases()))
def test_decision(path, opts, arch, syscall, args, expected):
    flt = _filter(path, opts)
    target = int(syscall, 0) if syscall[0].isdigit() else syscall
    decision = flt.decide(target, args, arch=arch)  # also checks the BPF agrees with the rules
    assert decision.action_name == expected, decision.describe()
    audit = _core.arch_info(arch)["audit_arch"]
    ret, _ = bpfsim.run(flt.program, audit, decision.nr, list(decision.args))
    assert action_name(ret) == expected
