"""Overlap decoding, inference and encoding with bounded queues between threads.

PyAV, OpenCV and torch release the GIL in their heavy loops, so plain threads are enough to keep
the device busy while frames are read or written. Queues are bounded: memory stays constant.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(source: Iterable[T], size: int = 8, name: str = "prefetch") -> Iterator[T]:
    """Iterate ``source`` in a background thread, ``size`` items ahead; errors re-raise here."""
    q: queue.Queue[object] = queue.Queue(maxsize=size)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put(_Failure(exc))

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        t.join(timeout=5)


class BackgroundSink(Generic[T]):
    """Calls ``consume(item)`` for each put item in a background thread, in order."""

    def __init__(self, consume: Callable[[T], None], size: int = 8, name: str = "sink") -> None:
        self._consume = consume
        self._q: queue.Queue[object] = queue.Queue(maxsize=size)
        self._error: BaseException | None = None
        self._t = threading.Thread(target=self._run, name=name, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._consume(item)  # type: ignore[arg-type]
                except BaseException as exc:  # re-raised in the producer's thread
                    self._error = exc

    def put(self, item: T) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(item)

    def close(self) -> None:
        """Wait for every queued item; re-raise the first error of the consumer."""
        self._q.put(_END)
        self._t.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundSink[T]:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:  # the producer failed: let the thread finish what is queued, keep its error
            self._q.put(_END)
            self._t.join()
