"""The signals that stop a command of the command line the way SIGTERM does: SIGTERM (a CI
cancelling the job, `timeout`, `kill`) and SIGHUP (the terminal or ssh session went away),
unless SIGHUP is ignored (`nohup`). Left to their default action, they would end the supervisor
without killing what it runs: a run without a PID namespace of its own would keep going."""
from __future__ import annotations

import contextlib
import signal
import threading


STOP = (signal.SIGTERM, signal.SIGHUP)


def stopping(*more) -> list:
    """The stop signals (and those in more) this process does not ignore; SIGTERM always."""
    return [sig for sig in (*STOP, *more)
            if sig == signal.SIGTERM or signal.getsignal(sig) is not signal.SIG_IGN]


@contextlib.contextmanager
def handled(handler, *more):
    """Install handler(signum, frame) for the stop signals (and the signals in more) that are
    not ignored (a shell starts background jobs with SIGINT ignored) while the block runs,
    only in the main thread, where Python delivers signals; then restore the previous ones."""
    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in stopping(*more):
            old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def as_interrupt():
    """While the block runs a stop signal raises KeyboardInterrupt, so that a batch or a
    grading stops as on Ctrl-C (its running jobs killed). Yields the list of the stop signals
    received, for ending()."""
    received = []

    def stop(signum, frame):
        received.append(signum)
        raise KeyboardInterrupt
    with handled(stop):
        yield received


def ending(received, interrupted_status: int) -> tuple:
    """(what to say, exit status) of a stopped command: 'terminated (SIGTERM)' and 143, or
    'interrupted' and interrupted_status for Ctrl-C."""
    if received:
        return "terminated (%s)" % signal.Signals(received[0]).name, 128 + received[0]
    return "interrupted", interrupted_status
