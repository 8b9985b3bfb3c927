"""A batch's bound on the commands running at once, shared with its zygotes: a pipe that holds
one byte per free slot.

A run takes a byte before its command starts and writes it back once the command has ended.
A run through the zygote does not take it itself: it sends its request ahead and the zygote
takes the byte, starts the job the moment it has one, and gives it back once the job and
what it left behind are gone, just before it reports the job's end (csrc/zygote.h,
sb_zygote_spawn_slot). So when one job ends, the next starts in whichever zygote waits,
without the supervisor waking up in between; the supervisor builds the finished job's Result
while the next command already runs. A batch therefore has more
threads than slots (sandbox/jobthreads.py): some watch running jobs, the rest wait to start.

Jobs are taken in order, but a freed slot goes to whichever waiting zygote reads the byte
first, so starts may reorder within a window of about N jobs. (Handing slots out in strict
order through the supervisor measured 40% slower: the wake-up this design removes comes back.)

stop() (the batch was interrupted) drops every run still waiting for a slot: nothing more
starts, and those runs end as SETUP_ERROR at stage "slot" (ECANCELED), which the batch counts
as not run.

A zygote that dies while its job runs has the slot given back by the supervisor (the job's
report is lost: it knows). One killed in the instant between taking a byte and answering takes
the slot with it: the batch then runs one job fewer at once. The zygote does nothing in that
instant but start the job, so only a kill from outside can land there.
"""
from __future__ import annotations

import errno
import itertools
import os
import threading
from typing import Optional

from . import fdwait


class SlotsStopped(OSError):
    def __init__(self):
        super().__init__(errno.ECANCELED, "not started: the batch was stopped")


class RunSlots:
    """n slots. acquire()/release() as a semaphore's (for runs that start themselves); .fds
    for a zygote. The slot pipe is non-blocking: zygotes poll it and may race for a byte."""

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self.id = next(_ids)   # names the pipes to a zygote, which keeps the first copies
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.stop_r, self.stop_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        os.write(self.write_fd, b"s" * self.n)

    @property
    def fds(self) -> tuple:
        """(slot pipe read end, its write end, stop pipe read end, id): what a zygote takes."""
        return self.read_fd, self.write_fd, self.stop_r, self.id

    def acquire(self) -> None:
        """Take a slot, waiting for one; SlotsStopped once stop() was called."""
        while True:
            ready = fdwait.readable([self.read_fd, self.stop_r])
            if self.stop_r in ready:
                raise SlotsStopped()
            try:
                if os.read(self.read_fd, 1):
                    return
                raise OSError(errno.EPIPE, "the slot pipe was closed")
            except BlockingIOError:
                continue   # another took it first

    def release(self) -> None:
        os.write(self.write_fd, b"s")

    def stop(self) -> None:
        """No run waiting for a slot starts any more (the stop pipe stays readable)."""
        try:
            os.write(self.stop_w, b"x")
        except OSError:
            pass

    def close(self) -> None:
        for name in ("read_fd", "write_fd", "stop_r", "stop_w"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, name, -1)

    def __del__(self):
        self.close()


_local = threading.local()
_ids = itertools.count(1)


def current() -> Optional[RunSlots]:
    """The slots of the calling thread (a batch's worker threads have them), or None."""
    return getattr(_local, "slots", None)


def set_current(slots: Optional[RunSlots]) -> None:
    _local.slots = slots

