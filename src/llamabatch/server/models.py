"""The models a server runs: loaded in the background (``/health`` says 503
until then), each owned by its scheduler thread."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Optional

from .. import models as catalogue
from ..embedder import Embedder
from ..generator import Generator
from ..weights import resolve_model
from .config import ServerConfig, model_id
from .embedding_scheduler import EmbeddingScheduler
from .errors import APIError, model_not_found, not_ready
from .generation_scheduler import GenerationScheduler
from .metrics import Metrics

log = logging.getLogger("llamabatch.server")


class ServedModels:
    """Resolves the model files at once (a wrong name fails before the server
    starts) and loads them on :meth:`load_in_background`."""

    def __init__(self, config: ServerConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        embedding = config.embedding_model
        generation = config.model
        if config.serves_both_defaults:
            embedding = catalogue.DEFAULT_EMBEDDING_MODEL
            generation = catalogue.DEFAULT_GENERATION_MODEL
        self.embedding_weights = (
            resolve_model(embedding, "", config.weights, n_gpu_layers=config.n_gpu_layers) if embedding else None)
        self.embedding_path: Optional[Path] = self.embedding_weights.path if self.embedding_weights else None
        self.generation_path: Optional[Path] = catalogue.resolve(generation, "") if generation else None
        self.embedding_id = model_id(embedding) if embedding else None
        self.generation_id = model_id(generation) if generation else None
        self.embeddings: Optional[EmbeddingScheduler] = None
        self.generation: Optional[GenerationScheduler] = None
        self.ready = threading.Event()
        self.failure: Optional[str] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def ids(self) -> list[str]:
        return [i for i in (self.embedding_id, self.generation_id) if i]

    def load_in_background(self, on_failure: Callable[[], None]) -> None:
        def load() -> None:
            try:
                self._load()
            except Exception as e:  # noqa: BLE001 - reported, and the server stops
                self.failure = f"{type(e).__name__}: {e}"
                log.error("could not load the models: %s", self.failure)
                on_failure()
                return
            self.ready.set()
            log.info("ready: %s", ", ".join(self.ids))
        self._thread = threading.Thread(target=load, name="llamabatch-load", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        c = self.config
        if self.embedding_path is not None:
            embedder = Embedder(self.embedding_path, n_threads=c.threads, n_gpu_layers=c.n_gpu_layers,
                                batch_invariant=c.batch_invariant)
            if embedder.pooling in ("none", "rank"):
                raise ValueError(f"{self.embedding_path} gives {embedder.pooling!r} pooling; /v1/embeddings needs "
                                 f"a model with one vector per input (mean, cls or last pooling)")
            log.info("embedding model %s on %s: %s (%s weights: %s)", self.embedding_id, embedder.device, embedder,
                     embedder.weights, self.embedding_weights.reason if self.embedding_weights else "")
            self.embeddings = EmbeddingScheduler(embedder, self.embedding_id or "", self.metrics, c.max_queued_tokens)
            self.embeddings.start()
        if self.generation_path is not None:
            generator = Generator(self.generation_path, n_parallel=c.n_parallel, n_ctx=c.n_ctx, n_threads=c.threads,
                                  n_gpu_layers=c.n_gpu_layers, chat_template=c.chat_template,
                                  batch_invariant=c.batch_invariant, prefix_cache=c.prefix_cache)
            log.info("generation model %s on %s: %s", self.generation_id, generator.device, generator)
            self.generation = GenerationScheduler(generator, self.generation_id or "", self.metrics,
                                                  c.max_queued_tokens)
            self.generation.start()

    def stop(self) -> None:
        for scheduler in (self.generation, self.embeddings):
            if scheduler is not None:
                scheduler.stop()

    # ---------------------------------------------------------------- lookup
    def _check_name(self, name: Optional[str], wanted: Optional[str], kind: str, endpoint: str) -> None:
        if wanted is None:
            other = "--embedding-model" if kind == "embedding" else "--model"
            raise model_not_found(f"this server has no {kind} model for {endpoint}: start it with {other}")
        if name is None or name == wanted:
            return
        path = self.embedding_path if kind == "embedding" else self.generation_path
        if path is not None and name == str(path):
            return
        if name in self.ids:
            raise model_not_found(f"model '{name}' cannot serve {endpoint}; its {kind} model is '{wanted}'")
        raise model_not_found(f"model '{name}' is not served here; GET /v1/models lists: {', '.join(self.ids)}")

    def _wait_ready(self) -> None:
        if self.failure is not None:
            raise APIError(503, f"the models failed to load: {self.failure}", type="service_unavailable",
                           code="load_failed")
        if not self.ready.is_set():
            raise not_ready()

    def embeddings_for(self, name: Optional[str], endpoint: str = "/v1/embeddings") -> EmbeddingScheduler:
        self._check_name(name, self.embedding_id, "embedding", endpoint)
        self._wait_ready()
        assert self.embeddings is not None
        return self.embeddings

    def generation_for(self, name: Optional[str], endpoint: str) -> GenerationScheduler:
        self._check_name(name, self.generation_id, "generation", endpoint)
        self._wait_ready()
        assert self.generation is not None
        return self.generation
