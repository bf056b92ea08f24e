"""A tqdm bar driven by the C++ core's "n finished so far" callbacks."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional


@contextmanager
def progress_callback(total: int, show: bool, unit: str, desc: str) -> Iterator[Optional[Callable[[int], None]]]:
    """Yields a callback for the core (or None when not shown); the bar closes on exit."""
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit=unit, desc=desc)
    try:
        yield lambda n_done: bar.update(n_done - bar.n)
    finally:
        bar.close()
