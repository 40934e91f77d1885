"""One scoring thread per model, fed by a bounded queue; requests merge only where scores allow it.

Handlers await :meth:`Batcher.score`; the thread takes what is queued and either

* merges several requests' pairs into one ``Reranker.predict`` call (the runtime then cuts them into
  its length-sorted token-budget batches), when the graph is batch-independent, waiting up to
  ``batch_wait_ms`` for more to arrive; or
* scores each request alone with ``Reranker.score``, exactly as an in-process caller would, when the
  graph is not (dynamic int8): one client's passages never change another's scores.

One thread per model keeps the cores for onnxruntime's own intra-op threads, and the queue length is
then a true measure of load: past ``max_queue`` a request is refused at once (503) instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reranker_onnx import Reranker

from .limits import Limits

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The model's queue holds ``max_queue`` requests already."""


class ShuttingDown(Exception):
    """The server is stopping and takes no new work."""


@dataclass(eq=False)
class _Job:
    query: str
    documents: Sequence[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[float]]
    queued_at: float = field(default_factory=time.perf_counter)
    abandoned: bool = False  # the handler gave up (timeout): skip it if not started

    def deliver(self, result: list[float] | BaseException) -> None:
        def settle() -> None:
            if self.future.done():
                return
            if isinstance(result, BaseException):
                self.future.set_exception(result)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(settle)


Observer = Callable[[int, int, float], None]  # (requests, pairs, queue wait of the oldest, seconds)


class Batcher:
    """Scores requests for one model on its own thread; ``merge`` allows cross-request batches."""

    def __init__(self, reranker: Reranker, *, merge: bool, limits: Limits, observe: Observer | None = None) -> None:
        self.reranker, self.merge, self.limits = reranker, merge, limits
        self._observe = observe or (lambda requests, pairs, wait: None)
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        """Run the scoring thread (again, after ``close``: an app's lifespan may start and stop twice)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive() and not self._stopping:
                return
        if self._thread is not None:
            self._thread.join()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="reranker-onnx-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return len(self._queue)

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Logits of ``documents`` against ``query``, equal to ``Reranker.score(raw=True)`` called alone
        (the routes apply the activation: TEI's ``raw_scores`` needs the logits themselves)."""
        loop = asyncio.get_running_loop()
        job = _Job(query, documents, loop, loop.create_future())
        with self._cond:
            if self._stopping:
                raise ShuttingDown("the server is shutting down")
            if len(self._queue) >= self.limits.max_queue:
                raise QueueFull(f"the queue is full ({self.limits.max_queue} requests waiting)")
            self._queue.append(job)
            self._cond.notify()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.limits.timeout_s)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            job.abandoned = True  # the thread skips it if it holds it already
            with self._cond:  # and a waiting one frees its place in the queue at once
                if job in self._queue:
                    self._queue.remove(job)
            raise

    def close(self, timeout: float | None = None) -> None:
        """Finish what is queued, then stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the scoring thread -----------------------------------------------------------------

    def _take(self) -> list[_Job] | None:
        """The next jobs to score together (one unless merging), or None when stopped and drained."""
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            jobs = [self._queue.popleft()]
            if not self.merge:
                return jobs
            pairs = len(jobs[0].documents)
            deadline = time.monotonic() + self.limits.batch_wait_ms / 1000.0
            while pairs < self.limits.max_batch_pairs:
                if self._queue:
                    if pairs + len(self._queue[0].documents) > self.limits.max_batch_pairs:
                        break
                    jobs.append(self._queue.popleft())
                    pairs += len(jobs[-1].documents)
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    break
                self._cond.wait(left)
            return jobs

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            jobs = [j for j in jobs if not j.abandoned]
            if not jobs:
                continue
            wait = time.perf_counter() - min(j.queued_at for j in jobs)
            try:
                if len(jobs) == 1:
                    results: list[list[float] | BaseException] = [self._score_alone(jobs[0])]
                else:
                    results = self._score_merged(jobs)
            except BaseException as exc:  # never let the thread die: every waiting client gets an answer
                log.exception("scoring failed")
                results = [exc] * len(jobs)
            self._observe(len(jobs), sum(len(j.documents) for j in jobs), wait)
            for job, result in zip(jobs, results):
                job.deliver(result)

    def _score_alone(self, job: _Job) -> list[float] | BaseException:
        try:
            return self.reranker.score(job.query, job.documents, raw=True)
        except Exception as exc:  # an InputError belongs to this request only
            return exc

    def _score_merged(self, jobs: list[_Job]) -> list[list[float] | BaseException]:
        pairs = [(j.query, d) for j in jobs for d in j.documents]
        try:
            scores = self.reranker.predict(pairs, raw=True)
        except Exception:  # one bad request must not fail its batch-mates: score each alone
            return [self._score_alone(j) for j in jobs]
        out: list[list[float] | BaseException] = []
        start = 0
        for j in jobs:
            out.append(scores[start : start + len(j.documents)])
            start += len(j.documents)
        return out
