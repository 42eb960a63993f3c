"""One forward pass for every request waiting at that moment.

The ``Batcher`` runs the classifier in its own thread over whatever digits
are queued, so concurrent small requests share one forward pass. Its
``as_classifier`` is a ``Classifier`` like any other, which lets the routes
call ``prediction.answer_pictures`` in a worker thread unchanged: the
classifier's ``probabilities`` hands the digits to the batcher on the event
loop and waits for its share of the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from fastapi.concurrency import run_in_threadpool

from mnist_cnn.engines import Classifier
from mnist_cnn.errors import MnistCnnError

MAX_BATCH = 64  # images per forward pass when requests pile up
# A worker thread waits at most this long for its batch; far above a forward
# pass (milliseconds), it only keeps a thread from waiting forever.
MODEL_WAIT_SECONDS = 60.0


@dataclass
class _Job:
    model_inputs: np.ndarray  # (K, 28, 28, 1) float32 in [0, 1]
    future: asyncio.Future


class Batcher:
    """Runs the classifier in one thread of its own over whatever requests are waiting.

    The thread is its own, not one of the worker threads the requests run in:
    those wait for the batcher, and the batcher waiting for one of them could
    deadlock when all are taken.
    """

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self.queue: asyncio.Queue[_Job] | None = None
        self.worker: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mnist-cnn-model")
        self.queue = asyncio.Queue()
        self.worker = asyncio.create_task(self._work())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker
        if self.queue is not None:
            while not self.queue.empty():
                job = self.queue.get_nowait()
                if not job.future.done():
                    job.future.set_exception(MnistCnnError("the server is shutting down"))
        if self.executor is not None:
            self.executor.shutdown(wait=False)
        self.queue = self.worker = self.loop = self.executor = None

    async def probabilities(self, model_inputs: np.ndarray) -> np.ndarray:
        """(K, 28, 28, 1) float32 -> (K, classes), computed in a shared batch."""
        if self.queue is None:  # not started (e.g. no lifespan): run directly
            return await run_in_threadpool(self.classifier.probabilities, model_inputs)
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Job(model_inputs, future))
        return await future

    def probabilities_from_thread(self, model_inputs: np.ndarray) -> np.ndarray:
        """The same, called from a worker thread (never from the event loop's own)."""
        loop = self.loop
        if loop is None:
            return self.classifier.probabilities(model_inputs)
        waiting = asyncio.run_coroutine_threadsafe(self.probabilities(model_inputs), loop)
        return waiting.result(timeout=MODEL_WAIT_SECONDS)

    def as_classifier(self) -> Classifier:
        """A ``Classifier`` whose forward passes go through this batcher."""
        # replace() keeps the rest (the not-a-digit detector, which runs beside it).
        return replace(self.classifier, probabilities=self.probabilities_from_thread)

    async def _work(self) -> None:
        queue, loop = self.queue, self.loop
        if queue is None or loop is None:
            raise RuntimeError("Batcher._work runs only after start()")
        while True:
            jobs = [await queue.get()]
            while not queue.empty() and sum(len(job.model_inputs) for job in jobs) < MAX_BATCH:
                jobs.append(queue.get_nowait())
            try:
                output = await loop.run_in_executor(
                    self.executor,
                    self.classifier.probabilities,
                    np.concatenate([job.model_inputs for job in jobs]),
                )
            except Exception as error:
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            start = 0
            for job in jobs:
                if not job.future.done():
                    job.future.set_result(output[start : start + len(job.model_inputs)])
                start += len(job.model_inputs)
