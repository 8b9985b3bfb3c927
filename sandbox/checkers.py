"""How `sandbox grade` decides whether a solution's output is right: the checkers.

    exact      the lines are equal once each line's trailing spaces, tabs and \\r are removed
               and empty lines at the end are dropped (so "7 \\r\\n\\n" equals "7")
    tokens     the whitespace-separated tokens are equal (any spacing and line breaks)
    float:EPS  tokens; where the answer's token is a number, the output's must be a number
               within EPS of it, absolutely or relatively: |out - ans| <= EPS * max(1, |ans|);
               other tokens compare exactly. "float" alone means float:1e-6
    a command  a program, run sandboxed as `CMD INPUT OUTPUT ANSWER` (testlib's order, file
               paths): exit 0 = AC, 1 = WA, anything else (or a limit) = a checker error (SE);
               the first line of its stdout (else stderr) is shown as the message
    a callable (Python API only) func(input, output, answer) -> bool or (bool, message), with
               bytes; it runs in the grading process, unsandboxed

Built-in checkers compare bytes; nothing is decoded.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import shlex
import shutil
from typing import Callable, List, Optional, Tuple

BUILTIN = ("exact", "tokens", "float")
DEFAULT_EPS = 1e-6
MESSAGE_LIMIT = 300

# numbers as judges write them: no "nan", "inf", "0x..." or Python's "1_000"
_NUMBER = re.compile(rb"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_LINE_END = b" \t\r"


@dataclasses.dataclass(frozen=True)
class Checker:
    kind: str                                  # "exact", "tokens", "float", "command", "callable"
    eps: float = 0.0                           # float
    argv: Tuple[str, ...] = ()                 # command: the program and its own arguments
    cwd: Optional[str] = None                  # command: where relative paths in it were written
    func: Optional[Callable] = None            # callable

    def __str__(self) -> str:
        if self.kind == "float":
            return "float:%g" % self.eps
        if self.kind == "command":
            return shlex.join(self.argv)
        if self.kind == "callable":
            return getattr(self.func, "__qualname__", repr(self.func))
        return self.kind


class CheckerSpecError(ValueError):
    """A checker given by name or command that cannot be used."""


def _program_exists(word: str, base: str) -> bool:
    if "/" in word:
        path = os.path.join(base, word)
        return os.path.isfile(path) and os.access(path, os.X_OK)
    from .runner import DEFAULT_PATH
    return shutil.which(word, path=DEFAULT_PATH) is not None


def parse(spec, base_dir: Optional[str] = None) -> Checker:
    """A Checker from a name ("exact", "tokens", "float:1e-6"), a command (a string, split like
    a shell would, or a list of strings), a callable, or a Checker. A command's relative paths
    are relative to base_dir (default: the current directory), which is also where it runs.
    Raises CheckerSpecError for an unknown name or a program that does not exist."""
    base = os.path.abspath(base_dir or os.getcwd())
    if isinstance(spec, Checker):
        return spec
    if callable(spec):
        return Checker("callable", func=spec)
    if isinstance(spec, str):
        text = spec.strip()
        name, colon, eps_text = text.partition(":")
        if name == "float" and " " not in text:
            if not colon:
                return Checker("float", eps=DEFAULT_EPS)
            try:
                eps = float(eps_text)
            except ValueError:
                eps = -1.0
            if not (eps >= 0 and math.isfinite(eps)):
                raise CheckerSpecError("checker %s: EPS must be a non-negative number, as in "
                                       "float:1e-6" % json_quote(spec))
            return Checker("float", eps=eps)
        if text in ("exact", "tokens"):
            return Checker(text)
        try:
            argv = shlex.split(text)
        except ValueError as e:
            raise CheckerSpecError("checker %s: %s" % (json_quote(spec), e)) from None
    elif isinstance(spec, (list, tuple)) and all(isinstance(w, str) for w in spec):
        argv = list(spec)
    else:
        raise CheckerSpecError("a checker must be a name (exact, tokens, float:EPS), a command "
                               "(a string or a list of strings) or a callable, got %s"
                               % type(spec).__name__)
    if not argv or not argv[0]:
        raise CheckerSpecError("checker: empty command")
    if not _program_exists(argv[0], base):
        close = difflib.get_close_matches(argv[0], BUILTIN, n=1, cutoff=0.6)
        raise CheckerSpecError(
            "checker %s: neither a built-in checker (exact, tokens, float:EPS) nor a program "
            "that exists%s" % (json_quote(" ".join(argv)), ' (did you mean "%s"?)' % close[0]
                               if close else " (relative to %s)" % base if "/" in argv[0] else
                               " on PATH"))
    return Checker("command", argv=tuple(argv), cwd=base)


def json_quote(text: str) -> str:
    import json
    return json.dumps(text)


def _preview(data: bytes, limit: int = 40) -> str:
    text = data.decode("utf-8", "replace")
    return json_quote(text if len(text) <= limit else text[:limit] + "...")


def _normal_lines(data: bytes) -> List[bytes]:
    lines = [line.rstrip(_LINE_END) for line in data.split(b"\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def exact(output: bytes, answer: bytes) -> Tuple[bool, str]:
    got, want = _normal_lines(output), _normal_lines(answer)
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return False, "line %d: got %s, expected %s" % (i + 1, _preview(g), _preview(w))
    if len(got) > len(want):
        return False, "extra output from line %d: %s" % (len(want) + 1, _preview(got[len(want)]))
    if len(got) < len(want):
        return False, "output ends at line %d; expected line %d: %s" % (
            len(got), len(got) + 1, _preview(want[len(got)]))
    return True, ""


def _token_count(got: list, want: list) -> str:
    return "%d tokens, expected %d%s" % (
        len(got), len(want), "; first missing: %s" % _preview(want[len(got)])
        if len(got) < len(want) else "; first extra: %s" % _preview(got[len(want)]))


def tokens(output: bytes, answer: bytes) -> Tuple[bool, str]:
    got, want = output.split(), answer.split()
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return False, "token %d: got %s, expected %s" % (i + 1, _preview(g), _preview(w))
    if len(got) != len(want):
        return False, _token_count(got, want)
    return True, ""


def floats(output: bytes, answer: bytes, eps: float) -> Tuple[bool, str]:
    got, want = output.split(), answer.split()
    for i, (g, w) in enumerate(zip(got, want)):
        if g == w:
            continue
        a = float(w) if _NUMBER.match(w) else None
        if a is None or not math.isfinite(a):
            return False, "token %d: got %s, expected %s" % (i + 1, _preview(g), _preview(w))
        if not _NUMBER.match(g):
            return False, "token %d: got %s, expected the number %s" % (
                i + 1, _preview(g), _preview(w))
        diff = abs(float(g) - a)
        if not diff <= eps * max(1.0, abs(a)):
            return False, "token %d: got %s, expected %s (differs by %.3g, more than %g)" % (
                i + 1, _preview(g), _preview(w), diff, eps)
    if len(got) != len(want):
        return False, _token_count(got, want)
    return True, ""


def compare(checker: Checker, input_data: bytes, output: bytes,
            answer: bytes) -> Tuple[bool, str]:
    """(accepted, message) of an in-process checker (a built-in or a callable)."""
    if checker.kind == "exact":
        return exact(output, answer)
    if checker.kind == "tokens":
        return tokens(output, answer)
    if checker.kind == "float":
        return floats(output, answer, checker.eps)
    if checker.kind == "callable":
        got = checker.func(input_data, output, answer)
        ok, message = got if isinstance(got, tuple) else (got, "")
        return bool(ok), str(message or "")[:MESSAGE_LIMIT]
    raise ValueError("checker %s does not run in-process" % checker)


def _first_line(data: Optional[bytes]) -> str:
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()[:MESSAGE_LIMIT]
    return ""


def command_verdict(result) -> Tuple[str, str]:
    """AC, WA or SE, and the message, from a command checker's Result."""
    message = _first_line(result.stdout) or _first_line(result.stderr)
    if result.verdict == "OK":
        return "AC", message
    if result.verdict == "NONZERO_EXIT" and result.exit_code == 1:
        return "WA", message
    from .batch import verdict_reason
    why = "exit status %d" % result.exit_code if result.verdict == "NONZERO_EXIT" \
        else verdict_reason(result)
    return "SE", "checker failed (%s)%s" % (why, ": " + message if message else "")
