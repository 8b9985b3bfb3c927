"""The thread pool a batch uses when the caller gives it no executor: N threads taking work in
the order it was submitted, each running one item at a time.

With slots (a sandbox.runslots.RunSlots of N) it has 2N threads, and the bound moves from
the threads to the slots, which every Sandbox.run in these threads takes: while N threads
watch running commands, the others have taken the next items and, through their zygotes,
asked for their commands to start the moment a slot frees. So at most N commands run at
once, and a slot does not idle while the supervisor reads a finished job's output and builds
its Result. Items are taken in order; their commands may start out of order within a window
of about N (a freed slot goes to whichever waiting zygote takes it first). Work that starts
processes other than through Sandbox.run is bounded by the 2N threads only.

It keeps the part of the concurrent.futures interface that run_batch uses (submit, shutdown,
and futures with cancel/cancelled/done/result/exception and one done-callback) and drops the
rest. A concurrent.futures.Future takes a Condition and a waiter list per item and
ThreadPoolExecutor a semaphore round per submit: at a thousand short jobs a second on two
cores, that bookkeeping was a tenth of the supervisor's CPU (bench/bench_batch.py).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Optional

from . import runslots

_PENDING, _RUNNING, _CANCELLED, _FINISHED = range(4)


class JobFuture:
    """One submitted call. The state moves under the pool's lock: a cancel and a worker
    taking the item cannot both win."""
    __slots__ = ("fn", "args", "state", "value", "error", "callback", "_pool")

    def __init__(self, pool: "JobThreads", fn: Callable, args: tuple):
        self.fn, self.args, self._pool = fn, args, pool
        self.state = _PENDING
        self.value = self.error = self.callback = None

    def add_done_callback(self, fn: Callable) -> None:
        """fn(self) once the call has ended or was cancelled (only one callback is kept)."""
        with self._pool.lock:
            if self.state in (_PENDING, _RUNNING):
                self.callback = fn
                return
        fn(self)

    def cancel(self) -> bool:
        with self._pool.lock:
            if self.state == _PENDING:
                self.state = _CANCELLED
            elif self.state != _CANCELLED:
                return False
        self._done()
        return True

    def cancelled(self) -> bool:
        return self.state == _CANCELLED

    def done(self) -> bool:
        return self.state in (_CANCELLED, _FINISHED)

    def exception(self) -> Optional[BaseException]:
        return self.error

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value

    def _done(self) -> None:
        cb, self.callback = self.callback, None
        if cb is not None:
            cb(self)


class JobThreads:
    """N threads (started on first submit) running submitted calls in order; with slots, 2N
    threads whose runs take those N slots."""

    def __init__(self, workers: int, name: str = "sandbox-batch",
                 slots: Optional[runslots.RunSlots] = None):
        self.lock = threading.Lock()
        self._queue: "queue.SimpleQueue" = queue.SimpleQueue()
        self.slots = slots
        self._workers, self._name = max(1, int(workers)) * (2 if slots else 1), name
        self._threads: list = []
        self._closed = False

    def submit(self, fn: Callable, *args) -> JobFuture:
        if self._closed:
            raise RuntimeError("cannot submit after shutdown")
        fut = JobFuture(self, fn, args)
        if len(self._threads) < self._workers:
            t = threading.Thread(target=self._work,
                                 name="%s_%d" % (self._name, len(self._threads)))
            self._threads.append(t)
            t.start()
        self._queue.put(fut)
        return fut

    def _work(self) -> None:
        runslots.set_current(self.slots)
        while True:
            fut = self._queue.get()
            if fut is None:
                return
            with self.lock:
                if fut.state != _PENDING:
                    continue  # cancelled while queued
                fut.state = _RUNNING
            try:
                fut.value = fut.fn(*fut.args)
            except BaseException as e:  # handed to whoever takes the result
                fut.error = e

            with self.lock:
                fut.state = _FINISHED
            fut._done()
            fut = None  # (the item's references go now, not with the next one)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """No more submits; with cancel_futures, queued calls are cancelled; with wait, join
        the threads (each ends once the queue before its stop marker is done)."""
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    fut = self._queue.get_nowait()
                except queue.Empty:
                    break
                if fut is not None:
                    fut.cancel()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for t in self._threads:
                t.join()
