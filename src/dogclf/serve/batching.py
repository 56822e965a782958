"""Dynamic batching: concurrent requests share one forward pass, up to a batch size or a delay."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from dogclf.serve.codecs import RequestError

if TYPE_CHECKING:
    import torch

log = logging.getLogger("dogclf.serve")
T = TypeVar("T")


class Overloaded(RequestError):
    """More images are waiting than the queue allows."""

    status = 503


@dataclass
class _Job:
    images: list[Any]  # preprocessed images, as ClassifierAPI.predict takes them
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)
    done_at: float = 0.0


class DynamicBatcher:
    """Groups queued images into batches and runs them on `workers` model threads."""

    def __init__(
        self,
        predict: Callable[[list[Any]], torch.Tensor],
        max_batch_size: int = 16,
        max_delay_s: float = 0.005,
        workers: int = 1,
        max_queue: int = 256,
        on_batch: Callable[[int], None] = lambda size: None,
        initializer: Callable[[], None] | None = None,
        on_stage: Callable[[str, float], None] = lambda stage, seconds: None,
    ) -> None:
        self.predict, self.on_batch, self.initializer = predict, on_batch, initializer
        self.on_stage = on_stage
        self.max_batch_size, self.max_delay_s = max_batch_size, max_delay_s
        self.workers, self.max_queue = workers, max_queue
        self._jobs: collections.deque[_Job] = collections.deque()
        self._queued = 0
        self._arrived: asyncio.Event | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._collector: asyncio.Task | None = None

    @property
    def queued_images(self) -> int:
        """Images accepted but not yet taken into a batch, for the queue-depth metric."""
        return self._queued

    def start(self) -> None:
        """Start the collector task on the running loop."""
        self._arrived = arrived = asyncio.Event()
        slots = asyncio.Semaphore(self.workers)  # one per model thread: a batch is taken when one is free
        self._executor = ThreadPoolExecutor(
            self.workers, thread_name_prefix="dogclf-model", initializer=self.initializer
        )
        self._collector = asyncio.get_running_loop().create_task(self._collect(arrived, slots), name="dogclf-batcher")

    async def run_on_model_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` on a model thread (model loading and warm-up belong where the batches run)."""
        if self._executor is None:
            raise RuntimeError("DynamicBatcher.start() has not been called")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def stop(self) -> None:
        """Stop collecting; batches already running finish first."""
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
        for job in self._jobs:
            if not job.future.done():
                job.future.set_exception(Overloaded("server is shutting down"))
        self._jobs.clear()

    async def submit(self, images: list[Any]) -> torch.Tensor:
        """Queue images and wait for their logits (rows in the same order)."""
        if self._arrived is None:
            raise RuntimeError("DynamicBatcher.start() has not been called")
        if self._queued + len(images) > self.max_queue:
            raise Overloaded(f"server overloaded: {self._queued} images already queued (limit {self.max_queue})")
        job = _Job(images, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._queued += len(images)
        self._arrived.set()
        logits = await job.future
        self.on_stage("return", time.perf_counter() - job.done_at)
        return logits

    def _take_batch(self) -> list[_Job]:
        """Pop whole jobs up to max_batch_size images (at least one job), skipping abandoned ones."""
        batch: list[_Job] = []
        size = 0
        while self._jobs:
            job = self._jobs[0]
            if batch and size + len(job.images) > self.max_batch_size:
                break
            self._jobs.popleft()
            self._queued -= len(job.images)
            if not job.future.done():  # a timed-out request's images are dropped, not computed
                batch.append(job)
                size += len(job.images)
        return batch

    async def _wait_for_more(self, arrived: asyncio.Event) -> None:
        """Wait for a full batch until the oldest queued image has waited max_delay.

        The delay counts from the oldest image's arrival, not from when a model thread freed up: images that
        queued while every model thread was busy have already waited, and run at once.
        """
        deadline = self._jobs[0].queued_at + self.max_delay_s
        while self._queued < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return

    async def _collect(self, arrived: asyncio.Event, slots: asyncio.Semaphore) -> None:
        """Collector task: take a batch whenever a model thread is free, and run it there."""
        loop = asyncio.get_running_loop()
        while True:
            await slots.acquire()
            while not self._jobs:
                arrived.clear()
                await arrived.wait()
            await self._wait_for_more(arrived)
            batch = self._take_batch()
            if not batch:
                slots.release()
                continue
            future = loop.run_in_executor(self._executor, self._run, batch)
            future.add_done_callback(lambda f, b=batch: self._finish(f, b, slots))

    def _run(self, batch: list[_Job]) -> list[torch.Tensor]:
        """Worker thread: one forward pass (chunked when a single request exceeds the batch size)."""
        import torch

        started = time.perf_counter()
        for job in batch:
            self.on_stage("batch_wait", started - job.queued_at)
        images = [image for job in batch for image in job.images]
        chunks = [images[i : i + self.max_batch_size] for i in range(0, len(images), self.max_batch_size)]
        outputs = []
        for chunk in chunks:
            start = time.perf_counter()
            outputs.append(self.predict(chunk))
            self.on_stage("engine", time.perf_counter() - start)
            self.on_batch(len(chunk))
        logits = torch.cat(outputs)
        done = time.perf_counter()
        for job in batch:
            job.done_at = done
        return list(logits.split([len(job.images) for job in batch]))

    def _finish(self, future: asyncio.Future, batch: list[_Job], slots: asyncio.Semaphore) -> None:
        slots.release()
        if future.cancelled():
            results: list | BaseException = asyncio.CancelledError()
        else:
            exc = future.exception()
            results = exc if exc is not None else future.result()
        if isinstance(results, BaseException):
            log.error("batch of %d requests failed: %r", len(batch), results)
        for i, job in enumerate(batch):
            if job.future.done():
                continue
            if isinstance(results, BaseException):
                job.future.set_exception(results)
            else:
                job.future.set_result(results[i])
