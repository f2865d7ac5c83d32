"""A worker thread for Ed25519 verify and sign, so the event loop goes on meanwhile.

``cryptography`` releases the GIL while it verifies or signs, so a second core can
do that work while the loop parses the next request. :class:`CryptoWorker` is one
long-lived thread that drains a bounded queue. Results go back in batches: the
first result for a loop schedules one ``call_soon_threadsafe``, and results that
finish before the loop gets to it ride along, which costs the loop a few
microseconds per call instead of the tens a thread-pool handoff costs.

The work runs inline on the caller instead when the queue is full or the worker
is closed, so a caller never waits for room and shutdown never strands a call.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_MAX_PENDING = 1024
"""Calls queued or running at once; beyond this the caller runs its own."""
_JOIN_SECONDS = 5.0
_BATCH = 64

_Job = tuple[Callable[[], object], "asyncio.Future[object]", asyncio.AbstractEventLoop]
_Outcome = tuple["asyncio.Future[object]", object, BaseException | None]


class CryptoWorker:
    """Runs short GIL-releasing calls (Ed25519 verify/sign) on one dedicated thread.

    The thread starts on the first call and is a daemon, so a worker that is never
    closed does not hold the process open; :meth:`close` stops it after the calls
    already queued.

    Args:
        max_pending: bound on queued and running calls.
        name: the thread's name.
    """

    def __init__(self, max_pending: int = DEFAULT_MAX_PENDING, name: str = "dtim-crypto") -> None:
        self._max_pending = max_pending
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # One C lock guards the count, the mailboxes and the closed flag (cheap, no await).
        self._lock = threading.Lock()
        self._pending = 0
        self._mailboxes: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (later calls run inline)."""
        return self._closed

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the worker thread; its exception is raised here."""
        loop = asyncio.get_running_loop()
        with self._lock:
            offload = not self._closed and self._pending < self._max_pending
            if offload:
                self._pending += 1
                if self._thread is None:
                    self._start()
                future: asyncio.Future[object] = loop.create_future()
                # Queued under the lock: nothing can land behind close()'s stop marker.
                self._jobs.put((lambda: fn(*args, **kwargs), future, loop))
        if not offload:
            return fn(*args, **kwargs)
        return await future  # type: ignore[return-value]  # the future holds fn's result

    def close(self) -> None:
        """Finish the queued calls and stop the thread (waits a bounded time)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._jobs.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_SECONDS)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            batch = [jobs.get()]
            # Take whatever queued meanwhile: one hand-back per batch, not per call.
            while len(batch) < _BATCH:
                try:
                    batch.append(jobs.get_nowait())
                except queue.Empty:
                    break
            outcomes: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            stop = False
            for job in batch:
                if job is None:
                    stop = True
                    continue
                call, future, loop = job
                outcomes.setdefault(loop, []).append(_outcome(call, future))
            self._hand_back(outcomes)
            if stop:
                return

    def _hand_back(self, outcomes: dict[asyncio.AbstractEventLoop, list[_Outcome]]) -> None:
        wake = []
        with self._lock:
            for loop, done in outcomes.items():
                self._pending -= len(done)
                mailbox = self._mailboxes.get(loop)
                if mailbox is None:
                    self._mailboxes[loop] = done
                    wake.append(loop)
                else:
                    mailbox += done  # that loop has a delivery scheduled already
        for loop in wake:
            try:
                loop.call_soon_threadsafe(self._deliver, loop)
            except RuntimeError:
                # The loop is closed: nobody can await these results any more.
                with self._lock:
                    self._mailboxes.pop(loop, None)

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            outcomes = self._mailboxes.pop(loop, [])
        for future, result, error in outcomes:
            if future.cancelled():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)


def _outcome(call: Callable[[], object], future: asyncio.Future[object]) -> _Outcome:
    try:
        return (future, call(), None)
    except StopIteration as exc:  # a future cannot hold StopIteration
        return (future, None, RuntimeError(f"worker call raised {exc!r}"))
    except BaseException as exc:  # handed to the awaiting caller
        return (future, None, exc)
