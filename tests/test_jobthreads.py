"""The batch's own thread pool (sandbox/jobthreads.py): order, bound, cancel, errors, shutdown."""
import threading

import pytest

from sandbox.jobthreads import JobThreads


def test_calls_start_in_order_and_at_most_n_run_at_once():
    pool = JobThreads(3)
    lock = threading.Lock()
    running, peak, started = [0], [0], []

    def work(i):
        with lock:
            started.append(i)
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        threading.Event().wait(0.002)
        with lock:
            running[0] -= 1
        return i * i

    futs = [pool.submit(work, i) for i in range(40)]
    pool.shutdown(wait=True)
    assert [f.result() for f in futs] == [i * i for i in range(40)]
    assert peak[0] <= 3
    # each thread takes the next call in submission order
    assert started[:3] == sorted(started[:3]) and sorted(started) == list(range(40))
    assert len(pool._threads) == 3


def test_an_exception_is_kept_for_the_taker_and_the_callback_runs_once():
    pool = JobThreads(1)
    seen = []
    done = threading.Event()

    def cb(f):
        seen.append(f)
        done.set()

    fut = pool.submit(lambda: 1 / 0)
    fut.add_done_callback(cb)
    assert done.wait(10)
    assert seen == [fut] and fut.done() and not fut.cancelled()
    assert isinstance(fut.exception(), ZeroDivisionError)
    with pytest.raises(ZeroDivisionError):
        fut.result()
    late = []
    fut.add_done_callback(late.append)      # already done: called at once
    assert late == [fut]
    pool.shutdown()


def test_queued_calls_can_be_cancelled_a_running_one_cannot():
    pool = JobThreads(1)
    gate = threading.Event()
    entered = threading.Event()

    def block():
        entered.set()
        gate.wait(10)
        return "ran"

    first = pool.submit(block)
    assert entered.wait(10)
    second = pool.submit(lambda: "never")
    called = []
    second.add_done_callback(called.append)
    assert not first.cancel()
    assert second.cancel() and second.cancelled() and second.done()
    assert called == [second]
    gate.set()
    pool.shutdown(wait=True)
    assert first.result() == "ran"
    assert second.cancelled() and second.result() is None   # never ran


def test_shutdown_cancels_what_is_queued_and_refuses_more():
    pool = JobThreads(1)
    gate, entered = threading.Event(), threading.Event()

    def block():
        entered.set()
        return gate.wait(10)

    first = pool.submit(block)
    assert entered.wait(10)
    rest = [pool.submit(lambda: "never") for _ in range(5)]
    threading.Timer(0.2, gate.set).start()
    pool.shutdown(wait=True, cancel_futures=True)
    assert first.result() is True
    assert all(f.cancelled() and f.done() for f in rest)
    with pytest.raises(RuntimeError):
        pool.submit(print)
