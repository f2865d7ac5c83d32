"""The Ed25519 worker thread: results, errors, bounds and shutdown."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dtim.crypto.offload import CryptoWorker


def _thread_name() -> str:
    return threading.current_thread().name


async def test_results_resolve_on_the_worker_thread() -> None:
    worker = CryptoWorker(name="test-crypto")
    key = Ed25519PrivateKey.generate()
    try:
        signatures = await asyncio.gather(*(worker.run(key.sign, b"m%d" % i) for i in range(50)))
        for i, signature in enumerate(signatures):
            key.public_key().verify(signature, b"m%d" % i)
        assert await worker.run(_thread_name) == "test-crypto"
        assert await worker.run(pow, 2, 10) == 1024
    finally:
        worker.close()


async def test_errors_propagate_to_the_caller() -> None:
    worker = CryptoWorker()
    public = Ed25519PrivateKey.generate().public_key()
    try:
        with pytest.raises(InvalidSignature):
            await worker.run(public.verify, b"\0" * 64, b"message")
        with pytest.raises(RuntimeError, match="StopIteration"):
            await worker.run(next, iter(()))
        assert await worker.run(int, "7") == 7  # the worker survives its callers' errors
    finally:
        worker.close()


async def test_a_full_queue_runs_the_call_inline() -> None:
    worker = CryptoWorker(max_pending=1)
    release = threading.Event()
    try:
        blocked = asyncio.ensure_future(worker.run(release.wait, 5))
        await asyncio.sleep(0.05)
        assert await worker.run(_thread_name) == threading.current_thread().name
        release.set()
        assert await blocked is True
    finally:
        worker.close()


async def test_close_finishes_pending_work_without_hanging() -> None:
    worker = CryptoWorker()
    pending = [asyncio.ensure_future(worker.run(time.sleep, 0.01)) for _ in range(20)]
    await asyncio.sleep(0)  # the calls are queued
    started = time.monotonic()
    worker.close()
    assert time.monotonic() - started < 5
    assert await asyncio.wait_for(asyncio.gather(*pending), 5) == [None] * 20
    assert worker.closed
    # After close the work runs inline; closing again is harmless.
    assert await worker.run(_thread_name) == threading.current_thread().name
    worker.close()


async def test_a_cancelled_caller_does_not_break_the_worker() -> None:
    worker = CryptoWorker()
    try:
        slow = asyncio.ensure_future(worker.run(time.sleep, 0.05))
        await asyncio.sleep(0.01)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert await worker.run(int, "3") == 3
    finally:
        worker.close()


def test_results_for_a_closed_loop_are_dropped() -> None:
    worker = CryptoWorker()
    release = threading.Event()

    async def start() -> None:
        waiting = asyncio.ensure_future(worker.run(release.wait, 5))
        await asyncio.sleep(0.01)
        waiting.cancel()  # its loop goes away; the call itself still runs
        await asyncio.gather(waiting, return_exceptions=True)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(start())
    loop.close()
    release.set()  # the result finds its loop closed; the worker goes on

    async def again() -> int:
        return await worker.run(int, "5")

    assert asyncio.run(again()) == 5
    worker.close()


def test_close_without_use_starts_nothing() -> None:
    worker = CryptoWorker()
    worker.close()
    assert worker.closed
