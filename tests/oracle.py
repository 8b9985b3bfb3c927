"""The reference oracle: what Docker/runc + libseccomp decide for a `sandbox.policy.Policy`.

`reference_filter(policy)` builds the filter the way runc's `InitSeccomp` does, through pyseccomp
(ctypes over the system libseccomp, 2.5.4 here), and exports libseccomp's BPF.
`reference_decide(policy, audit_arch, nr, args)` then applies runc's -ENOSYS stub
(patchbpf/enosys_linux.go, profile-semantics.md section 4.4) and runs libseccomp's program through
the independent Python interpreter in `bpfsim`.

`model_decide` is a third opinion: the same decision derived in plain Python from the documented
libseccomp/runc rules (profile-semantics.md sections 3-4, bpf-layout.md sections 1, 3 and 6),
without BPF. It raises `Conflict` where libseccomp's answer depends on its internal tree order (a
call matching several conditional rules of one syscall with different actions). The differential
tests use it to classify skipped cases and check it against the BPF answer, so a disagreement
between our compiler and libseccomp can be told apart from a bug in libseccomp itself.

Nothing here imports our compiler: the oracle only depends on `sandbox.policy` (plain data).
"""
from __future__ import annotations

import ctypes
import dataclasses
import errno
import functools
import os
import select
import signal
import struct
import tempfile
import threading
import time

import pyseccomp

import bpfsim

NATIVE = "x86_64"          # the arch libseccomp was built for on this machine (checked below)
X32_BIT = 0x40000000
ENOSYS = 38
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

RET_ALLOW = 0x7FFF0000
RET_LOG = 0x7FFC0000
RET_TRACE = 0x7FF00000
RET_ERRNO = 0x00050000
RET_KILL_THREAD = 0x00000000
RET_ENOSYS = RET_ERRNO | ENOSYS

AUDIT = {
    "x86_64": 0xC000003E,
    "x86": 0x40000003,
    "x32": 0xC000003E,       # x32 shares x86_64's AUDIT_ARCH; its numbers carry X32_BIT
    "aarch64": 0xC00000B7,
    "arm": 0x40000028,
}
TOKEN = {
    "x86_64": pyseccomp.Arch.X86_64,
    "x86": pyseccomp.Arch.X86,
    "x32": pyseccomp.Arch.X32,
    "aarch64": pyseccomp.Arch.AARCH64,
    "arm": pyseccomp.Arch.ARM,
}
# libseccomp compares both words only on these ABIs (x32 is 32-bit for libseccomp, arch-x32.c).
LIB_IS64 = {"x86_64": True, "x86": False, "x32": False, "aarch64": True, "arm": False}

# Operators (libseccomp enum scmp_compare, sandbox.policy.OPS).
NE, LT, LE, EQ, GE, GT, MASKED_EQ = 1, 2, 3, 4, 5, 6, 7

# x86 socketcall/ipc multiplexing (libseccomp 2.5.4 src/arch-x86.c x86_rule_add): a rule for a
# socket-family call (pseudo number -101..-120) also becomes socketcall(a0 == -pnr % 100, other
# conditions kept), one for an ipc call (-201..-224) ipc(a0 == -pnr % 200); the direct syscall (if
# i386 has one) keeps the original conditions. Direct numbers from the i386 kernel table; checked
# against libseccomp's own output by tests/test_oracle.py.
X86_SOCKETCALL = 102
X86_IPC = 117
X86_SOCKET_DIRECT = {
    "socket": 359, "socketpair": 360, "bind": 361, "connect": 362, "listen": 363, "accept4": 364,
    "getsockopt": 365, "setsockopt": 366, "getsockname": 367, "getpeername": 368, "sendto": 369,
    "sendmsg": 370, "recvfrom": 371, "recvmsg": 372, "shutdown": 373, "recvmmsg": 337,
    "sendmmsg": 345,
}
X86_IPC_DIRECT = {
    "semget": 393, "semctl": 394, "shmget": 395, "shmctl": 396, "shmat": 397, "shmdt": 398,
    "msgget": 399, "msgsnd": 400, "msgrcv": 401, "msgctl": 402,
}

_lib = pyseccomp._libseccomp
_lib.seccomp_syscall_resolve_name_arch.argtypes = (ctypes.c_uint32, ctypes.c_char_p)
_lib.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
_lib.seccomp_syscall_resolve_num_arch.argtypes = (ctypes.c_uint32, ctypes.c_int)
_lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_lib.seccomp_version.restype = ctypes.POINTER(_Version)
_v = _lib.seccomp_version().contents
LIBSECCOMP_VERSION = (_v.major, _v.minor, _v.micro)
assert pyseccomp.system_arch() == TOKEN[NATIVE], "the oracle assumes an x86_64 libseccomp"


class Refused(Exception):
    """runc would refuse this policy: libseccomp returned an error while adding a rule."""

    def __init__(self, errno_value: int, rule_index: int, rule, message: str):
        super().__init__(message)
        self.errno = errno_value
        self.rule_index = rule_index
        self.rule = rule


class Conflict(Exception):
    """The call matches conditional rules of one syscall with different actions: libseccomp's
    answer depends on its tree order, ours on the most-restrictive rule (documented skip)."""

    def __init__(self, actions, rules):
        super().__init__("call matches conditional rules with actions %s" %
                         ", ".join("%#x" % a for a in actions))
        self.actions = actions
        self.rules = rules


# --- syscall names -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def lib_resolve(arch: str, name: str) -> int:
    """libseccomp's number for `name` on `arch` (x32 numbers include X32_BIT); negative pseudo
    numbers for names of the table absent on that ABI; -1 for names libseccomp does not know."""
    return _lib.seccomp_syscall_resolve_name_arch(TOKEN[arch], name.encode())


@functools.lru_cache(maxsize=None)
def lib_name(arch: str, nr: int):
    """libseccomp's name for number `nr` on `arch`, or None."""
    ptr = _lib.seccomp_syscall_resolve_num_arch(TOKEN[arch], ctypes.c_int32(nr & M32).value)
    if not ptr:
        return None
    name = ctypes.string_at(ptr).decode()
    pyseccomp._libc.free(ptr)
    return name


def known_to_libseccomp(name: str) -> bool:
    """runc's test: names `seccomp_syscall_resolve_name` cannot resolve are skipped."""
    return lib_resolve(NATIVE, name) != -1


def _filter_arches(policy):
    arches = list(policy.arches)
    host = getattr(policy, "host_arch", NATIVE) or NATIVE
    if host not in arches:
        arches.insert(0, host)   # libseccomp / runc always include the native arch
    return arches


def is_allow_action(action: int) -> bool:
    """runc patchbpf isAllowAction: ALLOW, LOG and TRACE get no ENOSYS stub."""
    kind = action & 0xFFFF0000
    return kind in (RET_ALLOW, RET_LOG) or (action & 0xFFF00000) == RET_TRACE


def libseccomp_max_nr(policy, arch: str):
    """runc's findLastSyscalls for one libseccomp arch: the largest number (x32: with X32_BIT)
    among all names the profile lists, as libseccomp resolves them; None if there is none."""
    largest = 0
    for name in policy.stub_names:
        n = lib_resolve(arch, name)
        if n > largest:
            largest = n
    return largest or None


def stub_sections(policy):
    """{audit_arch: {arch_name: max_nr}} as runc's stub is generated, or {} without a stub."""
    if not policy.enosys_stub or is_allow_action(policy.default_action):
        return {}
    sections = {}
    for arch in _filter_arches(policy):
        top = libseccomp_max_nr(policy, arch)
        if top is not None:
            sections.setdefault(AUDIT[arch], {})[arch] = top
    return sections


def stub_decide(sections, audit_arch: int, nr: int):
    """RET_ENOSYS if runc's stub answers, else None (fall through into libseccomp's filter)."""
    maxima = sections.get(audit_arch)
    if not maxima:
        return None
    nr &= M32
    if audit_arch == AUDIT["x86_64"]:
        key = "x32" if nr & X32_BIT else "x86_64"
        if key not in maxima:
            return None      # the other ABI of the pair is not configured: skip the stub
        return RET_ENOSYS if nr > maxima[key] else None
    top = next(iter(maxima.values()))
    return RET_ENOSYS if nr > top else None


# --- building libseccomp's filter the way runc does ----------------------------------------------

class OracleHang(Refused):
    """libseccomp did not return within BUILD_TIMEOUT seconds. libseccomp 2.5.4 loops forever in
    seccomp_rule_add for e.g. clone {a1 == 5 && a0 != 7 -> LOG} then {a1 == 1<<32 && a0 != 7 ->
    LOG} (x86_64; the other order returns), so runc would hang too: nothing to compare."""


BUILD_TIMEOUT = float(os.environ.get("ORACLE_BUILD_TIMEOUT", "5"))
# Build libseccomp filters in a forked child (default) so a libseccomp hang or crash cannot take
# the test run with it; ORACLE_FORK=0 builds in-process (faster to debug).
BUILD_IN_CHILD = os.environ.get("ORACLE_FORK", "1") != "0"
_BUILD_LOG = os.environ.get("ORACLE_BUILD_LOG")      # append every build's arguments (debugging)


def _libseccomp_export(default_action, badarch, arches, optimize, calls, progress=None):
    """Build and export one filter: runc's InitSeccomp sequence. `calls` is [(rule_index,
    action, nr, [(index, op, a, b)])]; progress(rule_index) is called before each rule is added.
    Returns the BPF bytes; raises Refused."""
    try:
        f = pyseccomp.SyscallFilter(default_action)
        if badarch != RET_KILL_THREAD:           # runc never changes it; a Policy may
            f.set_attr(pyseccomp.Attr.ACT_BADARCH, badarch)
    except OSError as exc:
        raise Refused(exc.errno, -1, None, "libseccomp refused default/bad-arch action %#x/%#x"
                      % (default_action, badarch)) from None
    for arch in arches:
        if arch != NATIVE:
            f.add_arch(TOKEN[arch])
    if NATIVE not in arches:
        f.remove_arch(pyseccomp.Arch.NATIVE)
    if optimize != 1:
        f.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, optimize)
    for i, action, nr, conds in calls:
        if progress is not None:
            progress(i)
        try:
            f.add_rule(action, nr, *[pyseccomp.Arg(*c) for c in conds])
        except OSError as exc:
            raise Refused(exc.errno, i, None, "") from None
    with tempfile.TemporaryFile() as tmp:
        f.export_bpf(tmp)
        tmp.seek(0)
        return tmp.read()


def _in_child(fn, args, timeout):
    """fn(*args, progress=...) in a forked child: returns its bytes result or raises Refused /
    OracleHang (with the index of the rule being added) / RuntimeError. The child touches only
    libseccomp and a pipe, then _exit()s. Messages on the pipe: a type byte, a u32 length, data."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # child
        code = 0
        try:
            os.close(r)

            def send(kind, data):
                view = memoryview(kind + struct.pack("<I", len(data)) + data)
                while view:
                    view = view[os.write(w, view):]

            try:
                result = fn(*args, progress=lambda i: send(b"I", struct.pack("<i", i)))
                send(b"P", result)
            except Refused as exc:
                send(b"R", struct.pack("<ii", exc.errno, exc.rule_index))
            except BaseException as exc:           # noqa: BLE001 - reported to the parent
                send(b"E", repr(exc).encode(errors="replace"))
        except BaseException:                      # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    buf = b""
    current = -1
    deadline = time.monotonic() + timeout
    try:
        while True:
            while len(buf) >= 5 and len(buf) >= 5 + struct.unpack_from("<I", buf, 1)[0]:
                kind, size = buf[:1], struct.unpack_from("<I", buf, 1)[0]
                data, buf = buf[5:5 + size], buf[5 + size:]
                if kind == b"I":
                    current = struct.unpack("<i", data)[0]
                elif kind == b"P":
                    return data
                elif kind == b"R":
                    raise Refused(*struct.unpack("<ii", data), None, "")
                else:
                    raise RuntimeError("libseccomp child failed: %s" % data.decode(errors="replace"))
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise OracleHang(errno.ETIMEDOUT, current, None,
                                 "libseccomp did not return within %gs" % timeout)
            chunk = os.read(r, 1 << 16)
            if not chunk:
                raise RuntimeError("libseccomp child died (%d bytes pending)" % len(buf))
            buf += chunk
    finally:
        os.close(r)
        os.waitpid(pid, 0)


class Reference:
    """libseccomp's filter for one policy plus runc's stub data."""

    def __init__(self, policy, optimize=None):
        self.policy = policy
        self.default_action = policy.default_action
        self.arches = _filter_arches(policy)
        self.refused = None
        self.skipped_unknown = []    # rule indexes runc skips (name unknown to libseccomp)
        self.skipped_default = []    # rule indexes runc skips (action == default)
        # runc: "if len(config.Syscalls) > 32 { filter.SetOptimize(2) }", one entry per name.
        if optimize is None:
            optimize = 2 if max(len(policy.rules), len(policy.stub_names)) > 32 else 1
        self.optimize = optimize
        self.prog = None
        self.insns = None
        self.sections = stub_sections(policy)
        self.ambiguous = frozenset()
        calls = []
        for i, rule in enumerate(policy.rules):
            if rule.action == policy.default_action:     # runc: skip redundant rules
                self.skipped_default.append(i)
                continue
            nr = lib_resolve(NATIVE, rule.name)
            if nr == -1:                                 # runc: unknown names are ignored
                self.skipped_unknown.append(i)
                continue
            calls.append((i, rule.action, nr,
                          [(c.index, c.op, c.value & M64, c.value_two & M64) for c in rule.conds]))
        build_args = (policy.default_action, getattr(policy, "badarch_action", RET_KILL_THREAD),
                      self.arches, optimize, calls)
        if _BUILD_LOG:
            with open(_BUILD_LOG, "a") as log:
                log.write(repr(build_args) + "\n")
        try:
            if BUILD_IN_CHILD:
                self.prog = _in_child(_libseccomp_export, build_args, BUILD_TIMEOUT)
            else:
                self.prog = _libseccomp_export(*build_args)
            self.insns = bpfsim.decode(self.prog)
            self.ambiguous = ambiguous_compares(self.insns)
        except Refused as exc:
            if exc.rule_index >= 0:
                rule = policy.rules[exc.rule_index]
                what = ("did not return adding" if isinstance(exc, OracleHang) else "refused")
                exc = (OracleHang if isinstance(exc, OracleHang) else Refused)(
                    exc.errno, exc.rule_index, rule, "libseccomp %s rule %d (%s %s): %s" % (
                        what, exc.rule_index, rule.name, [c.describe() for c in rule.conds],
                        errno.errorcode.get(exc.errno, exc.errno)))
            elif not str(exc):
                exc = Refused(exc.errno, -1, None, "libseccomp refused the default action %#x: "
                              "%s" % (policy.default_action,
                                      errno.errorcode.get(exc.errno, exc.errno)))
            self.refused = exc

    def decide(self, audit_arch: int, nr: int, args=(0,) * 6) -> int:
        if self.refused is not None:
            raise self.refused
        ret = stub_decide(self.sections, audit_arch, nr)
        if ret is not None:
            return ret
        ret, _ = bpfsim.run_decoded(self.insns, bpfsim.pack_data(audit_arch, nr, args))
        return ret

    def const_allow(self, audit_arch: int, nr: int) -> bool:
        """The kernel's action-cache verdict for runc's whole program (stub + libseccomp): the
        stub only uses cacheable instructions, so it is libseccomp's verdict unless the stub
        answers ENOSYS."""
        if self.refused is not None:
            raise self.refused
        if stub_decide(self.sections, audit_arch, nr) is not None:
            return False
        return bpfsim.const_allow(self.insns, audit_arch, nr)[0]

    def unmerged_decide(self, audit_arch: int, nr: int, args=(0,) * 6):
        """The decision with libseccomp compiling each rule on its own (no tree merging).

        Which rules match comes from one single-rule libseccomp filter per rule (run through
        bpfsim); the documented precedence is then applied (first unconditional rule, else the
        matching conditional rules' common action, else the default; Conflict if they differ).
        Where this agrees with model_decide but the merged filter does not, libseccomp's merging
        of the syscall's chains is at fault (2.6.1 fixed such a bug, GHSA-4q85-33p6-j5g6)."""
        policy = self.policy
        ret = stub_decide(self.sections, audit_arch, nr)
        if ret is not None:
            return ret
        arch = lib_arch_for(policy, audit_arch, nr)
        if arch is None:
            return getattr(policy, "badarch_action", RET_KILL_THREAD)
        is64 = LIB_IS64[arch]
        matched = []
        for i, action, conds in model(policy).placements(arch).get(nr & M32, ()):
            if all(lib_cond_dropped(c, is64) for c in conds):
                return action
            single = dataclasses.replace(policy, rules=(policy.rules[i],), enosys_stub=False,
                                         stub_names=(policy.rules[i].name,))
            if reference(single).decide(audit_arch, nr, args) == action:
                matched.append((i, action))
        actions = sorted({a for _, a in matched})
        if len(actions) > 1:
            raise Conflict(actions, [i for i, _ in matched])
        return matched[0][1] if matched else policy.default_action

    def hits_acc_bug(self, audit_arch: int, nr: int, args=(0,) * 6) -> bool:
        """True if libseccomp's program, on this call, runs a compare whose accumulator may hold a
        word other than the one it was generated for (see ambiguous_compares): its answer is then
        an artefact of libseccomp 2.5.4's accumulator tracking."""
        if not self.ambiguous or self.refused is not None:
            return False
        if stub_decide(self.sections, audit_arch, nr) is not None:
            return False
        trace = []
        bpfsim.run_decoded(self.insns, bpfsim.pack_data(audit_arch, nr, args), trace)
        return not self.ambiguous.isdisjoint(trace)


def ambiguous_compares(insns):
    """pcs of conditional jumps whose accumulator may hold different words on different paths
    (or still the arch word where a syscall number or argument is compared).

    libseccomp 2.5.4 tracks which word the accumulator holds while it lays out a filter, and gets
    it wrong in two ways observed here: it can drop the `ld [0]` at the start of an arch block (an
    i386 block whose only entries are socketcall/ipc companions of calls i386 lacks, e.g.
    `accept`), so syscall numbers are compared with the arch word; and when it merges argument
    chains of one syscall it can jump to a node that expects one argument word from a path that
    loaded another (e.g. write: {a1 >= 0x14 && a0 > 5 -> E1} + {a1 >= 0x100 && a0 <= 2 -> E2}:
    `jgt #5` meant for a0 also runs on a1's low word, so (0, 0xff) gets E1). Libseccomp's generated
    code compares each word in exactly one place per path, so a compare reachable with two sources
    is the bug. A forward abstract interpretation of the load offset in the accumulator finds
    those jumps (programs are forward-only DAGs)."""
    audits = set(AUDIT.values())
    sources = [set() for _ in insns]
    sources[0].add(None)
    flagged = set()
    for pc, (code, jt, jf, k) in enumerate(insns):
        here = sources[pc]
        if not here:
            continue
        cls = code & 0x07
        if cls == bpfsim.BPF_RET:
            continue
        if code == bpfsim.BPF_LD | bpfsim.BPF_W | bpfsim.BPF_ABS:
            out = {k}
        elif cls == bpfsim.BPF_LD or (cls == bpfsim.BPF_MISC and code & 0xF8):
            out = {"other"}
        else:
            out = here            # ALU (and #mask) keeps the source; jumps, stores, tax keep A
        if cls == bpfsim.BPF_JMP:
            if code & 0xF0 == bpfsim.BPF_JA:
                targets = [pc + 1 + k]
            else:
                targets = [pc + 1 + jt, pc + 1 + jf]
                arch_dispatch = code & 0xF0 == bpfsim.BPF_JEQ and k in audits
                if len(here) > 1 or (4 in here and not arch_dispatch):
                    flagged.add(pc)
        else:
            targets = [pc + 1]
        for t in targets:
            if t < len(insns):
                sources[t] |= out
    return frozenset(flagged)


_cache = {}
_cache_lock = threading.Lock()


def reference(policy, optimize=None) -> Reference:
    """The cached Reference for `policy` (keyed by policy.digest() and the host arch)."""
    key = (policy.digest(), getattr(policy, "host_arch", NATIVE), optimize)
    with _cache_lock:
        ref = _cache.get(key)
    if ref is None:
        ref = Reference(policy, optimize)
        with _cache_lock:
            if len(_cache) > 4096:
                _cache.clear()
            _cache[key] = ref
    return ref


def reference_filter(policy) -> bytes:
    """libseccomp's exported BPF for `policy`, built as runc builds it (raises Refused)."""
    ref = reference(policy)
    if ref.refused is not None:
        raise ref.refused
    return ref.prog


def reference_decide(policy, audit_arch: int, nr: int, args=(0,) * 6) -> int:
    """runc + libseccomp's return value for one call (raises Refused)."""
    return reference(policy).decide(audit_arch, nr, tuple(args))


# --- the same decision in plain Python (libseccomp's documented semantics) -----------------------

def lib_cond_matches(cond, arg: int, is64: bool) -> bool:
    """One condition as libseccomp compiles it: unsigned compare; on 32-bit ABIs only the low
    words of argument, datum and mask; MASKED_EQ datum pre-masked."""
    width = M64 if is64 else M32
    arg &= width
    if cond.op == MASKED_EQ:
        mask = cond.value & width
        return (arg & mask) == (cond.value_two & mask)
    datum = cond.value & width
    return {NE: arg != datum, LT: arg < datum, LE: arg <= datum, EQ: arg == datum,
            GE: arg >= datum, GT: arg > datum}[cond.op]


def lib_cond_dropped(cond, is64: bool) -> bool:
    """libseccomp drops a MASKED_EQ whose mask is zero (in the compared width) as a tautology; a
    rule whose conditions are all dropped becomes unconditional (observed with 2.5.4)."""
    return cond.op == MASKED_EQ and (cond.value & (M64 if is64 else M32)) == 0


class _Cond:
    """A condition with its index replaced (socketcall/ipc companions)."""

    def __init__(self, index, op, value, value_two=0):
        self.index, self.op, self.value, self.value_two = index, op, value, value_two


def _rule_placements(policy, arch: str):
    """{nr: [(rule_index, action, conds)]} of the rules libseccomp puts on `arch`, in insertion
    order, with runc's skips applied and the x86 socketcall/ipc companions generated."""
    table = {}
    for i, rule in enumerate(policy.rules):
        if rule.action == policy.default_action or not known_to_libseccomp(rule.name):
            continue
        n = lib_resolve(arch, rule.name)
        if arch == "x86" and (-120 <= n <= -101 or -224 <= n <= -201):
            if n >= -120:
                mux, call, direct = X86_SOCKETCALL, -n % 100, X86_SOCKET_DIRECT.get(rule.name)
            else:
                mux, call, direct = X86_IPC, -n % 200, X86_IPC_DIRECT.get(rule.name)
            conds = [c for c in rule.conds if c.index != 0] + [_Cond(0, EQ, call)]
            table.setdefault(mux, []).append((i, rule.action, conds))
            if direct is not None:
                table.setdefault(direct, []).append((i, rule.action, list(rule.conds)))
        elif n >= 0:
            table.setdefault(n & M32, []).append((i, rule.action, list(rule.conds)))
    return table


def applicable_rules(policy, arch: str, nr: int):
    """[(rule_index, action, conds)] libseccomp puts on (arch, nr), in insertion order."""
    return model(policy).placements(arch).get(nr & M32, [])


def lib_arch_for(policy, audit_arch: int, nr: int):
    """Which libseccomp arch block handles (audit_arch, nr); None means the bad-arch action."""
    arches = _filter_arches(policy)
    nr &= M32
    if audit_arch == AUDIT["x86_64"]:
        has64, has32 = "x86_64" in arches, "x32" in arches
        if has64 and has32:
            return "x32" if nr & X32_BIT else "x86_64"
        if has64:
            return "x86_64" if (nr < X32_BIT or nr == M32) else None
        if has32:
            return "x32" if nr >= X32_BIT else None
        return None
    for arch in arches:
        if AUDIT[arch] == audit_arch and arch != "x32":
            return arch
    return None


class Model:
    """The documented runc + libseccomp semantics for one policy, in plain Python."""

    def __init__(self, policy):
        self.policy = policy
        self.sections = stub_sections(policy)
        self._placements = {}

    def placements(self, arch):
        table = self._placements.get(arch)
        if table is None:
            table = self._placements[arch] = _rule_placements(self.policy, arch)
        return table

    def decide(self, audit_arch: int, nr: int, args=(0,) * 6):
        """(action, how, rule_index); how is 'stub', 'badarch', 'default' or 'rule'. Raises
        Conflict for the tree-order-dependent case."""
        policy = self.policy
        ret = stub_decide(self.sections, audit_arch, nr)
        if ret is not None:
            return ret, "stub", -1
        arch = lib_arch_for(policy, audit_arch, nr)
        if arch is None:
            return getattr(policy, "badarch_action", RET_KILL_THREAD), "badarch", -1
        is64 = LIB_IS64[arch]
        live = []
        for i, action, conds in self.placements(arch).get(nr & M32, ()):
            conds = [c for c in conds if not lib_cond_dropped(c, is64)]
            if not conds:                 # the first unconditional rule wins, whatever the order
                return action, "rule", i
            live.append((i, action, conds))
        matched = [(i, action) for i, action, conds in live
                   if all(lib_cond_matches(c, args[c.index], is64) for c in conds)]
        actions = sorted({a for _, a in matched})
        if len(actions) > 1:
            raise Conflict(actions, [i for i, _ in matched])
        if matched:
            return matched[0][1], "rule", matched[0][0]
        return policy.default_action, "default", -1


_models = {}


def model(policy) -> Model:
    key = (policy.digest(), getattr(policy, "host_arch", NATIVE))
    with _cache_lock:
        m = _models.get(key)
    if m is None:
        m = Model(policy)
        with _cache_lock:
            if len(_models) > 4096:
                _models.clear()
            _models[key] = m
    return m


def model_decide(policy, audit_arch: int, nr: int, args=(0,) * 6):
    """(action, how, rule_index) from the documented semantics (see Model.decide)."""
    return model(policy).decide(audit_arch, nr, tuple(args))


def truncate_args(args, mask: int):
    """args with the arguments whose bit is set in `mask` cut to their low 32 bits."""
    return tuple((a & M32) if mask >> i & 1 else a for i, a in enumerate(args))


__all__ = [
    "AUDIT", "Conflict", "LIBSECCOMP_VERSION", "NATIVE", "OracleHang", "RET_ENOSYS", "Reference",
    "Refused", "X32_BIT", "ambiguous_compares", "applicable_rules", "is_allow_action",
    "known_to_libseccomp", "lib_arch_for", "lib_name", "lib_resolve", "libseccomp_max_nr", "model",
    "model_decide", "reference", "reference_decide", "reference_filter", "stub_decide",
    "stub_sections", "truncate_args",
]

if os.environ.get("ORACLE_DEBUG"):
    print("oracle: libseccomp %d.%d.%d" % LIBSECCOMP_VERSION)
