"""``llamabatch serve``: an OpenAI-compatible HTTP server that batches across
concurrent requests.

One scheduler thread per model owns its context: embedding inputs from every
waiting request are packed into each decode, and a generation request joins
the running continuous batch at the next decode. Needs the ``server`` extra:
``pip install "llamabatch[server]"``.

>>> from llamabatch.server import ServerConfig, serve
>>> serve(ServerConfig(embedding_model="all-minilm-l6-v2", port=8000))  # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from typing import Iterator, Optional, Sequence

from .config import ServerConfig, add_arguments, from_arguments

__all__ = ["ServerConfig", "add_arguments", "create_app", "from_arguments", "main", "serve"]


def create_app(config: ServerConfig):  # type: ignore[no-untyped-def]
    """The ASGI application, for running under another ASGI server."""
    from .app import create_app as _create_app

    return _create_app(config)


def _missing_extra(e: ImportError) -> int:
    print(f"llamabatch serve needs the server extra ({e.name} is missing): pip install \"llamabatch[server]\"",
          file=sys.stderr)
    return 2


def serve(config: ServerConfig) -> int:
    """Runs the server until SIGTERM or SIGINT; returns the exit status (0 after
    a clean shutdown, 1 if a model failed to load)."""
    try:
        import uvicorn

        from .app import create_app as _create_app
        from .metrics import Metrics
        from .models import ServedModels
    except ImportError as e:
        return _missing_extra(e)

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn raises the caught signal again once it has shut down, so the
            # process would die of SIGTERM; being asked to stop is a clean exit.
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    metrics = Metrics()
    try:
        served = ServedModels(config, metrics)
    except (FileNotFoundError, IsADirectoryError, ValueError) as e:
        print(f"llamabatch serve: {e}", file=sys.stderr)
        return 2
    server: Optional[Server] = None

    def stop_on_failure() -> None:
        if server is not None:
            server.should_exit = True

    app = _create_app(config, served, metrics, on_load_failure=stop_on_failure)
    uv_config = uvicorn.Config(app, host=config.host, port=config.port, log_level="info", access_log=False,
                               timeout_graceful_shutdown=max(1, round(config.shutdown_timeout)), lifespan="on")
    server = Server(uv_config)
    server.run()
    if served.failure is not None:
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m llamabatch.server``: the same as ``llamabatch serve``."""
    parser = argparse.ArgumentParser(prog="llamabatch serve", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return serve(from_arguments(parser.parse_args(argv)))
