"""Build the tests' small C programs once per source hash, shared by the xdist workers."""
import functools
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import tempfile


class Unavailable(Exception):
    """This host cannot build or run the program at all (tests skip with this reason)."""


def cache_dir() -> str:
    """A per-user directory for built programs, shared by the workers of a session."""
    cache = os.path.join(tempfile.gettempdir(), "sandbox-tests-%d" % os.getuid())
    os.makedirs(cache, mode=0o700, exist_ok=True)
    st = os.lstat(cache)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        return tempfile.mkdtemp(prefix="sandbox-tests-")   # not ours: do not run what is there
    return cache


@functools.lru_cache(maxsize=None)
def build(source: str, cflags: tuple, what: str) -> str:
    """Path of the x86_64 executable built from `source` with `cflags`."""
    if platform.machine() != "x86_64":
        raise Unavailable("%s is x86_64-only (host is %s)" % (what, platform.machine()))
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read() + " ".join(cflags).encode()).hexdigest()[:16]
    cache = cache_dir()
    base = os.path.splitext(os.path.basename(source))[0]
    exe = os.path.join(cache, "%s-%s" % (base, digest))
    if os.access(exe, os.X_OK):
        return exe
    gcc = shutil.which("gcc")
    if gcc is None:
        raise Unavailable("gcc not found: cannot build %s" % source)
    # Build under a private name and rename: workers may race, rename is atomic.
    fd, tmp = tempfile.mkstemp(prefix=base + ".", dir=cache)
    os.close(fd)
    try:
        res = subprocess.run([gcc, *cflags, "-o", tmp, source], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError("building %s failed:\n%s" % (source, res.stderr))
        os.chmod(tmp, 0o755)
        os.replace(tmp, exe)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return exe
