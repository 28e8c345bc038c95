"""Micro-batching: concurrent requests joined into one onnxruntime call.

The exported file scores a batch of sessions in one call much faster per session than
one call each (Diginetica-sized model, one thread: about 0.64 ms per session alone,
0.23 ms in batches of 16, 0.18 ms in batches of 256; ``benchmarks/serve_load.py``).
:class:`MicroBatcher` collects the sessions that requests submit while the previous
call runs, or for at most ``max_wait_s`` after the first one when the model is idle,
and answers them with one :meth:`SessionRecommender.next_items_batch` call per group
of sessions that share the model, ``k`` and ``exclude_seen`` (so every answer is
exactly the answer of a call of its own).

Inference runs in a pool of ``workers`` threads (onnxruntime releases the GIL), so the
event loop keeps reading requests while a batch is scored; at most ``workers`` batches
run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sessionrec.recommender import NextItems, SessionRecommender

__all__ = ["MicroBatcher"]

_POLL_S = 0.0002  # how often a waiting batch looks for more sessions (seconds)


@dataclass(eq=False)
class _Pending:
    rec: SessionRecommender  # the model the session was checked against
    clicks: np.ndarray  # [L] raw ids, checked (SessionRecommender.validate_session)
    k: int
    exclude_seen: bool
    future: asyncio.Future[NextItems] = field(repr=False)


class MicroBatcher:
    """Joins sessions submitted concurrently into batched onnxruntime calls.

    Args:
        max_batch: the most sessions per onnxruntime call (>= 1).
        max_wait_s: how long a session may wait for others when no call is running
            (seconds, >= 0; ``0``: score at once whatever is queued).
        workers: onnxruntime calls that may run at once (threads, >= 1).
        on_batch: called with the number of sessions of every onnxruntime call (metrics).

    Use :meth:`start` inside the running event loop, :meth:`submit` from request
    handlers, and :meth:`stop` at shutdown (queued sessions are still answered).
    """

    def __init__(
        self,
        max_batch: int = 256,
        max_wait_s: float = 0.001,
        workers: int = 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or workers < 1 or not max_wait_s >= 0:
            raise ValueError(
                f"max_batch and workers must be >= 1 and max_wait_s >= 0, got "
                f"{max_batch}, {workers}, {max_wait_s}"
            )
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.workers = workers
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start collecting (call from within the running event loop)."""
        self._queue = asyncio.Queue()
        self._slots = asyncio.Semaphore(self.workers)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="sessionrec-infer")
        self._loop_task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        """Answer what is queued, then stop."""
        queue = self._queue
        if queue is None or self._loop_task is None:
            return
        self._queue = None  # submit() refuses from now on
        queue.put_nowait(None)  # the end marker, after every queued session
        await self._loop_task
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        assert self._executor is not None
        self._executor.shutdown(wait=True)

    async def submit(
        self, rec: SessionRecommender, clicks: np.ndarray, k: int, exclude_seen: bool
    ) -> NextItems:
        """The top-``k`` of one checked session, scored in a batch with others.

        Raises:
            RuntimeError: the batcher is not running.
            Exception: what :meth:`SessionRecommender.next_items_batch` raised for the
                batch (not expected for checked sessions).
        """
        if self._queue is None:
            raise RuntimeError("MicroBatcher.submit before start() or after stop()")
        future: asyncio.Future[NextItems] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(rec, clicks, k, exclude_seen, future))
        return await future

    # -- the collecting loop ----------------------------------------------------------
    async def _collect(self) -> None:
        assert self._queue is not None and self._slots is not None
        queue, loop = self._queue, asyncio.get_running_loop()
        done = False
        while not done:
            first = await queue.get()
            if first is None:
                return
            await self._slots.acquire()  # a free worker: everything queued until now joins
            batch = [first]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    # short sleeps, not wait_for(queue.get()): a get cancelled at its
                    # timeout must never take a session with it
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    await asyncio.sleep(min(timeout, _POLL_S))
                    continue
                if item is None:
                    done = True
                    break
                batch.append(item)
            task = loop.create_task(self._score(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _score(self, batch: list[_Pending]) -> None:
        assert self._slots is not None
        live = [p for p in batch if not p.future.done()]  # a caller may have gone
        try:
            if live:
                loop = asyncio.get_running_loop()
                outcomes = await loop.run_in_executor(self._executor, _run_groups, live)
                for pending, outcome in zip(live, outcomes):
                    if pending.future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        pending.future.set_exception(outcome)
                    else:
                        pending.future.set_result(outcome)
                if self._on_batch is not None:
                    for size in _group_sizes(live):
                        self._on_batch(size)
        except BaseException as exc:  # never leave a caller waiting forever
            for pending in live:
                if not pending.future.done():
                    pending.future.set_exception(
                        exc if isinstance(exc, Exception) else RuntimeError("scoring stopped")
                    )
            raise
        finally:
            self._slots.release()


def _group_key(p: _Pending) -> tuple[int, int, bool]:
    return id(p.rec), p.k, p.exclude_seen


def _group_sizes(batch: list[_Pending]) -> list[int]:
    sizes: dict[tuple[int, int, bool], int] = {}
    for p in batch:
        sizes[_group_key(p)] = sizes.get(_group_key(p), 0) + 1
    return list(sizes.values())


def _run_groups(batch: list[_Pending]) -> list[NextItems | BaseException]:
    """One ``next_items_batch`` call per (model, k, exclude_seen) group (worker thread)."""
    groups: dict[tuple[int, int, bool], list[int]] = {}
    for i, p in enumerate(batch):
        groups.setdefault(_group_key(p), []).append(i)
    out: list[NextItems | BaseException] = [RuntimeError("not scored")] * len(batch)
    for rows in groups.values():
        head = batch[rows[0]]
        try:
            results: list[Any] = head.rec.next_items_batch(
                [batch[i].clicks for i in rows], k=head.k, exclude_seen=head.exclude_seen
            )
        except Exception as exc:  # one group's failure fails its requests only
            results = [exc] * len(rows)
        for i, result in zip(rows, results):
            out[i] = result
    return out
