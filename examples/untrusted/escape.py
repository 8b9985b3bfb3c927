# Tries a few things a container escape would need; each is refused by the default profile
# (capabilities are dropped and the syscalls denied) and the program reports what happened.
import ctypes
import errno
import os

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
tries = {
    "unshare(CLONE_NEWUSER|CLONE_NEWNS)": lambda: libc.unshare(CLONE_NEWUSER | CLONE_NEWNS),
    "mount(tmpfs, /mnt)": lambda: libc.mount(b"none", b"/mnt", b"tmpfs", 0, None),
    "keyctl(KEYCTL_JOIN_SESSION_KEYRING)": lambda: libc.syscall(250, 1, None),
}
for what, call in tries.items():
    rc = call()
    err = ctypes.get_errno()
    print("%-40s %s" % (what, "succeeded?!" if rc == 0 else "refused: " + errno.errorcode.get(err, str(err))))
