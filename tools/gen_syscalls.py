#!/usr/bin/env python3
"""Generate csrc/syscalls/syscall_tables.c from a Linux kernel source tree.

Usage:
    python3 tools/gen_syscalls.py --kernel /opt/ksrc/linux-source-6.12 \\
        -o csrc/syscalls/syscall_tables.c

Python 3 standard library only; the output depends only on the kernel tree and
on the data in this file (it is deterministic: no dates, no host paths beyond
the command line that produced it).

What it produces (see csrc/syscalls/syscalls.h for the C API):

* One table per architecture, names and numbers exactly as seccomp_data.nr sees
  them:
    x86_64   arch/x86/entry/syscalls/syscall_64.tbl, ABIs common,64
    x86      arch/x86/entry/syscalls/syscall_32.tbl, ABI i386
    x32      arch/x86/entry/syscalls/syscall_64.tbl, ABIs common,x32, nr | 0x40000000
    aarch64  scripts/syscall.tbl (via arch/arm64/tools/syscall_64.tbl), ABIs from
             scripts/Makefile.asm-headers + arch/arm64/kernel/Makefile.syscalls
    arm      arch/arm/tools/syscall.tbl, ABIs common,eabi (EABI numbering), plus the
             ARM private calls __ARM_NR_* = 0x0f0000 + n from
             arch/arm/include/uapi/asm/unistd.h
  plus SUPPLEMENT below: syscalls added after the tree's version (up to 6.18).

* arg32: for the 64-bit ABIs (x86_64, aarch64) bit i is set when the native
  SYSCALL_DEFINEn of the row's ENTRY POINT declares argument i with a type of
  32 bits or less.  Definitions are scanned in every .c file outside arch/ (plus
  arch/x86 resp. arch/arm64).  When one entry point has several definitions
  (config branches) a bit is set only if all agree.  Unknown types count as
  64-bit.  For the 32-bit ABIs arg32 is 0x3f.

* sb_all_syscall_names: every name in any arch/**/syscall*.tbl or
  scripts/syscall.tbl, the ARM private calls, the supplement and EXTRA_KNOWN_NAMES.

A summary (counts, entry points without a definition, unrecognised types) is
printed to stderr for review.
"""

import argparse
import os
import re
import sys

X32_SYSCALL_BIT = 0x40000000
ARCH_ORDER = ["x86_64", "x86", "x32", "aarch64", "arm"]

# AUDIT_ARCH_* (include/uapi/linux/audit.h): EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
# x32 processes report AUDIT_ARCH_X86_64 too; they are told apart by the x32 bit in nr.
AUDIT_ARCH = {
    "x86_64": 0xC000003E,   # EM_X86_64 (62)  | 64BIT | LE
    "x86": 0x40000003,      # EM_386 (3)      | LE
    "x32": 0xC000003E,      # AUDIT_ARCH_X86_64
    "aarch64": 0xC00000B7,  # EM_AARCH64 (183)| 64BIT | LE
    "arm": 0x40000028,      # EM_ARM (40)     | LE
}
IS64 = {"x86_64": 1, "x86": 0, "x32": 0, "aarch64": 1, "arm": 0}
ARG32_32BIT_ABI = 0x3F

# ---------------------------------------------------------------------------
# Supplement: syscalls added after Linux 6.12, up to Linux 6.18.
#
# (name, kernel version, {arch: nr as in the .tbl (before the x32 bit)},
#  entry point, native SYSCALL_DEFINE argument types, source)
#
# Numbers and signatures were checked against the upstream patches that added
# them (the .tbl hunks for arch/x86/entry/syscalls/syscall_{32,64}.tbl,
# arch/arm/tools/syscall.tbl and scripts/syscall.tbl):
#   6.13  6140be90ec70 "fs/xattr: add *at family syscalls"           463..466
#   6.15  open_tree_attr (fs/namespace.c)                             467
#   6.17  "fs: introduce file_getattr and file_setattr syscalls"      468, 469
#   6.18  56101b69c919 "uprobes/x86: Add uprobe syscall to speed up
#         uprobe" (x86_64 syscall_64.tbl only, ABI common)            336
# A row is only added when the kernel tree given on the command line does not
# already have it; if the tree has it with another number, generation fails.
# ---------------------------------------------------------------------------
_ALL5 = ("x86_64", "x86", "x32", "aarch64", "arm")


def _same(nr, arches=_ALL5):
    return {a: nr for a in arches}


SUPPLEMENT = [
    # Linux 6.13: fs/xattr.c
    ("setxattrat", "6.13", _same(463), "sys_setxattrat",
     ["int", "const char __user *", "unsigned int", "const char __user *",
      "const struct xattr_args __user *", "size_t"],
     "6.13, commit 6140be90ec70 fs/xattr: add *at family syscalls"),
    ("getxattrat", "6.13", _same(464), "sys_getxattrat",
     ["int", "const char __user *", "unsigned int", "const char __user *",
      "struct xattr_args __user *", "size_t"],
     "6.13, commit 6140be90ec70 fs/xattr: add *at family syscalls"),
    ("listxattrat", "6.13", _same(465), "sys_listxattrat",
     ["int", "const char __user *", "unsigned int", "char __user *", "size_t"],
     "6.13, commit 6140be90ec70 fs/xattr: add *at family syscalls"),
    ("removexattrat", "6.13", _same(466), "sys_removexattrat",
     ["int", "const char __user *", "unsigned int", "const char __user *"],
     "6.13, commit 6140be90ec70 fs/xattr: add *at family syscalls"),
    # Linux 6.15: fs/namespace.c
    ("open_tree_attr", "6.15", _same(467), "sys_open_tree_attr",
     ["int", "const char __user *", "unsigned", "struct mount_attr __user *", "size_t"],
     "6.15, fs/namespace.c open_tree_attr"),
    # Linux 6.17: fs/file_attr.c
    ("file_getattr", "6.17", _same(468), "sys_file_getattr",
     ["int", "const char __user *", "struct file_attr __user *", "size_t", "unsigned int"],
     "6.17, fs: introduce file_getattr and file_setattr syscalls"),
    ("file_setattr", "6.17", _same(469), "sys_file_setattr",
     ["int", "const char __user *", "struct file_attr __user *", "size_t", "unsigned int"],
     "6.17, fs: introduce file_getattr and file_setattr syscalls"),
    # Linux 6.18: arch/x86/kernel/uprobes.c, SYSCALL_DEFINE0(uprobe).  The row is
    # `336 common uprobe sys_uprobe` in syscall_64.tbl, so x32 gets it as well.
    ("uprobe", "6.18", {"x86_64": 336, "x32": 336}, "sys_uprobe", [],
     "6.18, commit 56101b69c919 uprobes/x86: Add uprobe syscall to speed up uprobe"),
]

# Names libseccomp 2.5.4 resolves on some architecture that no kernel syscall
# table lists.  They are the ARM private calls, which this generator already
# takes from arch/arm/include/uapi/asm/unistd.h; kept here so the list stays
# complete if that parsing ever changes.
EXTRA_KNOWN_NAMES = ["breakpoint", "get_tls", "set_tls", "usr26", "usr32"]

# ---------------------------------------------------------------------------
# Argument types.
# ---------------------------------------------------------------------------
# Base C types (after dropping qualifiers).
BASE32 = {
    "char", "signed char", "unsigned char", "__signed__ char",
    "short", "short int", "signed short", "unsigned short", "unsigned short int",
    "__signed__ short",
    "int", "signed int", "signed", "unsigned int", "unsigned", "__signed__ int",
    "_Bool", "bool",
}
BASE64 = {
    "long", "long int", "signed long", "unsigned long", "unsigned long int",
    "long long", "long long int", "unsigned long long", "unsigned long long int",
    "__signed__ long long", "__signed__ long",
}
# Typedefs whose width the brief fixes; each is also resolved through the
# kernel headers and any disagreement is reported.
KNOWN32 = {
    "u32", "__u32", "s32", "__s32", "u16", "__u16", "s16", "__s16", "u8", "__u8",
    "s8", "__s8", "pid_t", "uid_t", "gid_t", "qid_t", "key_serial_t", "clockid_t",
    "timer_t", "mqd_t", "key_t", "rwf_t", "umode_t",
}
KNOWN64 = {
    "size_t", "ssize_t", "loff_t", "off_t", "u64", "__u64", "s64", "__s64",
    "aio_context_t", "old_sigset_t",
    # typedef struct __user_cap_*_struct { ... } __user *cap_user_*_t;
    "cap_user_header_t", "cap_user_data_t",
}
QUALIFIERS = re.compile(r"\b(const|volatile|__user|__force|register|__iomem|__kernel_)\b")


def strip_comments(text):
    """Remove C comments, keeping string and character literals intact."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(" " + "\n" * text.count("\n", i, j))
            i = j
        elif c == "/" and i + 1 < n and text[i + 1] == "/":
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n":  # unterminated (e.g. apostrophe in #error)
                    break
                j += 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def read_text(path):
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        return f.read()


def norm_type(t):
    t = QUALIFIERS.sub(" ", t)
    t = t.replace("__bitwise", " ")
    t = re.sub(r"\s*\*\s*", " * ", t)
    return " ".join(t.split())


class TypeResolver:
    """Resolves simple one-line typedefs found in the kernel headers."""

    def __init__(self, ksrc, arch_dirs, exclude_re=None):
        self.typedefs = {}  # name -> set of normalised base strings
        dirs = ["include/linux", "include/uapi/linux", "include/uapi/asm-generic",
                "include/asm-generic"]
        dirs += arch_dirs
        rx = re.compile(r"\btypedef\s+([^;{}()#]+?)\s*\b(\w+)\s*;")
        for d in dirs:
            full = os.path.join(ksrc, d)
            if not os.path.isdir(full):
                continue
            for fn in sorted(os.listdir(full)):
                if not fn.endswith(".h"):
                    continue
                if exclude_re and exclude_re.search(fn):
                    continue
                text = strip_comments(read_text(os.path.join(full, fn)))
                for m in rx.finditer(text):
                    base, name = m.group(1), m.group(2)
                    if "[" in base or "struct" in base.split() or "union" in base.split():
                        if "*" not in base:
                            continue
                    self.typedefs.setdefault(name, set()).add(norm_type(base))

    def width(self, t, depth=0):
        """32, 64 or None (unknown) for a normalised type string."""
        if "*" in t or "[" in t:
            return 64
        if t.startswith("enum "):
            return 32
        if t in BASE32:
            return 32
        if t in BASE64:
            return 64
        if depth > 12 or t not in self.typedefs:
            return None
        widths = {self.width(b, depth + 1) for b in self.typedefs[t]}
        if widths == {32}:
            return 32
        if None in widths and 64 not in widths:
            return None
        return 64


def classify(t, resolver, notes):
    """Width of one SYSCALL_DEFINE argument type: 32 or 64 (unknown => 64)."""
    nt = norm_type(t)
    if "*" in nt or "[" in nt:
        return 64
    if nt.startswith("enum "):
        return 32
    if nt in BASE32:
        return 32
    if nt in BASE64:
        return 64
    resolved = resolver.width(nt)
    if nt in KNOWN32:
        if resolved != 32:
            notes.setdefault("listed-32-but-headers-say", {})[nt] = resolved
        return 32
    if nt in KNOWN64:
        if resolved == 32:
            notes.setdefault("listed-64-but-headers-say", {})[nt] = resolved
        return 64
    if resolved == 32:
        notes.setdefault("resolved-32", set()).add(nt)
        return 32
    if resolved == 64:
        notes.setdefault("resolved-64", set()).add(nt)
        return 64
    notes.setdefault("unrecognised", set()).add(nt)
    return 64


# ---------------------------------------------------------------------------
# Syscall tables
# ---------------------------------------------------------------------------
def parse_tbl(path):
    """Rows (nr, abi, name, entry) of a syscall .tbl; entry may be None."""
    rows = []
    for line in read_text(path).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        f = line.split()
        if len(f) < 3:
            continue
        nr = int(f[0], 0)
        entry = f[3].split("/")[0] if len(f) > 3 else None
        rows.append((nr, f[1], f[2], entry))
    return rows


def select(rows, abis):
    return [r for r in rows if r[1] in abis]


def make_var_abis(ksrc):
    """ABI list for arm64's 64-bit table, read from the kbuild makefiles."""
    abis = []
    for rel in ("scripts/Makefile.asm-headers", "arch/arm64/kernel/Makefile.syscalls"):
        p = os.path.join(ksrc, rel)
        if not os.path.exists(p):
            continue
        for m in re.finditer(r"^\s*syscall_abis_64\s*\+?:?=\s*(.*)$", read_text(p), re.M):
            for a in re.split(r"[,\s]+", m.group(1).strip()):
                if a and a not in abis:
                    abis.append(a)
    if not abis:
        abis = ["common", "64", "renameat", "rlimit", "memfd_secret"]
    return abis


def arm64_table_path(ksrc):
    p = os.path.join(ksrc, "arch/arm64/tools/syscall_64.tbl")
    if os.path.exists(p):
        return p
    return os.path.join(ksrc, "scripts/syscall.tbl")


def parse_arm_private(ksrc):
    text = read_text(os.path.join(ksrc, "arch/arm/include/uapi/asm/unistd.h"))
    m = re.search(r"#define\s+__ARM_NR_BASE\s+\(__NR_SYSCALL_BASE\s*\+\s*(0x[0-9a-fA-F]+|\d+)\)", text)
    if not m:
        raise SystemExit("cannot find __ARM_NR_BASE in arch/arm/include/uapi/asm/unistd.h")
    base = int(m.group(1), 0)  # EABI: __NR_SYSCALL_BASE == 0
    out = []
    for m in re.finditer(r"#define\s+__ARM_NR_(\w+)\s+\(__ARM_NR_BASE\s*\+\s*(\d+)\)", text):
        out.append((m.group(1), base + int(m.group(2))))
    return out


def kernel_version(ksrc):
    text = read_text(os.path.join(ksrc, "Makefile"))
    v = {}
    for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL"):
        m = re.search(r"^%s\s*=\s*(\d*)" % k, text, re.M)
        v[k] = m.group(1) if m and m.group(1) else "0"
    return v["VERSION"], v["PATCHLEVEL"], v["SUBLEVEL"]


def vkey(s):
    return tuple(int(x) for x in s.split("."))


# ---------------------------------------------------------------------------
# SYSCALL_DEFINE scanning
# ---------------------------------------------------------------------------
DEFINE_RE = re.compile(r"(?<![A-Za-z0-9_])SYSCALL_DEFINE([0-6])\s*\(")
SKIP_TOP = {"arch", "tools", "Documentation", "samples", "scripts", "usr", "LICENSES",
            "debian", ".git"}


def split_top(s):
    parts, depth, cur = [], 0, []
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return [" ".join(p.split()) for p in parts]


def scan_defines(ksrc, rel_dirs, exclude_dirs=()):
    """{entry name: [ [type, ...], ... ]} from SYSCALL_DEFINEn in .c files."""
    defs = {}
    bad = []
    for rel in rel_dirs:
        root = os.path.join(ksrc, rel)
        for dirpath, dirnames, filenames in os.walk(root):
            reldir = os.path.relpath(dirpath, ksrc)
            dirnames[:] = sorted(d for d in dirnames
                                 if os.path.join(reldir, d) not in exclude_dirs
                                 and not (reldir == "." and d in SKIP_TOP))
            for fn in sorted(filenames):
                if not fn.endswith(".c"):
                    continue
                path = os.path.join(dirpath, fn)
                raw = read_text(path)
                if "SYSCALL_DEFINE" not in raw:
                    continue
                text = strip_comments(raw)
                for m in DEFINE_RE.finditer(text):
                    n = int(m.group(1))
                    # skip macro bodies (#define ... SYSCALL_DEFINEx(...))
                    ls = text.rfind("\n", 0, m.start()) + 1
                    if text[ls:m.start()].lstrip().startswith("#"):
                        continue
                    i, depth = m.end(), 1
                    while i < len(text) and depth:
                        if text[i] == "(":
                            depth += 1
                        elif text[i] == ")":
                            depth -= 1
                        i += 1
                    parts = split_top(text[m.end():i - 1])
                    where = "%s:%d" % (os.path.relpath(path, ksrc), text.count("\n", 0, m.start()) + 1)
                    if len(parts) != 1 + 2 * n or not re.match(r"^\w+$", parts[0]):
                        bad.append(where)
                        continue
                    types = [parts[1 + 2 * k] for k in range(n)]
                    defs.setdefault("sys_" + parts[0], []).append((types, where))
    return defs, bad


def merge(a, b):
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, []) + v
    return out


def arch_aliases(ksrc, prefix, rel_dir):
    """#define __arm64_sys_personality __arm64_sys_arm64_personality style aliases."""
    out = {}
    rx = re.compile(r"#define\s+%s(sys_\w+)\s+%s(sys_\w+)\b" % (prefix, prefix))
    root = os.path.join(ksrc, rel_dir)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.endswith((".c", ".h")):
                for m in rx.finditer(read_text(os.path.join(dirpath, fn))):
                    out[m.group(1)] = m.group(2)
    return out


def arg32_mask(entry, defs, aliases, resolver, notes, missing, arch):
    if entry is None or entry == "sys_ni_syscall":
        return 0
    target = aliases.get(entry, entry)
    cands = defs.get(target)
    if not cands:
        missing.append((arch, entry))
        return 0
    mask = 0x3F
    for types, _where in cands:
        m = 0
        for i, t in enumerate(types):
            if classify(t, resolver, notes) == 32:
                m |= 1 << i
        mask &= m
    return mask


# ---------------------------------------------------------------------------
def c_string(s):
    assert re.match(r"^[A-Za-z0-9_]+$", s), s
    return '"%s"' % s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kernel", required=True, help="kernel source tree")
    ap.add_argument("-o", "--output", required=True, help="output C file")
    args = ap.parse_args()
    ksrc = args.kernel.rstrip("/")
    log = sys.stderr

    kv = kernel_version(ksrc)
    tree_ver = "%s.%s" % (kv[0], kv[1])

    # --- tables -----------------------------------------------------------
    t64 = parse_tbl(os.path.join(ksrc, "arch/x86/entry/syscalls/syscall_64.tbl"))
    t32 = parse_tbl(os.path.join(ksrc, "arch/x86/entry/syscalls/syscall_32.tbl"))
    tarm = parse_tbl(os.path.join(ksrc, "arch/arm/tools/syscall.tbl"))
    arm64_abis = make_var_abis(ksrc)
    arm64_path = arm64_table_path(ksrc)
    tarm64 = parse_tbl(arm64_path)

    abis = {
        "x86_64": ["common", "64"],
        "x32": ["common", "x32"],
        "x86": ["i386"],
        "aarch64": arm64_abis,
        "arm": ["common", "eabi"],
    }
    src_rows = {
        "x86_64": select(t64, abis["x86_64"]),
        "x32": select(t64, abis["x32"]),
        "x86": select(t32, abis["x86"]),
        "aarch64": select(tarm64, abis["aarch64"]),
        "arm": select(tarm, abis["arm"]),
    }
    # rows: arch -> {name: (nr_as_seen, entry, origin)}
    tables = {a: {} for a in ARCH_ORDER}
    for a in ARCH_ORDER:
        for nr, abi, name, entry in src_rows[a]:
            seen = nr | X32_SYSCALL_BIT if a == "x32" else nr
            if name in tables[a] and tables[a][name][0] != seen:
                raise SystemExit("%s: %s has two numbers" % (a, name))
            tables[a][name] = (seen, entry, "tbl")
    arm_private = parse_arm_private(ksrc)
    for name, nr in arm_private:
        if name in tables["arm"]:
            raise SystemExit("arm private %s clashes with the table" % name)
        tables["arm"][name] = (nr, None, "arm-private")

    # --- supplement --------------------------------------------------------
    supp_added = []
    supp_defs = {}
    covered = tree_ver
    for name, ver, nrs, entry, types, source in SUPPLEMENT:
        for a, nr in sorted(nrs.items()):
            seen = nr | X32_SYSCALL_BIT if a == "x32" else nr
            have = tables[a].get(name)
            if have:
                if have[0] != seen:
                    raise SystemExit("supplement %s on %s: tree has %#x, supplement %#x"
                                     % (name, a, have[0], seen))
                continue
            tables[a][name] = (seen, entry, "supplement " + ver)
            supp_added.append((a, name, seen, ver))
        supp_defs[entry] = [(types, "supplement (Linux %s)" % ver)]
        if vkey(ver) > vkey(covered):
            covered = ver

    # --- definitions and widths ------------------------------------------
    top = sorted(d for d in os.listdir(ksrc)
                 if os.path.isdir(os.path.join(ksrc, d)) and d not in SKIP_TOP)
    gen_defs, bad_gen = scan_defines(ksrc, top)
    x86_defs, bad_x86 = scan_defines(ksrc, ["arch/x86"], exclude_dirs={"arch/x86/um"})
    arm64_defs, bad_arm64 = scan_defines(ksrc, ["arch/arm64"])
    defs = {
        "x86_64": merge(gen_defs, x86_defs),
        "aarch64": merge(gen_defs, arm64_defs),
    }
    aliases = {
        "x86_64": arch_aliases(ksrc, "__x64_", "arch/x86"),
        "aarch64": arch_aliases(ksrc, "__arm64_", "arch/arm64"),
    }
    resolvers = {
        "x86_64": TypeResolver(ksrc, ["arch/x86/include/asm", "arch/x86/include/uapi/asm"],
                               exclude_re=re.compile(r"(_32|x32)")),
        "aarch64": TypeResolver(ksrc, ["arch/arm64/include/asm", "arch/arm64/include/uapi/asm"]),
    }
    # supplement signatures only for entry points the tree does not define
    for a in defs:
        defs[a] = merge(defs[a], {k: v for k, v in supp_defs.items() if k not in defs[a]})
    notes = {}
    missing = []
    out_tables = {}
    for a in ARCH_ORDER:
        ents = []
        for name in sorted(tables[a], key=lambda s: s.encode()):
            nr, entry, origin = tables[a][name]
            if IS64[a]:
                mask = arg32_mask(entry, defs[a], aliases[a], resolvers[a], notes, missing, a)
            else:
                mask = ARG32_32BIT_ABI
            ents.append((name, nr, mask, origin))
        nrs = [e[1] for e in ents]
        if len(set(nrs)) != len(nrs):
            dup = sorted({n for n in nrs if nrs.count(n) > 1})
            raise SystemExit("%s: duplicate numbers %s" % (a, dup))
        out_tables[a] = ents

    # types of definitions no table row uses, for the report only
    other_notes = {}
    for a in defs:
        for entry in sorted(defs[a]):
            for types, _where in defs[a][entry]:
                for t in types:
                    classify(t, resolvers[a], other_notes)

    # --- all names ---------------------------------------------------------
    all_names = set()
    tbl_files = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ksrc, "arch")):
        dirnames.sort()
        for fn in sorted(filenames):
            if fn.startswith("syscall") and fn.endswith(".tbl"):
                tbl_files.append(os.path.join(dirpath, fn))
    tbl_files.append(os.path.join(ksrc, "scripts/syscall.tbl"))
    for p in tbl_files:
        for _nr, _abi, name, _entry in parse_tbl(p):
            all_names.add(name)
    for a in ARCH_ORDER:
        all_names.update(tables[a])
    all_names.update(n for n, *_ in SUPPLEMENT)
    all_names.update(EXTRA_KNOWN_NAMES)
    all_sorted = sorted(all_names, key=lambda s: s.encode())

    # --- write -------------------------------------------------------------
    lines = []
    w = lines.append
    w("/* GENERATED FILE -- DO NOT EDIT.")
    w(" *")
    w(" * Generated by tools/gen_syscalls.py from the Linux %s.%s.%s kernel source tree," % kv)
    w(" * completed with the generator's SUPPLEMENT table (syscalls added after Linux %s, up to"
      % tree_ver)
    w(" * Linux %s, each marked with its version below); the tables cover" % covered)
    w(" * every syscall up to Linux %s." % covered)
    w(" * Command: python3 tools/gen_syscalls.py --kernel %s -o %s"
      % (args.kernel, args.output))
    w(" *")
    w(" * Entries: {\"name\", nr as seen in seccomp_data.nr, arg32}.  arg32 bit i: argument i is")
    w(" * declared 32-bit (or narrower) by the native SYSCALL_DEFINE of the row's entry point")
    w(" * (64-bit ABIs only; 0x3f on the 32-bit ABIs).  Entries are sorted by name (strcmp).")
    w(" */")
    w('#include "syscalls.h"')
    w("")
    w('const char sb_syscall_tables_kernel[] = "%s";' % covered)
    w("")
    for a in ARCH_ORDER:
        abi_desc = {
            "x86_64": "arch/x86/entry/syscalls/syscall_64.tbl, ABIs common,64",
            "x32": "arch/x86/entry/syscalls/syscall_64.tbl, ABIs common,x32, nr | 0x40000000",
            "x86": "arch/x86/entry/syscalls/syscall_32.tbl, ABI i386",
            "aarch64": "%s, ABIs %s" % (os.path.relpath(os.path.realpath(arm64_path),
                                                        os.path.realpath(ksrc)),
                                        ",".join(arm64_abis)),
            "arm": "arch/arm/tools/syscall.tbl, ABIs common,eabi, + ARM private 0x0f0000+n",
        }[a]
        w("/* %s: %s */" % (a, abi_desc))
        w("static const struct sb_syscall sb_entries_%s[] = {" % a)
        for name, nr, mask, origin in out_tables[a]:
            note = ""
            if origin.startswith("supplement"):
                note = " /* Linux %s */" % origin.split()[1]
            elif origin == "arm-private":
                note = " /* ARM private */"
            w("\t{%s, %s, 0x%02x},%s" % (c_string(name), "0x%08x" % nr if nr >= 0x10000 else str(nr),
                                         mask, note))
        w("};")
        w("")
        order = sorted(range(len(out_tables[a])), key=lambda i: (out_tables[a][i][1], i))
        w("/* %s: indices into sb_entries_%s, ordered by number */" % (a, a))
        w("static const uint16_t sb_by_nr_%s[] = {" % a)
        for k in range(0, len(order), 12):
            w("\t" + " ".join("%d," % i for i in order[k:k + 12]))
        w("};")
        w("")
    w("const struct sb_syscall_table sb_syscall_tables[SB_ARCH_COUNT] = {")
    enum = {"x86_64": "SB_ARCH_X86_64", "x86": "SB_ARCH_X86", "x32": "SB_ARCH_X32",
            "aarch64": "SB_ARCH_AARCH64", "arm": "SB_ARCH_ARM"}
    for a in ARCH_ORDER:
        w("\t[%s] = {\"%s\", 0x%08X, %d, %d, sb_entries_%s}," % (
            enum[a], a, AUDIT_ARCH[a], IS64[a], len(out_tables[a]), a))
    w("};")
    w("")
    w("const uint16_t *const sb_syscall_nr_order[SB_ARCH_COUNT] = {")
    for a in ARCH_ORDER:
        w("\t[%s] = sb_by_nr_%s," % (enum[a], a))
    w("};")
    w("")
    w("/* Every syscall name of any architecture's table (every arch/.../syscall*.tbl,")
    w(" * scripts/syscall.tbl), the ARM private calls and the supplement. */")
    w("const char *const sb_all_syscall_names[] = {")
    for n in all_sorted:
        w("\t%s," % c_string(n))
    w("};")
    w("const uint32_t sb_all_syscall_names_count = %d;" % len(all_sorted))
    data = "\n".join(lines) + "\n"
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="ascii", newline="\n") as f:
        f.write(data)
    os.replace(tmp, args.output)

    # --- summary ----------------------------------------------------------
    print("gen_syscalls: kernel tree %s.%s.%s, tables cover Linux %s" % (kv + (covered,)), file=log)
    print("gen_syscalls: aarch64 ABIs: %s (%s)" % (",".join(arm64_abis), arm64_path), file=log)
    for a in ARCH_ORDER:
        n_supp = sum(1 for e in out_tables[a] if e[3].startswith("supplement"))
        print("gen_syscalls: %-8s %4d entries (%d from the supplement)"
              % (a, len(out_tables[a]), n_supp), file=log)
    print("gen_syscalls: all names: %d" % len(all_sorted), file=log)
    for a, name, seen, ver in supp_added:
        print("gen_syscalls: supplement %-8s %-16s %#x (Linux %s)" % (a, name, seen, ver), file=log)
    for w_ in bad_gen + bad_x86 + bad_arm64:
        print("gen_syscalls: unparsed SYSCALL_DEFINE at %s" % w_, file=log)
    for a in ("x86_64", "aarch64"):
        ni = [e[0] for e in out_tables[a]
              if tables[a][e[0]][1] in (None, "sys_ni_syscall")
              and tables[a][e[0]][2] == "tbl"]
        print("gen_syscalls: %s: rows without entry point / sys_ni_syscall (mask 0): %s"
              % (a, ", ".join(ni) if ni else "none"), file=log)
    for a, e in sorted(set(missing)):
        print("gen_syscalls: %s: no SYSCALL_DEFINE for entry point %s (mask 0)" % (a, e), file=log)
    for k in ("unrecognised", "resolved-64", "resolved-32"):
        vals = sorted(notes.get(k, ()))
        label = {"unrecognised": "unrecognised types (treated as 64-bit)",
                 "resolved-64": "types resolved through kernel typedefs to 64-bit",
                 "resolved-32": "types resolved through kernel typedefs to <=32-bit"}[k]
        print("gen_syscalls: %s: %s" % (label, ", ".join(vals) if vals else "none"), file=log)
    rest = sorted(set(other_notes.get("unrecognised", ())) - set(notes.get("unrecognised", ())))
    print("gen_syscalls: unrecognised types in definitions that no table row uses: %s"
          % (", ".join(rest) if rest else "none"), file=log)
    for k in ("listed-32-but-headers-say", "listed-64-but-headers-say"):
        for t, r in sorted(notes.get(k, {}).items()):
            print("gen_syscalls: note: %s is %s but header typedefs give %s"
                  % (t, k.split("-")[1] + "-bit", r), file=log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
