"""JUnit XML for a batch, in the shape GitLab and Jenkins read.

    <testsuites name="sandbox batch" tests= failures= errors= skipped= time=>
      <testsuite name=JOBS-FILE tests= failures= errors= skipped= time= timestamp= hostname=>
        <properties><property name= value=/>...</properties>
        <testcase classname="sandbox.batch" name=JOB time=WALL-SECONDS>
          <failure message=FIRST-REASON type=VERDICT>reasons, tails of stdout/stderr</failure>
          <system-out>stdout (at most 64 KiB)</system-out>
          <system-err>stderr (at most 64 KiB)</system-err>
        </testcase>

A job that failed is a <failure> (type: its verdict, or WrongExitStatus or WrongOutput when it
ended on its own but not as expected); one that never ran because of a set-up
error (SETUP_ERROR) or a bad entry in the jobs file (type "BadJob") is an <error>; jobs stopped
or never started because of Ctrl-C are <skipped>. Text is sanitised to what XML 1.0 allows.
"""
from __future__ import annotations

import datetime
import os
import re
import socket
import tempfile
import xml.etree.ElementTree as ET
from typing import Iterable, Optional

CLASSNAME = "sandbox.batch"
OUT_LIMIT = 64 * 1024        # characters of stdout/stderr kept in <system-out>/<system-err>
                             # (escapes of control characters included)
TAIL_LIMIT = 2048            # characters of each stream's tail in a <failure> body (before
                             # escaping)
MESSAGE_LIMIT = 500

_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(ch: str) -> str:
    return "\\x%02x" % ord(ch) if ord(ch) < 0x100 else "\\u%04x" % ord(ch)


def clean(text: str) -> str:
    """Text XML 1.0 can carry: other control characters become \\xNN."""
    return _INVALID_XML.sub(lambda m: _escape(m.group()), text)


def _clean_prefix(text: str, limit: int) -> tuple:
    """(the first `limit` characters of clean(text), cut before an escape rather than in it;
    how many characters of text they show), without cleaning the rest of text."""
    out, size, at = [], 0, 0
    for m in _INVALID_XML.finditer(text, 0, limit):
        plain = text[at:m.start()]
        if size + len(plain) >= limit:
            break
        out.append(plain)
        size += len(plain)
        esc = _escape(m.group())
        if size + len(esc) > limit:
            return "".join(out), m.start()
        out.append(esc)
        size += len(esc)
        at = m.end()
    take = min(len(text) - at, limit - size)
    out.append(text[at:at + take])
    return "".join(out), at + take


def _decode(data: Optional[bytes]) -> str:
    return "" if not data else data.decode("utf-8", "replace")


def _head(text: str, limit: int = OUT_LIMIT) -> str:
    """The start of text, cleaned, in at most `limit` characters (and the count of the output's
    characters left out)."""
    shown, used = _clean_prefix(text, limit)
    if used == len(text):
        return shown
    return shown + "\n[... %d more characters truncated ...]\n" % (len(text) - used)


def _tail(text: str, limit: int = TAIL_LIMIT) -> str:
    """The last `limit` characters of text, cleaned."""
    if len(text) <= limit:
        return clean(text)
    return "[... %d characters before ...]\n" % (len(text) - limit) + clean(text[-limit:])


def _seconds(value) -> str:
    return "%.3f" % max(0.0, float(value or 0.0))


def _testcase(parent, name: str, time_s, classname: str = CLASSNAME) -> ET.Element:
    return ET.SubElement(parent, "testcase", {"classname": classname, "name": clean(name),
                                              "time": _seconds(time_s)})


def shown_output(jr) -> dict:
    """What a report shows of a job's output: {"stdout": (head, tail), "stderr": (...)}, each
    the text's first OUT_LIMIT and last TAIL_LIMIT characters ("" for none)."""
    kept = getattr(jr, "shown_output", None)
    if kept is not None:
        return kept
    r = jr.result
    shown = {}
    for label, data in (("stdout", r.stdout), ("stderr", r.stderr)):
        text = _decode(data)   # (cleaned by _head and _tail: only what they show)
        shown[label] = (_head(text), _tail(text)) if text else ("", "")
    return shown


def slim(jr, keep_for_report: bool = True) -> None:
    """Let jr hold no more of its output than a report shows (once its JSON line is written):
    a batch of jobs with big outputs then keeps ~66 KiB per job, or nothing without a report,
    instead of every byte until the end."""
    if keep_for_report:
        jr.shown_output = shown_output(jr)
    jr.result.stdout = jr.result.stderr = None


def _failure_body(jr) -> str:
    r = jr.result
    parts = [clean("\n".join(jr.failures))]
    if r.verdict == "SETUP_ERROR":
        parts.append(clean("command: %s" % " ".join(r.argv)))
    for label, (_, tail) in shown_output(jr).items():
        if tail:
            parts.append("--- %s (tail) ---\n%s" % (label, tail))
    return "\n\n".join(parts)


def build(results: Iterable, *, problems: Iterable = (), not_run: Iterable = (),
          suite_name: str = "sandbox batch", elapsed: Optional[float] = None,
          properties: Optional[dict] = None,
          timestamp: Optional[datetime.datetime] = None,
          classname: str = CLASSNAME) -> ET.ElementTree:
    """The report as an ElementTree. results: JobResults; problems: bad entries (Problem);
    not_run: Jobs never started (Ctrl-C). A result with a `verdict` of its own (a `sandbox
    grade` TestResult: WA, TLE, ...) reports that as the failure type; SETUP_ERROR and SE are
    errors rather than failures."""
    results = list(results)
    problems = list(problems)
    not_run = list(not_run)
    timestamp = timestamp or datetime.datetime.now()
    cases = []      # (index, order, builder)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    for jr in results:
        cases.append((jr.job.index, 0, ("result", jr)))
    for job in not_run:
        cases.append((job.index, 0, ("not_run", job)))
    by_entry = {}
    for p in problems:
        by_entry.setdefault(p.index, []).append(p)
    for index, entry_problems in by_entry.items():
        cases.append((index, 1, ("problem", entry_problems)))
    cases.sort(key=lambda c: (c[0], c[1]))

    suites = ET.Element("testsuites", {"name": classname.replace(".", " ")})
    suite = ET.SubElement(suites, "testsuite", {"name": clean(suite_name)})
    if properties:
        props = ET.SubElement(suite, "properties")
        for k, v in properties.items():
            ET.SubElement(props, "property", {"name": clean(str(k)), "value": clean(str(v))})
    total_time = 0.0
    for _, _, (kind, item) in cases:
        counts["tests"] += 1
        if kind == "result":
            jr = item
            r = jr.result
            total_time += r.wall_time or 0.0
            tc = _testcase(suite, jr.job.name, r.wall_time, classname)
            verdict = getattr(jr, "verdict", None) or r.verdict
            if verdict in ("OK", "NONZERO_EXIT"):  # it ran, and an expectation failed
                verdict = ("WrongExitStatus" if r.exit_code != jr.job.expect_exit
                           else "WrongOutput")
            if jr.interrupted:
                counts["skipped"] += 1
                ET.SubElement(tc, "skipped", {"message": clean(
                    "interrupted (Ctrl-C): killed after %.2fs" % (r.wall_time or 0.0))})
            elif not jr.passed:
                tag = "error" if verdict in ("SETUP_ERROR", "SE") else "failure"
                counts["errors" if tag == "error" else "failures"] += 1
                el = ET.SubElement(tc, tag, {"message": clean(jr.failures[0][:MESSAGE_LIMIT]),
                                             "type": verdict})
                el.text = _failure_body(jr)
            shown = shown_output(jr)
            if shown["stdout"][0]:
                ET.SubElement(tc, "system-out").text = shown["stdout"][0]
            if shown["stderr"][0]:
                ET.SubElement(tc, "system-err").text = shown["stderr"][0]
        elif kind == "not_run":
            counts["skipped"] += 1
            tc = _testcase(suite, item.name, 0, classname)
            ET.SubElement(tc, "skipped", {"message": "interrupted (Ctrl-C) before it started"})
        else:
            first = item[0]
            counts["errors"] += 1
            tc = _testcase(suite, first.name or first.where, 0, classname)
            el = ET.SubElement(tc, "error", {"message": clean(str(first)[:MESSAGE_LIMIT]),
                                             "type": "BadJob"})
            el.text = clean("\n".join(str(p) for p in item))
    wall = elapsed if elapsed is not None else total_time
    for el in (suites, suite):
        for k in ("tests", "failures", "errors", "skipped"):
            el.set(k, str(counts[k]))
        el.set("time", _seconds(wall))
    suite.set("timestamp", timestamp.replace(microsecond=0).isoformat())
    suite.set("hostname", clean(socket.gethostname() or "localhost"))
    # attribute order people expect to read first
    suite.attrib = dict(sorted(suite.attrib.items(), key=lambda kv: _ORDER.get(kv[0], 99)))
    suites.attrib = dict(sorted(suites.attrib.items(), key=lambda kv: _ORDER.get(kv[0], 99)))
    tree = ET.ElementTree(suites)
    if hasattr(ET, "indent"):
        ET.indent(tree, space="  ")
    return tree


_ORDER = {"name": 0, "tests": 1, "failures": 2, "errors": 3, "skipped": 4, "time": 5,
          "timestamp": 6, "hostname": 7}


def to_bytes(results, **kw) -> bytes:
    tree = build(results, **kw)
    return ET.tostring(tree.getroot(), encoding="UTF-8", xml_declaration=True) + b"\n"


def write_junit(path: str, results, **kw) -> None:
    """Write the report to path ("-": stdout); a regular file is replaced atomically (a
    temporary file in the same directory, renamed)."""
    data = to_bytes(results, **kw)
    if path == "-":
        import sys
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    if os.path.exists(path) and not os.path.isfile(path):  # /dev/stdout, a FIFO...
        with open(path, "wb") as f:
            f.write(data)
        return
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".junit-", suffix=".xml", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
