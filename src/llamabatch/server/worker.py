"""What both schedulers are: a thread that owns one model, and hands results
back to the event loop that waits for them."""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable


def deliver(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    """Runs callback(*args) on the event loop, from any thread."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the event loop has closed: nobody is waiting
        pass


class ModelWorker:
    """A daemon thread running :meth:`_run`; requests hand it work under
    ``_cond`` and wake it with ``notify``. :meth:`stop` asks it to finish."""

    def __init__(self, name: str) -> None:
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        raise NotImplementedError
