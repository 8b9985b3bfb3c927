"""Where `sandbox batch` runs its jobs: threads here, a pool of processes here, or Dask.

A batch only needs a concurrent.futures.Executor (see batch.run_batch). With Dask each worker
process runs its jobs in its own local sandboxes (compiled once per profile per worker) and
sends back the same JobResults a local run gives. Dask is an optional extra
(`pip install 'seccomp-sandbox[dask]'`); nothing here imports it unless asked for.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import threading
import uuid
from typing import Callable, Iterator, Optional, Union

KINDS = ("threads", "processes", "dask")

DASK_MISSING = ("--executor dask needs Dask distributed on this machine and on every worker: "
                "pip install 'seccomp-sandbox[dask]'")


class ExecutorUnavailable(RuntimeError):
    """The executor asked for cannot be had (a missing package, an unreachable scheduler)."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@dataclasses.dataclass
class BatchExecutor:
    executor: Optional[concurrent.futures.Executor]   # None: run_batch's own thread pool
    parallel: int                                     # jobs in flight at once
    # what kills the runs in progress on Ctrl-C; None: run_batch's default
    kill_on_interrupt: Union[None, bool, Callable[[], object]] = None
    where: str = "threads"                            # for the summary


@contextlib.contextmanager
def batch_executor(kind: str, parallel: Optional[int], scheduler: Optional[str] = None,
                   default_parallel: int = 1) -> Iterator[BatchExecutor]:
    """The executor of `kind`, shut down (and a cluster we started stopped) on exit.

    parallel: jobs at once (threads, processes, or local Dask workers); for a Dask scheduler
    the default is the cluster's total worker threads. scheduler: a Dask scheduler address;
    without one, a local cluster of worker processes is started for the batch."""
    if kind == "threads":
        yield BatchExecutor(None, parallel or default_parallel)
    elif kind == "processes":
        n = parallel or default_parallel
        # spawn: a forked copy of a threaded supervisor could inherit a held lock
        pool = concurrent.futures.ProcessPoolExecutor(
            n, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_ctrl_c)

        def kill_runs_of_the_pool():
            _kill_runs_of({p.pid for p in getattr(pool, "_processes", {}).values()})

        try:
            yield BatchExecutor(pool, n, kill_on_interrupt=kill_runs_of_the_pool,
                                where="processes")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    elif kind == "dask":
        with _dask_executor(parallel, scheduler, default_parallel) as ex:
            yield ex
    else:
        raise ValueError("unknown executor %r (known: %s)" % (kind, ", ".join(KINDS)))


def local_cluster(n_workers: int):
    """A Dask LocalCluster of n worker processes of one thread each, for one batch: no
    dashboard, and its HTTP endpoints on a free local port (not 8787, which may be taken)."""
    import distributed
    return distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True,
        dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": False},
        silence_logs=logging.ERROR)


def _ignore_ctrl_c() -> None:
    """In a worker process: the terminal's Ctrl-C is the batch's to handle (a grace, then a
    kill of the runs), not each worker's. Inherited by processes spawned while it is set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _kill_runs_of(parents) -> None:
    """SIGKILL the runs the pool processes `parents` supervise, which are their children (a
    run's own process, or the sandbox-init of its PID namespace) or, for runs a pre-filtered
    zygote started, that zygote's children: the zygote stays, reports each job killed, and the
    supervisor in the pool process then ends the run's tree and reports it as killed."""
    children: dict = {}
    names: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                head, _, rest = f.read().rpartition(b")")
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(rest.split()[1]), []).append(pid)
        names[pid] = head.partition(b"(")[2]
    victims = []
    for parent in parents:
        for child in children.get(parent, ()):
            if names.get(child) == b"sandbox-zygote":
                victims += children.get(child, [])
            else:
                victims.append(child)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _cancel_runs_here() -> int:
    from .runner import cancel_all
    return cancel_all()


@contextlib.contextmanager
def _dask_executor(parallel, scheduler, default_parallel) -> Iterator[BatchExecutor]:
    try:
        import distributed
    except ImportError:
        raise ExecutorUnavailable(DASK_MISSING) from None
    with contextlib.ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(distributed.Client(scheduler, timeout="10s"))
            except (OSError, distributed.TimeoutError) as e:
                raise ExecutorUnavailable("--scheduler %s: cannot reach the Dask scheduler: %s"
                                          % (scheduler, e)) from None
            where = "dask %s" % scheduler
        else:
            n = parallel or default_parallel
            # its worker processes inherit an ignored SIGINT: Ctrl-C is the batch's alone
            old = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
            try:
                cluster = stack.enter_context(local_cluster(n))
            finally:
                if old is not None:
                    signal.signal(signal.SIGINT, old)
            client = stack.enter_context(distributed.Client(cluster))
            where = "dask local cluster of %d worker processes" % n
        try:
            client.wait_for_workers(1, timeout=10)
        except distributed.TimeoutError:
            raise ExecutorUnavailable("--scheduler %s: no Dask worker joined within 10s "
                                      "(start some with `dask worker %s`)"
                                      % (scheduler, scheduler)) from None
        threads = sum(client.nthreads().values())
        executor = DaskBatchExecutor(client)

        def kill_on_every_worker():
            executor.stop_starting()
            client.run(_cancel_runs_here)

        yield BatchExecutor(executor, parallel or threads,
                            kill_on_interrupt=kill_on_every_worker, where=where)


def _unless_stopped(stop_name: str, fn, *args):
    """The task a Dask worker runs: fn(*args), or None (not started) once the batch stops."""
    import distributed
    if distributed.Event(stop_name).is_set():
        return None
    return fn(*args)


class DaskBatchExecutor(concurrent.futures.Executor):
    """An Executor over a Dask client, for one batch.

    Unlike Dask's own (Client.get_executor), cancelling a future never abandons a job that may
    be running on a worker (it would go on unsupervised by the batch): it stops the batch from
    starting any more jobs, and returns False. The future then ends soon with None when its
    job had not started (what run_batch counts as not run), else with the job's result."""

    def __init__(self, client):
        import distributed
        self._client = client
        self._stop_name = "sandbox-batch-stop-%s" % uuid.uuid4().hex
        self._stop = distributed.Event(self._stop_name, client=client)

    def stop_starting(self) -> None:
        self._stop.set()

    def submit(self, fn, *args, **kwargs):
        if kwargs:
            raise TypeError("DaskBatchExecutor.submit takes positional arguments only")
        # pure=False: two identical jobs are two runs, never one shared (cached) result
        remote = self._client.submit(_unless_stopped, self._stop_name, fn, *args, pure=False)
        local = _StopsBatchFuture(self)
        local.set_running_or_notify_cancel()
        remote.add_done_callback(lambda f: _settle(local, f))
        return local


class _StopsBatchFuture(concurrent.futures.Future):
    def __init__(self, executor: DaskBatchExecutor):
        super().__init__()
        self._executor = executor

    def cancel(self) -> bool:
        self._executor.stop_starting()
        return False


def _settle(local: concurrent.futures.Future, remote) -> None:
    """Give a Dask future's outcome to its concurrent.futures twin (in Dask's callback thread)."""
    if remote.status == "finished":
        local.set_result(remote.result())
    elif remote.status == "cancelled":
        local.set_exception(concurrent.futures.CancelledError("cancelled in Dask"))
    else:
        local.set_exception(remote.exception())
