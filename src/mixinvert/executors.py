"""Where bulk work runs: a local thread pool (the default) or a Ray cluster.

Every bulk job of the project (the renders and features of the sampling step, the
validation of ``train``, the songs of ``evaluate``, a search's candidates) is a *task*: a
pure function at module level whose inputs are data, never shared state. The tasks live
with the code that runs them (:mod:`mixinvert.train.tasks`, :mod:`mixinvert.evaluation`);
this module knows nothing of mixinvert's audio, only how to run functions. An :class:`Executor` runs tasks and returns their results in
the order given, so the same seed gives the same numbers whichever executor runs them:
every random draw happens in the caller, before the tasks go out.

- :class:`LocalExecutor` runs tasks on threads of this process. pedalboard, numpy's FFT
  and torch release the GIL while they work, so threads scale on the cores (see
  BENCHMARKS.md, "Sampling-step throughput") and nothing is copied: a song's audio is
  read in place by every thread.
- :class:`RayExecutor` runs tasks on a Ray cluster (``pip install "mixinvert[ray]"``):
  ``address="local"`` starts one on this machine, ``"auto"`` joins the cluster that
  ``ray start`` runs here, ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` joins a remote one.
  :meth:`Executor.put` moves a song's audio into Ray's object store once; every task that
  names it reads it from shared memory on its node (zero-copy, read-only), and a task
  sends back features or two scores, never audio.

Ray is driven through its public API (``ray.init``, ``ray.put``, ``ray.remote``,
``ray.get``); nothing here schedules work itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mixinvert.errors import MixinvertError

#: What ``--ray`` takes to start Ray on this machine (besides ``"auto"`` and addresses).
RAY_LOCAL = "local"


class ExecutorError(MixinvertError):
    """An executor that cannot start (Ray missing, a cluster that cannot be reached)."""


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch ops with ``count`` intra-op threads, and restore the count after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def single_threaded_torch() -> contextlib.AbstractContextManager[None]:
    """Run torch ops with one intra-op thread (the caller's pool supplies the parallelism)."""
    return torch_threads(1)


# --------------------------------------------------------------------------- executors


class Executor:
    """Runs task functions over argument tuples; results come back in the order given."""

    name = "executor"
    workers = 1

    def put(self, value: Any) -> Any:
        """Make ``value`` available to tasks; pass what this returns as a task argument."""
        return value

    def map(self, fn: Callable[..., Any], jobs: Iterable[Sequence[Any]], *, cpus_per_task: int = 1) -> Iterator[Any]:
        """``fn(*job)`` for every job, yielded in the order given.

        ``cpus_per_task``: cores one task uses by itself (e.g. a method that runs its own
        threads); fewer tasks then run at once.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers (and stop a Ray instance this executor started)."""

    def describe(self) -> str:
        return f"{self.name}, {self.workers} worker(s)"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalExecutor(Executor):
    """Threads of this process (the default).

    Parameters
    ----------
    workers : int or None, threads (default: all cores)
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = int(workers or os.cpu_count() or 1)
        self._pools: dict[int, ThreadPoolExecutor] = {}

    def map(self, fn: Callable[..., Any], jobs: Iterable[Sequence[Any]], *, cpus_per_task: int = 1) -> Iterator[Any]:
        from threadpoolctl import threadpool_limits

        jobs = list(jobs)
        threads = max(1, self.workers // max(1, cpus_per_task))
        if threads > 1 and threads not in self._pools:
            self._pools[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mixinvert")
        pool = self._pools.get(threads)
        chunk = 4 * threads
        for a in range(0, len(jobs), chunk):
            # a task is one worker: one torch and one BLAS thread each, as on Ray (and not
            # cores x cores; BLAS sums in an order that depends on its thread count). The
            # limits are process-wide, so they hold only while a chunk runs, never while
            # the caller works on what is yielded.
            limits = ((single_threaded_torch(), threadpool_limits(limits=1, user_api="blas"))
                      if cpus_per_task == 1 else ())
            with contextlib.ExitStack() as stack:
                for limit in limits:
                    stack.enter_context(limit)
                if pool is None:
                    out = [fn(*job) for job in jobs[a : a + chunk]]
                else:
                    out = list(pool.map(lambda job: fn(*job), jobs[a : a + chunk]))
            yield from out

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True)
        self._pools.clear()


class RayExecutor(Executor):
    """Tasks on a Ray cluster, one CPU each.

    Parameters
    ----------
    address : ``"local"`` (start Ray on this machine, stopped again by :meth:`close`),
        ``"auto"`` (the cluster ``ray start`` runs here), or a cluster address
    workers : int or None, with ``"local"``: the CPUs Ray may use (default: all cores)
    in_flight : tasks submitted ahead of the one awaited, per worker (bounds the memory
        held by results not yet collected)
    """

    name = "ray"

    def __init__(self, address: str = RAY_LOCAL, workers: int | None = None, *, in_flight: int = 4) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ExecutorError('Ray is not installed: pip install "mixinvert[ray]" (or run without --ray)') from exc
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": "ERROR"}
            try:
                if address == RAY_LOCAL:
                    ray.init(num_cpus=workers or os.cpu_count() or 1, **kwargs)
                else:
                    ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ExecutorError(f"cannot start or reach Ray at {address!r}: {exc}") from exc
            self._owns = True
        self.address = address
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.in_flight = in_flight
        self._remote: dict[Callable[..., Any], Any] = {}

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    def map(self, fn: Callable[..., Any], jobs: Iterable[Sequence[Any]], *, cpus_per_task: int = 1) -> Iterator[Any]:
        ray = self._ray
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = ray.remote(max_retries=2)(fn)
        remote = remote.options(num_cpus=max(1, cpus_per_task))
        window = self.in_flight * max(1, self.workers // max(1, cpus_per_task))
        pending: list[Any] = []
        for job in jobs:
            pending.append(remote.remote(*job))
            if len(pending) >= window:
                yield ray.get(pending.pop(0))
        while pending:
            yield ray.get(pending.pop(0))

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False

    def describe(self) -> str:
        where = "a local Ray instance" if self.address == RAY_LOCAL else f"Ray at {self.address}"
        return f"{where}, {self.workers} CPU(s)"


def make_executor(ray: str | None = None, workers: int | None = None) -> Executor:
    """The executor the command line asks for: ``--ray ADDRESS`` or local threads."""
    if ray:
        return RayExecutor(ray, workers)
    return LocalExecutor(workers)
