"""The dynamic batcher's delay: counted from the oldest queued image, so work that waited behind a busy engine runs."""

import asyncio
import threading
import time

import torch

from dogclf.serve.batching import DynamicBatcher

DELAY_S = 1.5  # long against scheduling noise on a busy machine: the two policies differ by a whole delay
RUN_S = 1.0


def _batcher(starts: list[float]) -> DynamicBatcher:
    """One model thread whose forward pass takes RUN_S and records when it started."""
    lock = threading.Lock()

    def predict(images: list[int]) -> torch.Tensor:
        with lock:
            starts.append(time.perf_counter())
        time.sleep(RUN_S)
        return torch.tensor(images, dtype=torch.float32).view(-1, 1)

    return DynamicBatcher(predict, max_batch_size=16, max_delay_s=DELAY_S, workers=1)


def test_images_queued_behind_a_busy_engine_run_as_soon_as_it_frees_up():
    starts: list[float] = []

    async def scenario() -> list[torch.Tensor]:
        batcher = _batcher(starts)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([1]))
        await asyncio.sleep(DELAY_S + 0.2)  # the first batch is running now
        later = [asyncio.ensure_future(batcher.submit([i])) for i in (2, 3)]
        results = await asyncio.gather(first, *later)
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert [r.tolist() for r in results] == [[[1.0]], [[2.0]], [[3.0]]]
    assert len(starts) == 2  # the two late requests shared one batch
    # They had waited longer than the delay when the engine freed up: no second delay before their batch.
    assert starts[1] - starts[0] < RUN_S + DELAY_S / 2


def test_a_lone_image_on_an_idle_engine_still_waits_the_delay_for_batchmates():
    starts: list[float] = []

    async def scenario() -> float:
        batcher = _batcher(starts)
        batcher.start()
        submitted = time.perf_counter()
        first = asyncio.ensure_future(batcher.submit([1]))
        await asyncio.sleep(DELAY_S / 3)
        second = await batcher.submit([2])  # arrives within the delay: joins the first image's batch
        assert second.tolist() == [[2.0]] and (await first).tolist() == [[1.0]]
        await batcher.stop()
        return submitted

    submitted = asyncio.run(scenario())
    assert len(starts) == 1
    assert starts[0] - submitted >= DELAY_S * 0.95
