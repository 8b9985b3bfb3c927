"""Waiting for descriptors to become readable, whatever their number.

select.select() refuses descriptors from 1024 up (FD_SETSIZE), and a busy supervisor gets
there: a batch at -j 300 holds a zygote socket, a pidfd and three pipes per running job.
poll() has no such bound.
"""
from __future__ import annotations

import select
from typing import Iterable, List, Optional

# what select() counts as readable: data, or an end (hang-up, error); a closed descriptor too,
# so that the caller's read fails on it rather than the wait
_READY = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR | select.POLLNVAL


def readable(fds: Iterable[int], timeout: Optional[float] = None) -> List[int]:
    """The descriptors of fds that are readable, once one is or after timeout seconds (None:
    no limit); [] on timeout."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN | select.POLLPRI)
    ms = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    return [fd for fd, events in poller.poll(ms) if events & _READY]
