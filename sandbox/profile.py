"""Seccomp profiles (JSON) -> `Policy`: parse, validate, resolve.

Accepted inputs, told apart by their keys (one schema covers all of them):

- a Docker (moby) profile: the OCI fields plus `archMap`, `syscalls[].name` (legacy),
  `comment`, `includes` / `excludes` {caps, arches, minKernel};
- an OCI runtime-spec `linux.seccomp` object, or a whole OCI `config.json` (its `linux.seccomp`
  is taken; a config without one is an error);
- a containers-common (podman) profile: like Docker's, plus `defaultErrno` / `errno` given as
  errno names ("ENOSYS") or decimal strings ("38"), which override `defaultErrnoRet` / `errnoRet`.

The work is done in four phases, one method each in `_Loader`:

1. read      - path / dict / JSON text -> JSON value (syntax errors carry line:col);
2. validate  - every field of every entry is type-checked, even entries the host will drop, so a
               profile broken on some other host is broken here too. Errors fail closed: the
               first one raises `ProfileError` with the JSON path of the culprit. Unknown keys
               are warnings (errors with strict=True); a key that differs from a known one
               only in case is an error, since Go (Docker) would read it;
3. resolve   - exactly as moby's setupSeccomp: archMap by host arch, includes/excludes by the
               capability set, the host arch and the running kernel;
4. convert   - exactly as runc: one `Rule` per name, default-equal rules dropped, unknown names
               skipped, a repeated argument index splits the entry into single-condition rules.

Seccomp disabled: a profile with no (or an empty) `defaultAction` and no syscalls resolves to
None, as moby and runc read it (an error when it also has unknown keys). The caller must then
run without a filter, saying so, or refuse to run.
"""
from __future__ import annotations

import errno as _errno
import json
from itertools import repeat
import os
import platform
import re
from typing import Iterable, NamedTuple, Optional, Union

from sandbox import syscalls
from sandbox.policy import (ACTIONS, ARCHES, FLAGS, OPS, RET_ERRNO, RET_KILL_THREAD, RET_TRACE,
                            RET_USER_NOTIF, Cond, Policy, Rule, action_name)

__all__ = [
    "ProfileError", "load", "parse_caps", "default_caps", "parse_release", "running_kernel",
    "parse_min_kernel", "normalize_arch", "CAPABILITIES", "DOCKER_DEFAULT_CAPS",
    "SCMP_ARCH_TOKENS",
]

U64_MAX = 2**64 - 1
EPERM = 1
MAX_ERRNO = 4095    # the kernel clamps SECCOMP_RET_ERRNO data above this (kernel/seccomp.c)

# ------------------------------------------------------------------------------------------------
# Errors


class ProfileError(ValueError):
    """A profile that cannot be loaded. `path` is the JSON path of the culprit ("" for the file)."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__("%s: %s" % (path, problem) if path else problem)


def _show(value, limit: int = 80) -> str:
    """`value` as JSON, shortened for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key(path: str, key: str) -> str:
    return "%s.%s" % (path, key) if path else key


def _item(path: str, index: int) -> str:
    return "%s[%d]" % (path, index)


# ------------------------------------------------------------------------------------------------
# Capabilities

# Indexed by capability number (linux/capability.h), up to CAP_CHECKPOINT_RESTORE = 40.
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
_CAPABILITY_SET = frozenset(CAPABILITIES)
_CAPABILITY_NUMBER = {name: number for number, name in enumerate(CAPABILITIES)}

# What Docker gives a container by default (moby oci/caps/defaults.go), in capability order.
DOCKER_DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
    "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
)


def parse_caps(spec: Union[str, Iterable[str]]) -> tuple:
    """Capability names from a `--caps` spec, sorted by capability number.

    A string is comma-separated; each item is a capability name (case-insensitive, the CAP_
    prefix optional) or one of `docker` (DOCKER_DEFAULT_CAPS), `all`, `none`. An iterable gives
    the items directly. Unknown names raise ValueError.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    if isinstance(spec, str) and not spec.strip():
        raise ValueError("empty capability list (write none for no capabilities)")
    chosen = set()
    for raw in items:
        if not isinstance(raw, str):
            raise ValueError("capability names must be strings, got %r" % (raw,))
        item = raw.strip()
        keyword = item.lower()
        if keyword == "docker":
            chosen.update(DOCKER_DEFAULT_CAPS)
        elif keyword == "all":
            chosen.update(CAPABILITIES)
        elif keyword == "none":
            pass
        elif not item:
            raise ValueError("empty capability name in %r" % (spec,))
        else:
            name = item.upper()
            if not name.startswith("CAP_"):
                name = "CAP_" + name
            if name not in CAPABILITIES:
                raise ValueError("unknown capability %r (expected a name such as CAP_SYS_ADMIN, "
                                 "or docker, all, none)" % item)
            chosen.add(name)
    return tuple(sorted(chosen, key=_CAPABILITY_NUMBER.get))


def default_caps() -> tuple:
    """The capabilities the sandboxed process would get: Docker's set as root, none otherwise."""
    return DOCKER_DEFAULT_CAPS if os.geteuid() == 0 else ()


# ------------------------------------------------------------------------------------------------
# Host facts: architecture and kernel version

_MACHINE_TO_ARCH = {
    "x86_64": "x86_64", "amd64": "x86_64",
    "aarch64": "aarch64", "arm64": "aarch64",
    "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86", "x86": "x86",
    "arm": "arm",
}

# Our arch name -> moby's "native" name (goToNative), used by includes/excludes.arches.
_MOBY_NATIVE = {"x86_64": "amd64", "x86": "x86", "aarch64": "arm64", "arm": "arm"}

# Our arch name -> SCMP_ARCH_* token, used to pick the archMap entry.
_SCMP_TOKEN = {name: token for token, name in ARCHES.items()}

# Every architecture token the runtime-spec lists (config-linux.md). Tokens outside ARCHES are
# accepted but cannot be compiled: calls from those ABIs get the bad-arch action.
SCMP_ARCH_TOKENS = (
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
)

_SCMP_ARCH_TOKEN_SET = frozenset(SCMP_ARCH_TOKENS)

# Names includes/excludes.arches may use: moby's goToNative values and libseccomp's arch names
# (podman compares with libseccomp's GetNativeArch().String()). Others can never match.
_NATIVE_ARCH_NAMES = frozenset((
    "amd64", "x86", "x32", "arm", "arm64", "loong64", "loongarch64", "mips", "mipsel", "mips64",
    "mipsel64", "mips64n32", "mipsel64n32", "mips3l64n32", "ppc", "ppc64", "ppc64le", "riscv64",
    "s390", "s390x", "parisc", "parisc64", "m68k", "sh", "sheb",
))


def normalize_arch(machine: str) -> str:
    """Our arch name ("x86_64", "x86", "aarch64", "arm") for a machine or Docker arch name."""
    name = machine.lower()
    if name in _MACHINE_TO_ARCH:
        return _MACHINE_TO_ARCH[name]
    if re.fullmatch(r"armv\d+\w*", name):
        return "arm"
    raise ValueError("unsupported host architecture %r (supported: x86_64, x86, aarch64, arm)"
                     % machine)


def parse_release(release: str) -> tuple:
    """(major, minor) of a kernel release string, read like moby's Sscanf("%d.%d").

    "3.10.0-862.2.3.el7.x86_64" -> (3, 10), "3.12foobar" -> (3, 12); "3", "3.", "3a", "-3"
    raise ValueError.
    """
    match = re.match(r"([0-9]+)\.([0-9]+)", release)
    if not match:
        raise ValueError("cannot parse kernel release %r: expected <major>.<minor>..." % release)
    return int(match.group(1)), int(match.group(2))


def running_kernel() -> tuple:
    """(major, minor) of the running kernel."""
    return parse_release(os.uname().release)


def parse_min_kernel(value, path: str) -> Optional[tuple]:
    """A profile's minKernel "X.Y" (each 0..255, not "0.0"); "" means unset (None)."""
    if not isinstance(value, str):
        raise ProfileError(path, 'expected a string "<major>.<minor>", got %s' % _show(value))
    if value == "":
        return None
    match = re.fullmatch(r"([0-9]+)\.([0-9]+)", value)
    if not match:
        raise ProfileError(path, 'expected "<major>.<minor>", got %s' % _show(value))
    version = int(match.group(1)), int(match.group(2))
    if max(version) > 255:
        raise ProfileError(path, "each part must be 0..255, got %s" % _show(value))
    if version == (0, 0):
        raise ProfileError(path, "version cannot be 0.0 %s" % _show(value))
    return version


_CONDS = {}             # (index, op, value, value_two) -> Cond: profiles repeat a few conditions


def _cond(index: int, op: int, value: int, value_two: int) -> Cond:
    key = (index, op, value, value_two)
    cond = _CONDS.get(key)
    if cond is None:
        cond = Cond(index=index, op=op, value=value, value_two=value_two)
        if len(_CONDS) < 4096:
            _CONDS[key] = cond
    return cond


_MIN_KERNELS = {}       # minKernel string -> parsed value, for the valid ones


def _min_kernel(value, path: str) -> Optional[tuple]:
    """parse_min_kernel, remembering valid strings (a profile repeats the same few)."""
    parsed = _MIN_KERNELS.get(value) if value.__class__ is str else None
    if parsed is None:
        parsed = parse_min_kernel(value, path)
        if parsed is not None and len(_MIN_KERNELS) < 256:
            _MIN_KERNELS[value] = parsed
    return parsed


# ------------------------------------------------------------------------------------------------
# Phase 1: read


class _JsonObject(dict):
    """A JSON object that remembers keys given twice (Go and Python keep the last value)."""

    duplicates: tuple = ()

    @classmethod
    def from_pairs(cls, pairs):
        obj = cls(pairs)
        if len(obj) != len(pairs):
            seen = set()
            obj.duplicates = tuple(k for k, _ in pairs if k in seen or seen.add(k))
        return obj


def _parse_json(text: str, source: str):
    def reject_constant(name):
        raise ProfileError("", "%s: invalid JSON: %s is not a number JSON allows" % (source, name))

    try:
        return json.loads(text, object_pairs_hook=_JsonObject.from_pairs,
                          parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise ProfileError("", "%s:%d:%d: invalid JSON: %s"
                           % (source, exc.lineno, exc.colno, exc.msg)) from None


def _read_source(source) -> tuple:
    """(JSON value, source name) from a path, a dict or JSON text."""
    if isinstance(source, dict):
        return source, "<dict>"
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return _parse_json(source, "<json>"), "<json>"
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError("profile source must be a path, a dict or JSON text, not %s"
                        % type(source).__name__)
    name = str(source)
    try:
        with open(source, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ProfileError("", "%s: cannot read: %s" % (name, exc.strerror or exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError("", "%s: not UTF-8 text (byte %d)" % (name, exc.start)) from None
    return _parse_json(text, name), name


_PROFILE_KEYS = frozenset((
    "defaultAction", "defaultErrnoRet", "defaultErrno", "architectures", "archMap", "flags",
    "listenerPath", "listenerMetadata", "syscalls",
    # Not in moby's type, but the natural place for a profile's own description (our built-in
    # profiles use it), as `comment` is for an entry: accepted and ignored.
    "comment",
))
_ENTRY_KEYS = frozenset((
    "names", "name", "action", "errnoRet", "errno", "args", "comment", "includes", "excludes",
))
_ARG_KEYS = frozenset(("index", "value", "valueTwo", "op"))
_FILTER_KEYS = frozenset(("caps", "arches", "minKernel"))
_ARCHMAP_KEYS = frozenset(("architecture", "subArchitectures"))


def _select_profile(doc, source: str) -> tuple:
    """(profile object, JSON path of it): the document itself, or an OCI config's linux.seccomp."""
    if not isinstance(doc, dict):
        raise ProfileError("", "%s: expected a JSON object (a seccomp profile or an OCI "
                               "config.json), got %s" % (source, _show(doc)))
    is_oci_config = "ociVersion" in doc or ("linux" in doc and not _PROFILE_KEYS & doc.keys())
    if not is_oci_config:
        return doc, ""
    linux = doc.get("linux")
    if linux is not None and not isinstance(linux, dict):
        raise ProfileError("linux", "expected an object, got %s" % _show(linux))
    seccomp = (linux or {}).get("seccomp")
    if seccomp is None:
        raise ProfileError("linux.seccomp", "missing: this OCI config.json has no seccomp "
                                            "profile")
    if not isinstance(seccomp, dict):
        raise ProfileError("linux.seccomp", "expected an object, got %s" % _show(seccomp))
    return seccomp, "linux.seccomp"


# ------------------------------------------------------------------------------------------------
# Phase 2 helpers: typed field access. Absent and null mean the same (Go decodes null as zero).


def _fold(key: str) -> str:
    """A key as Go's encoding/json compares it case-insensitively (simple folding: the long s
    matches "s", the Kelvin sign "k")."""
    return key.lower().upper()


def _require(obj: dict, key: str, path: str):
    """obj[key]; a missing key is an error that points out a case-only near miss."""
    if key in obj:
        return obj[key]
    near = [k for k in obj if _fold(k) == _fold(key)]
    if near:
        raise ProfileError(_key(path, key), "missing (found %s: keys are case-sensitive here)"
                           % _show(near[0]))
    raise ProfileError(_key(path, key), "missing")


def _object(value, path: str) -> dict:
    if not isinstance(value, dict):
        raise ProfileError(path, "expected an object, got %s" % _show(value))
    return value


def _string(value, path: str, what: str = "a string") -> str:
    if not isinstance(value, str):
        raise ProfileError(path, "expected %s, got %s" % (what, _show(value)))
    return value


def _list(value, path: str, what: str) -> list:
    """A JSON array (null -> [])."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProfileError(path, "expected %s, got %s" % (what, _show(value)))
    return value


def _strings(value, path: str) -> list:
    """A JSON array of strings (null -> [])."""
    items = _list(value, path, "a list of strings")
    if not _ONLY_STR.issuperset(map(type, items)):    # the common case checked in C
        for index, item in enumerate(items):
            if not isinstance(item, str):
                _string(item, _item(path, index))   # raises, with the culprit's path
    return items


_ONLY_STR = frozenset((str,))

# tuple.__new__(SomeNamedTuple, fields) builds a NamedTuple in C, without the Python-level
# __new__ a call of the class runs: the loader makes hundreds of rules per profile.
_new_tuple = tuple.__new__


def _uint(value, path: str, limit: Optional[int] = U64_MAX) -> int:
    """A non-negative JSON integer (no bool, no fraction, no exponent form), at most `limit`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProfileError(path, "expected an unsigned integer, got %s" % _show(value))
    if limit is not None and value > limit:
        raise ProfileError(path, "%d is out of range (max 2**64-1)" % value)
    return value


def _action_value(name: str, path: str) -> int:
    if name not in ACTIONS:
        raise ProfileError(path, "unknown action %s" % _show(name))
    return ACTIONS[name]


def _errno_name(value, path: str) -> int:
    """podman's errno/defaultErrno: an errno name ("EPERM") or a decimal string ("1")."""
    text = _string(value, path, "an errno name or a decimal string")
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    number = getattr(_errno, text, None) if re.fullmatch(r"E[A-Z0-9]+", text) else None
    if not isinstance(number, int):
        raise ProfileError(path, "unknown errno name %s" % _show(text))
    return number


def _arch_token(value, path: str) -> str:
    token = _string(value, path, "an architecture name such as SCMP_ARCH_X86_64")
    if token not in _SCMP_ARCH_TOKEN_SET:
        raise ProfileError(path, "unknown architecture %s" % _show(token))
    return token


# ------------------------------------------------------------------------------------------------
# Validated pieces of an entry


# NamedTuples rather than frozen dataclasses: as immutable, and several times cheaper to build
# (a profile makes one _Entry per syscalls[] entry on every load).

class _Filter(NamedTuple):
    """includes / excludes of a Docker entry."""
    path: str
    caps: tuple
    arches: tuple
    min_kernel: Optional[tuple]


class _Entry(NamedTuple):
    """One validated syscalls[] entry, before include/exclude resolution."""
    path: str
    names: tuple            # syscall names, as the profile lists them
    names_path: str         # the JSON path of the names list, or of moby's legacy single name
    legacy: bool            # the entry gives that single `name`
    action: int             # kernel value with data
    conds: tuple            # Cond, ...
    split: bool             # an argument index repeats: one single-condition rule per Cond
    includes: Optional[_Filter]
    excludes: Optional[_Filter]

    def name_indexes(self):
        """The position of each name in its list, as a Rule records it (-1: a legacy name)."""
        return (-1,) if self.legacy else range(len(self.names))

    def name_path(self, index: int) -> str:
        return self.names_path if index < 0 else _item(self.names_path, index)


# ------------------------------------------------------------------------------------------------
# Phases 2-4


class _Loader:
    """Validates one profile object and resolves it for a host; warnings collect in .warnings."""

    def __init__(self, profile: dict, root: str, *, host: str, caps: tuple, kernel, strict: bool):
        self.profile = profile
        self.root = root
        self.host = host
        self.caps = frozenset(caps)
        self.kernel = kernel            # (major, minor), or the unparsable release string
        self.strict = strict
        self.warnings = []

    # -- plumbing

    def path(self, key: str) -> str:
        return _key(self.root, key)

    def warn(self, path: str, problem: str) -> None:
        if self.strict:
            raise ProfileError(path, problem + " (strict mode)")
        self.warnings.append("%s: %s" % (path, problem) if path else problem)

    def check_keys(self, obj: dict, path: str, known: frozenset) -> None:
        if known.issuperset(obj) and not getattr(obj, "duplicates", ()):
            return      # the common case, decided in C
        for key in getattr(obj, "duplicates", ()):
            self.warn(_key(path, key), "duplicate key, the last value is used (as Go does)")
        for key in obj:
            if key in known:
                continue
            near = [k for k in sorted(known) if k != "comment" and _fold(k) == _fold(key)]
            if near:
                # Go matches keys case-insensitively: Docker (podman) would apply this one,
                # and ignoring it could leave a wider filter (an "Args" that narrows a rule)
                # or none at all
                raise ProfileError(_key(path, key), "keys are case-sensitive here, and Go "
                                   "(Docker, podman) would read this one as %s: write it so"
                                   % _show(near[0]))
            self.warn(_key(path, key), "unknown key, ignored")

    # -- the whole profile

    def run(self) -> Optional[Policy]:
        self.check_keys(self.profile, self.root, _PROFILE_KEYS)
        raw_entries = _list(self.profile.get("syscalls"), self.path("syscalls"),
                            "a list of syscall entries")
        if self.profile.get("defaultAction") in (None, "") and not raw_entries:
            # moby/runc: no default action and no rules -> seccomp disabled; but not on the
            # strength of a profile with keys we do not know (a misspelt "defaultAction")
            if self.warnings:
                raise ProfileError(self.root, "no defaultAction and no syscalls, which disables "
                                   "seccomp, beside what loading it warned about (%s): "
                                   "refusing to run without a filter on that"
                                   % "; ".join(self.warnings))
            return None
        default = self.default_action()
        arches = self.architectures()
        flags = self.flags()
        listener_path, listener_metadata = self.listener()
        syscalls_path = self.path("syscalls")
        entries = [self.entry(raw, f"{syscalls_path}[{index}]")
                   for index, raw in enumerate(raw_entries)]
        survivors = [entry for entry in entries if self.included(entry)]
        rules, stub_names, notify = self.convert(survivors, default)
        self.check_notify(notify, listener_path)
        flags = self.check_wait_killable(flags, notify)
        return Policy(
            default_action=default, arches=arches, rules=tuple(rules),
            stub_names=tuple(stub_names), flags=flags, listener_path=listener_path,
            listener_metadata=listener_metadata, badarch_action=RET_KILL_THREAD,
            host_arch=self.host, caps=tuple(sorted(self.caps, key=_CAPABILITY_NUMBER.get)),
            kernel=self.kernel if isinstance(self.kernel, tuple) else (0, 0),
            warnings=self.warnings)

    # -- defaultAction, defaultErrnoRet, defaultErrno

    def default_action(self) -> int:
        path = self.path("defaultAction")
        name = _string(_require(self.profile, "defaultAction", self.root), path, "an action name")
        if name == "SCMP_ACT_NOTIFY":
            raise ProfileError(path, "SCMP_ACT_NOTIFY cannot be the default action (runc refuses "
                                     "it too) %s" % _show(name))
        kind = _action_value(name, path)
        return kind | self.action_data(kind, name, self.profile, self.root,
                                       "defaultErrnoRet", "defaultErrno")

    def action_data(self, kind: int, name: str, obj: dict, path: str, ret_key: str,
                    name_key: str) -> int:
        """The 16-bit data of an action: errnoRet / podman's errno, EPERM when absent."""
        value = where = None
        if obj.get(ret_key) is not None:
            where = _key(path, ret_key)
            value = _uint(obj[ret_key], where)
        if obj.get(name_key) not in (None, ""):
            name_path = _key(path, name_key)
            named = _errno_name(obj[name_key], name_path)
            if value is not None and value != named:
                self.warn(name_path, "%s (%d) overrides %s %d (as podman does)"
                          % (_show(obj[name_key]), named, ret_key, value))
            value, where = named, name_path
        if kind not in (RET_ERRNO, RET_TRACE):
            if where is not None:
                self.warn(where, "%d ignored: %s takes no errno (runc ignores it, crun rejects "
                                 "the profile)" % (value, name))
            return 0
        if value is None:
            return EPERM    # runc and crun: ERRNO / TRACE without errnoRet -> EPERM
        if kind == RET_ERRNO and value >= MAX_ERRNO:
            raise ProfileError(where, "%d is not an errno the kernel can return (must be < %d)"
                               % (value, MAX_ERRNO))
        if value > 0xFFFF:
            raise ProfileError(where, "%d does not fit the 16-bit data of SCMP_ACT_TRACE "
                                      "(must be <= 65535)" % value)
        return value

    # -- architectures / archMap

    def architectures(self) -> tuple:
        """Our arch names: the host first, then the profile's compilable ones in order."""
        listed_path, map_path = self.path("architectures"), self.path("archMap")
        listed = _strings(self.profile.get("architectures"), listed_path)
        arch_map = _list(self.profile.get("archMap"), map_path, "a list of architecture maps")
        if listed and arch_map:
            raise ProfileError(map_path, 'both "architectures" and "archMap" given, use one of '
                                         'them')
        if arch_map:
            tokens = self.arch_map(arch_map, map_path)
        else:
            tokens = [(_arch_token(token, _item(listed_path, index)), _item(listed_path, index))
                      for index, token in enumerate(listed)]
        host_token = _SCMP_TOKEN[self.host]
        if tokens and host_token not in (token for token, _ in tokens):
            self.warn(listed_path if listed else map_path,
                      "the host architecture %s is not listed; it is added anyway (libseccomp "
                      "always includes the native arch)" % host_token)
        arches = [self.host]
        for token, path in tokens:
            if token not in ARCHES:
                self.warn(path, "%s: not supported by this compiler, calls from that ABI will be "
                                "killed (bad arch)" % token)
            elif ARCHES[token] not in arches:
                arches.append(ARCHES[token])
        return tuple(arches)

    def arch_map(self, arch_map: list, path: str) -> list:
        """moby: the first entry whose architecture is the host's gives [arch] + subArchitectures.
        Every entry is validated, selected or not."""
        chosen = None
        host_token = _SCMP_TOKEN[self.host]
        for index, raw in enumerate(arch_map):
            if chosen is not None and self.plain_arch_map_entry(raw):
                continue    # valid, and no longer a candidate: nothing to record
            entry_path = _item(path, index)
            entry = _object(raw, entry_path)
            self.check_keys(entry, entry_path, _ARCHMAP_KEYS)
            arch_path = _key(entry_path, "architecture")
            arch = _arch_token(_require(entry, "architecture", entry_path), arch_path)
            subs_path = _key(entry_path, "subArchitectures")
            subs = []
            for i, token in enumerate(_strings(entry.get("subArchitectures"), subs_path)):
                sub_path = _item(subs_path, i)
                subs.append((_arch_token(token, sub_path), sub_path))
            if chosen is None and arch == host_token:
                chosen = [(arch, arch_path)] + subs
        return chosen or []

    @staticmethod
    def plain_arch_map_entry(entry) -> bool:
        """An archMap entry with nothing to report, checked in C."""
        if not isinstance(entry, dict) or not _ARCHMAP_KEYS.issuperset(entry):
            return False
        arch, subs = entry.get("architecture"), entry.get("subArchitectures")
        return (arch.__class__ is str and arch in _SCMP_ARCH_TOKEN_SET
                and (subs is None or (subs.__class__ is list
                                      and _ONLY_STR.issuperset(map(type, subs))
                                      and _SCMP_ARCH_TOKEN_SET.issuperset(subs)))
                and not getattr(entry, "duplicates", ()))

    # -- flags, listenerPath, listenerMetadata

    def flags(self) -> Optional[tuple]:
        """None when absent (runc then adds SPEC_ALLOW), else the distinct flag names."""
        path = self.path("flags")
        if self.profile.get("flags") is None:
            return None
        names = []
        for index, name in enumerate(_strings(self.profile["flags"], path)):
            flag_path = _item(path, index)
            if name in ("SECCOMP_FILTER_FLAG_NEW_LISTENER", "SECCOMP_FILTER_FLAG_TSYNC_ESRCH"):
                raise ProfileError(flag_path, "%s cannot be set in a profile, the runtime sets it "
                                              "itself" % _show(name))
            if name not in FLAGS:
                raise ProfileError(flag_path, "unknown flag %s" % _show(name))
            if name in names:
                self.warn(flag_path, "duplicate flag %s" % _show(name))
                continue
            names.append(name)
        return tuple(names)

    def listener(self) -> tuple:
        path_key, meta_key = self.path("listenerPath"), self.path("listenerMetadata")
        listener_path = self.profile.get("listenerPath")
        metadata = self.profile.get("listenerMetadata")
        if listener_path is not None:
            _string(listener_path, path_key)
        if metadata is not None:
            _string(metadata, meta_key)
        if metadata and not listener_path:
            self.warn(meta_key, "ignored: set without listenerPath (the runtime-spec forbids it)")
        return listener_path or None, metadata or None

    # -- syscalls[]

    # Each part first tests for the well-formed common case with C-level checks (a profile has
    # dozens of entries and hundreds of names) and builds JSON paths only when it has
    # something to report.

    def entry(self, obj, path: str) -> _Entry:
        if not isinstance(obj, dict):
            _object(obj, path)      # raises
        self.check_keys(obj, path, _ENTRY_KEYS)
        names, names_path, legacy = self.entry_names(obj, path)
        action = self.entry_action(obj, path, names, names_path, legacy)
        args = obj.get("args")
        conds, split = ((), False) if args is None else self.entry_args(args, path)
        if obj.get("comment") is not None:
            _string(obj["comment"], _key(path, "comment"))
        includes, excludes = obj.get("includes"), obj.get("excludes")
        if includes is not None:
            includes = self.entry_filter(includes, f"{path}.includes")
        if excludes is not None:
            excludes = self.entry_filter(excludes, f"{path}.excludes")
        return _new_tuple(_Entry, (path, names, names_path, legacy, action, conds, split,
                                   includes, excludes))

    def entry_names(self, obj: dict, path: str) -> tuple:
        """(names, the JSON path of the list, False), or for moby's legacy single `name`
        ((name,), its path, True)."""
        name, names = obj.get("name"), obj.get("names")
        list_path = _key(path, "names")
        if (names.__class__ is list and name is None and _ONLY_STR.issuperset(map(type, names))
                and names and "" not in names):
            return tuple(names), list_path, False       # the common case, checked in C
        if name is not None and names is not None:
            raise ProfileError(path, 'both "name" and "names" given')
        if name is not None:
            name_path = _key(path, "name")
            if _string(name, name_path) == "":
                raise ProfileError(name_path, 'empty string is not a valid syscall name ""')
            return (name,), name_path, True
        if names is None:
            _require(obj, "names", path)    # a case-only near miss makes a better message
            raise ProfileError(list_path, "missing")
        _strings(names, list_path)
        if not names:
            raise ProfileError(list_path, "no syscall names (need at least one) []")
        if "" in names:
            raise ProfileError(_item(list_path, names.index("")),
                               'empty string is not a valid syscall name ""')
        return tuple(names), list_path, False

    def entry_action(self, obj: dict, path: str, names: tuple, names_path: str,
                     legacy: bool) -> int:
        name = obj.get("action")
        kind = ACTIONS.get(name) if name.__class__ is str else None
        if (kind is not None and kind != RET_USER_NOTIF and obj.get("errnoRet") is None
                and obj.get("errno") in (None, "")):
            # the common case: no data given, so EPERM for the actions that carry one
            return kind | (EPERM if kind in (RET_ERRNO, RET_TRACE) else 0)
        action_path = _key(path, "action")
        name = _string(_require(obj, "action", path), action_path, "an action name")
        kind = _action_value(name, action_path)
        if kind == RET_USER_NOTIF and "write" in names:
            raise ProfileError(names_path if legacy else _item(names_path, names.index("write")),
                               'SCMP_ACT_NOTIFY on "write" is refused, as runc does (the runtime '
                               'writes after loading the filter) "write"')
        return kind | self.action_data(kind, name, obj, path, "errnoRet", "errno")

    def entry_args(self, args, path: str) -> tuple:
        """(conditions, split) of a non-null `args`. runc: if any index repeats, every condition
        becomes its own rule (OR); otherwise one rule with all of them (AND). Seven or more args
        always repeat an index (only 0..5 are valid), so they always split, as in runc."""
        args_path = _key(path, "args")
        conds = tuple([self.arg(raw, args_path, index)
                       for index, raw in enumerate(_list(args, args_path,
                                                         "a list of argument objects"))])
        indexes = {cond.index for cond in conds}
        return conds, len(indexes) != len(conds)

    def arg(self, obj, args_path: str, position: int) -> Cond:
        if isinstance(obj, dict) and _ARG_KEYS.issuperset(obj):
            index, value, op_name = obj.get("index"), obj.get("value"), obj.get("op")
            two = obj.get("valueTwo")
            op = OPS.get(op_name) if op_name.__class__ is str else None
            if (index.__class__ is int and 0 <= index <= 5 and value.__class__ is int
                    and 0 <= value <= U64_MAX and op is not None
                    and (two is None or (two.__class__ is int and two == 0))
                    and not getattr(obj, "duplicates", ())):
                return _cond(index, op, value, 0)       # valueTwo 0: nothing to warn about
        path = _item(args_path, position)
        obj = _object(obj, path)
        self.check_keys(obj, path, _ARG_KEYS)
        index_path = _key(path, "index")
        index = _uint(_require(obj, "index", path), index_path, limit=None)
        if index > 5:
            raise ProfileError(index_path, "%d is out of range (0..5)" % index)
        value = _uint(_require(obj, "value", path), _key(path, "value"))
        two_path = _key(path, "valueTwo")
        value_two = 0 if obj.get("valueTwo") is None else _uint(obj["valueTwo"], two_path)
        op_path = _key(path, "op")
        op_name = _string(_require(obj, "op", path), op_path, "an operator name")
        if op_name not in OPS:
            raise ProfileError(op_path, "unknown operator %s" % _show(op_name))
        op = OPS[op_name]
        if op == OPS["SCMP_CMP_MASKED_EQ"]:
            if value_two & ~value:
                self.warn(two_path, "%#x has bits outside the mask %#x; they are ignored, as "
                                    "libseccomp does" % (value_two, value))
            value_two &= value
        elif value_two:
            self.warn(two_path, "%d ignored: only SCMP_CMP_MASKED_EQ uses valueTwo" % value_two)
            value_two = 0
        return _cond(index, op, value, value_two)

    def entry_filter(self, filt, path: str) -> _Filter:
        """includes / excludes. podman's own filter has only caps and arches (a minKernel there is
        an unknown key Go ignores, so podman keeps such rules whatever the kernel); we apply
        minKernel in every format, as moby does."""
        if not isinstance(filt, dict):
            _object(filt, path)     # raises
        self.check_keys(filt, path, _FILTER_KEYS)
        caps = self.filter_names(filt.get("caps"), path, "caps", _CAPABILITY_SET,
                                 "unknown capability %s, it never matches")
        arches = self.filter_names(filt.get("arches"), path, "arches", _NATIVE_ARCH_NAMES,
                                   "unknown architecture name %s (expected a name such as "
                                   "amd64, x86, arm64, arm), it never matches")
        min_kernel = filt.get("minKernel")
        if min_kernel is not None:
            min_kernel = _min_kernel(min_kernel, f"{path}.minKernel")
        return _new_tuple(_Filter, (path, caps, arches, min_kernel))

    def filter_names(self, value, filter_path: str, key: str, known: frozenset,
                     unknown: str) -> tuple:
        """A filter's caps or arches: a list of strings, a warning for each unknown one."""
        if value is None:
            return ()
        if (value.__class__ is list and _ONLY_STR.issuperset(map(type, value))
                and known.issuperset(value)):
            return tuple(value)     # the common case, checked in C
        path = f"{filter_path}.{key}"
        names = _strings(value, path)
        for index, name in enumerate(names):
            if name not in known:
                self.warn(_item(path, index), unknown % _show(name))
        return tuple(names)

    # -- phase 3: moby's include/exclude resolution

    def included(self, entry: _Entry) -> bool:
        native = _MOBY_NATIVE[self.host]
        excludes, includes = entry.excludes, entry.includes
        if excludes is not None:
            if native in excludes.arches:
                return False
            if not self.caps.isdisjoint(excludes.caps):
                return False
            if excludes.min_kernel is not None and self.kernel_at_least(excludes):
                return False
        if includes is not None:
            if includes.arches and native not in includes.arches:
                return False
            if not self.caps.issuperset(includes.caps):
                return False
            if includes.min_kernel is not None and not self.kernel_at_least(includes):
                return False
        return True

    def kernel_at_least(self, filt: _Filter) -> bool:
        if not isinstance(self.kernel, tuple):
            raise ProfileError(_key(filt.path, "minKernel"), "cannot be compared: the kernel "
                               "release %s does not start with <major>.<minor>"
                               % _show(self.kernel))
        return self.kernel >= filt.min_kernel

    # -- phase 4: runc's conversion

    def convert(self, entries: list, default: int) -> tuple:
        """(rules, stub_names, the first NOTIFY rule or None). stub_names lists every known name
        of every surviving entry, default-equal ones included (runc's ENOSYS cut-off counts
        them)."""
        rules = []
        stub_names = []         # with repeats, dropped at the end
        notify = None           # the first SCMP_ACT_NOTIFY rule
        for entry in entries:
            names, action, conds = entry.names, entry.action, entry.conds
            indexes = entry.name_indexes()
            if not syscalls.ALL_NAMES.issuperset(names):
                names, indexes = self.known_names(entry)
            stub_names.extend(names)
            if action == default:
                if names:
                    self.warn(entry.path, "action %s equals the default action, the entry's "
                                          "rules are dropped (as runc does)"
                              % action_name(action))
                continue
            if not names:
                continue
            where = entry.names_path
            if entry.split:
                new = [_new_tuple(Rule, (name, action, (cond,), where, index))
                       for name, index in zip(names, indexes) for cond in conds]
            else:
                new = list(map(_new_tuple, repeat(Rule),
                               zip(names, repeat(action), repeat(conds), repeat(where), indexes)))
            if notify is None and action & 0xFFFF0000 == RET_USER_NOTIF:
                notify = new[0]
            rules.extend(new)
        return rules, list(dict.fromkeys(stub_names)), notify     # first-seen order

    def known_names(self, entry: _Entry) -> tuple:
        """(names, their indexes) without the names no architecture knows, with a warning for
        each."""
        kept = []
        for name, index in zip(entry.names, entry.name_indexes()):
            if syscalls.known(name):
                kept.append((name, index))
            else:
                self.warn(entry.name_path(index), "unknown syscall %s, skipped (as runc does)"
                          % _show(name))
        return tuple(name for name, _ in kept), [index for _, index in kept]

    def check_notify(self, notify: Optional[Rule], listener_path: Optional[str]) -> None:
        if notify is not None and listener_path is None:
            self.warn(notify.path, "SCMP_ACT_NOTIFY without listenerPath: runc would refuse the "
                                   "profile; the sandbox runner answers these notifications "
                                   "itself")
        if notify is None and listener_path is not None:
            self.warn(self.path("listenerPath"), "ignored: no rule uses SCMP_ACT_NOTIFY (as runc "
                                                 "does)")

    def check_wait_killable(self, flags: Optional[tuple],
                            notify: Optional[Rule]) -> Optional[tuple]:
        """WAIT_KILLABLE_RECV only means something with a listener; the kernel rejects it
        without NEW_LISTENER, which is set only when a rule uses NOTIFY."""
        flag = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
        if flags is None or flag not in flags:
            return flags
        if notify is not None:
            return flags
        self.warn(_item(self.path("flags"), list(flags).index(flag)),
                  "%s dropped: no rule uses SCMP_ACT_NOTIFY (the kernel refuses it without a "
                  "listener)" % flag)
        return tuple(f for f in flags if f != flag)


# ------------------------------------------------------------------------------------------------
# Public entry point


def _kernel_arg(kernel):
    """(major, minor), or the release string when the running kernel's cannot be parsed (an
    error only if some minKernel must be compared)."""
    if kernel is None:
        release = os.uname().release
        try:
            return parse_release(release)
        except ValueError:
            return release
    if isinstance(kernel, str):
        return parse_release(kernel)
    major, minor = kernel
    return int(major), int(minor)


def load(source, *, host_arch: Optional[str] = None, caps=None, kernel=None,
         strict: bool = False, enosys_stub: bool = True,
         args_like_libseccomp: bool = False) -> Optional[Policy]:
    """Load a seccomp profile and resolve it for one host and capability set.

    source: a path (str or pathlib.Path), a dict, or JSON text (a str starting with "{").
    host_arch: "x86_64", "x86", "aarch64", "arm" (or a machine name such as "i686", "armv7l");
        default: this machine.
    caps: capability names (or a --caps string) the includes/excludes are resolved with;
        default: Docker's default set when running as root, none otherwise.
    kernel: (major, minor) or a release string for minKernel; default: the running kernel.
    strict: every warning is an error.
    enosys_stub, args_like_libseccomp: passed on to the Policy (see sandbox.policy).

    Returns None when the profile disables seccomp (no defaultAction and no syscalls), as moby
    and runc do. Raises ProfileError (a ValueError) for anything that cannot be loaded.
    """
    host = normalize_arch(host_arch if host_arch is not None else platform.machine())
    cap_names = default_caps() if caps is None else parse_caps(caps)
    doc, source_name = _read_source(source)
    profile, root = _select_profile(doc, source_name)
    loader = _Loader(profile, root, host=host, caps=cap_names, kernel=_kernel_arg(kernel),
                     strict=strict)
    policy = loader.run()
    if policy is not None:
        policy.enosys_stub = enosys_stub
        policy.args_like_libseccomp = args_like_libseccomp
        policy.source = source_name
    return policy
