"""`llamabatch serve`: a real server in a subprocess on a loopback port, real
clients (the `openai` package and raw httpx), real models.

Load loops are bounded in count and time and only ever target 127.0.0.1.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import llamabatch

httpx = pytest.importorskip("httpx", reason="the server tests need the test extra: pip install '.[test]'")
openai = pytest.importorskip("openai", reason="the server tests need the test extra: pip install '.[test]'")
pytest.importorskip("fastapi", reason="the server needs the server extra: pip install '.[server]'")

from server_process import ServerProcess  # noqa: E402

CORPUS = Path(__file__).parent / "data" / "multilingual_corpus.json"
N_CTX = 512  # generation context per sequence on the test server


def _texts(n: int) -> list[str]:
    items = json.loads(CORPUS.read_text(encoding="utf-8"))
    texts = [item["text"] if isinstance(item, dict) else item for item in items]
    step = max(1, len(texts) // n)  # spread over the languages
    return texts[::step][:n]


@pytest.fixture(scope="module")
def server(minilm_path: str, smollm_path: str):
    s = ServerProcess("--embedding-model", minilm_path, "--model", smollm_path, "--n-parallel", "8",
                      "--n-ctx", str(N_CTX)).wait_ready()
    yield s
    assert s.stop() == 0, s.log()[-3000:]


@pytest.fixture(scope="module")
def ids(server: ServerProcess) -> dict[str, str]:
    """The served model ids: {"embedding": ..., "generation": ...}."""
    listed = [m["id"] for m in httpx.get(f"{server.url}/v1/models").json()["data"]]
    assert len(listed) == 2
    return {"embedding": listed[0], "generation": listed[1]}


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def generator(smollm_path: str) -> llamabatch.Generator:
    return llamabatch.Generator(smollm_path, n_parallel=4, n_ctx=N_CTX)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ---------------------------------------------------------------- plumbing
def test_health_models_and_tokenize(server: ServerProcess, ids: dict[str, str], smollm: llamabatch.Model) -> None:
    health = httpx.get(f"{server.url}/health")
    assert health.status_code == 200 and health.json() == {"status": "ok", "models": list(ids.values())}
    models = httpx.get(f"{server.url}/v1/models").json()
    assert models["object"] == "list" and all(m["object"] == "model" for m in models["data"])

    r = httpx.post(f"{server.url}/tokenize", json={"content": "Hello, world", "model": ids["generation"]})
    assert r.status_code == 200
    assert r.json()["tokens"] == smollm.tokenize("Hello, world").tolist()


# ---------------------------------------------------------------- right answers
def test_embeddings_equal_in_process_encode(server: ServerProcess, client: Any, ids: dict[str, str],
                                            embedder: llamabatch.Embedder) -> None:
    texts = _texts(48)
    reference = embedder.encode(texts)

    # The openai client asks for base64 and decodes it.
    got = client.embeddings.create(model=ids["embedding"], input=texts)
    assert [d.index for d in got.data] == list(range(len(texts)))
    rows = np.array([d.embedding for d in got.data], dtype=np.float32)
    assert _cosines(rows, reference).min() >= 0.99999
    assert got.usage.prompt_tokens == sum(len(t) for t in embedder.tokenize(texts))

    # Raw JSON floats, and token ids instead of text.
    r = httpx.post(f"{server.url}/v1/embeddings", json={"input": texts[:8], "encoding_format": "float"}).json()
    assert _cosines(np.array([d["embedding"] for d in r["data"]]), reference[:8]).min() >= 0.99999
    tokens = [t.tolist() for t in embedder.tokenize(texts[:8])]
    r = httpx.post(f"{server.url}/v1/embeddings", json={"input": tokens, "encoding_format": "base64"}).json()
    decoded = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in r["data"]])
    assert _cosines(decoded, reference[:8]).min() >= 0.99999


def test_json_floats_read_back_as_the_float32_rows(server: ServerProcess) -> None:
    # The same one-text request twice, alone in its decode each time, so the rows are the same bits:
    # the JSON decimals, read as float32, must be those bits, not a rounding of them.
    body = {"input": ["Ein kurzer Satz über das Wetter."]}
    as_text = httpx.post(f"{server.url}/v1/embeddings", json={**body, "encoding_format": "float"}).json()
    as_bytes = httpx.post(f"{server.url}/v1/embeddings", json={**body, "encoding_format": "base64"}).json()
    floats = np.array(as_text["data"][0]["embedding"], dtype=np.float32)
    exact = np.frombuffer(base64.b64decode(as_bytes["data"][0]["embedding"]), dtype="<f4")
    assert floats.shape == (384,) and np.array_equal(floats, exact)


def test_the_json_writer_round_trips_every_kind_of_float32() -> None:
    from llamabatch.server.app import _json_bytes

    special = np.array([1e-45, -1e-45, 1.1754944e-38, 3.4028235e38, -3.4028235e38, 0.1, -0.0, 0.0, 1.0, 1e-7],
                       dtype=np.float32)
    random = np.random.default_rng(7).standard_normal((64, 384)).astype(np.float32)
    random[1] /= 1e30
    for rows in (special[None, :], random):
        text = _json_bytes({"data": [{"embedding": row} for row in rows]})
        back = np.array([d["embedding"] for d in json.loads(text)["data"]], dtype=np.float32)
        assert np.array_equal(back.view(np.uint32), rows.view(np.uint32))


def test_chat_stream_gives_generator_text(client: Any, ids: dict[str, str], generator: llamabatch.Generator) -> None:
    questions = ["Name three fruits.", "What is the capital of France?"]
    expected = generator.generate(questions, chat=True, max_new_tokens=24)
    for question, want in zip(questions, expected):
        stream = client.chat.completions.create(model=ids["generation"], max_tokens=24, temperature=0, stream=True,
                                                messages=[{"role": "user", "content": question}],
                                                stream_options={"include_usage": True})
        pieces, finish, usage = [], None, None
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                pieces.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
        assert "".join(pieces) == want
        assert finish in ("stop", "length")
        assert usage is not None and usage.completion_tokens == len(generator.model.tokenize(want, add_special=False))


def test_completions_give_generator_text(client: Any, ids: dict[str, str], generator: llamabatch.Generator) -> None:
    prompts = ["1, 2, 3,", "The capital of France is"]
    expected = generator.generate_details(prompts, max_new_tokens=12)
    got = client.completions.create(model=ids["generation"], prompt=prompts, max_tokens=12, temperature=0)
    assert [c.text for c in sorted(got.choices, key=lambda c: c.index)] == [e.text for e in expected]
    assert [c.finish_reason for c in sorted(got.choices, key=lambda c: c.index)] == [e.finish_reason for e in expected]
    assert got.usage.completion_tokens == sum(e.completion_tokens for e in expected)
    assert got.usage.prompt_tokens == sum(e.prompt_tokens for e in expected)


def test_a_shared_system_prompt_is_reused_and_reported_in_usage(server: ServerProcess, ids: dict[str, str],
                                                                generator: llamabatch.Generator) -> None:
    system = "You answer questions about food in one short sentence, plainly, with no lists and no emoji."
    n_system = len(generator.prompt_tokens([{"role": "system", "content": system}, {"role": "user", "content": ""}]))
    before = _metric(server, 'llamabatch_tokens_total{kind="prompt_cached",model="%s"}' % ids["generation"])
    cached = []
    for question in ("Is rice a grain?", "Is tea a drink?", "Is bread baked?"):
        r = httpx.post(f"{server.url}/v1/chat/completions", timeout=120, json={
            "model": ids["generation"], "max_tokens": 4, "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}]})
        assert r.status_code == 200, r.text
        usage = r.json()["usage"]
        assert 0 <= usage["prompt_tokens_details"]["cached_tokens"] < usage["prompt_tokens"]
        cached.append(usage["prompt_tokens_details"]["cached_tokens"])
    # The first may find an empty slot; the later ones take the slot that holds the system prompt.
    assert min(cached[1:]) >= n_system - 8, cached
    after = _metric(server, 'llamabatch_tokens_total{kind="prompt_cached",model="%s"}' % ids["generation"])
    assert after - before == sum(cached)


def _metric(server: ServerProcess, series: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


# ---------------------------------------------------------------- batching across requests
def _concurrently(n: int, work: Any) -> list[Any]:
    """Runs work(i) on n threads released together; returns the results in order."""
    results: list[Any] = [None] * n
    start = threading.Barrier(n)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except Exception as e:  # noqa: BLE001 - reported by the caller's asserts
            results[i] = e
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_concurrent_embedding_requests_share_decodes(server: ServerProcess, ids: dict[str, str],
                                                    embedder: llamabatch.Embedder) -> None:
    texts = _texts(32)
    reference = embedder.encode(texts)
    decodes_before = server.metric("llamabatch_decodes_total", model=ids["embedding"])

    def one(i: int) -> np.ndarray:
        with httpx.Client(timeout=60) as c:
            r = c.post(f"{server.url}/v1/embeddings", json={"input": texts[i], "encoding_format": "float"})
            r.raise_for_status()
            return np.array(r.json()["data"][0]["embedding"], dtype=np.float32)
    rows = _concurrently(32, one)
    assert not [r for r in rows if isinstance(r, Exception)], rows
    decodes = server.metric("llamabatch_decodes_total", model=ids["embedding"]) - decodes_before
    assert 1 <= decodes < 32, f"32 single-text requests took {decodes} decodes: no batching across requests"
    assert _cosines(np.stack(rows), reference).min() >= 0.99999  # each client got its own text's row


def test_generation_request_joins_the_running_batch(server: ServerProcess, ids: dict[str, str]) -> None:
    model = ids["generation"]
    n_before = server.metric("llamabatch_sequences_per_decode_count", model=model)
    sum_before = server.metric("llamabatch_sequences_per_decode_sum", model=model)
    finished: dict[str, float] = {}

    with httpx.Client(timeout=120) as c:
        body = {"model": model, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 96, "temperature": 0, "stream": True}
        with c.stream("POST", f"{server.url}/v1/completions", json=body) as long_stream:
            lines = long_stream.iter_lines()
            chunks = 0
            for line in lines:  # the long request is running
                chunks += line.startswith("data: {")
                if chunks == 3:
                    break
            short = c.post(f"{server.url}/v1/completions",
                           json={"model": model, "prompt": "Tea is", "max_tokens": 8, "temperature": 0})
            finished["short"] = time.monotonic()
            assert short.status_code == 200
            rest = [line for line in lines if line.startswith("data: ")]
            finished["long"] = time.monotonic()
    assert rest[-1] == "data: [DONE]"
    assert finished["short"] < finished["long"], "the short request waited for the long one"
    n = server.metric("llamabatch_sequences_per_decode_count", model=model) - n_before
    total = server.metric("llamabatch_sequences_per_decode_sum", model=model) - sum_before
    assert n > 0 and total / n > 1.0, f"mean sequences per decode {total / max(n, 1):.2f}: the requests never shared one"


def test_disconnect_mid_stream_frees_the_slot(server: ServerProcess, ids: dict[str, str]) -> None:
    model = ids["generation"]
    tokens_before = server.metric("llamabatch_tokens_total", kind="completion", model=model)
    body = {"model": model, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 400, "temperature": 0, "stream": True}
    with httpx.Client(timeout=60) as c, c.stream("POST", f"{server.url}/v1/completions", json=body) as r:
        assert r.status_code == 200
        got = 0
        for line in r.iter_lines():
            got += line.startswith("data: {")
            if got == 2:
                break  # leaving the block closes the connection mid-stream
    deadline = time.monotonic() + 10
    while server.metric("llamabatch_running_sequences", model=model) > 0:
        assert time.monotonic() < deadline, "the slot of a gone client was never freed"
        time.sleep(0.05)
    time.sleep(0.3)
    generated = server.metric("llamabatch_tokens_total", kind="completion", model=model) - tokens_before
    assert generated < 200, f"{generated} tokens generated for a client that left after 2"


# ---------------------------------------------------------------- bad input: 4xx, never 500
BAD_EMBEDDINGS = [
    ({"input": []}, "empty list"),
    ({"input": 5}, "must be a string"),
    ({"input": [1, "a"]}, "mixes kinds"),
    ({"input": [[]]}, "empty list of token ids"),
    ({"input": [[1, 2, 99999999]]}, "outside the vocabulary"),
    ({"input": [[1, -2]]}, "outside"),
    ({"input": "word " * 600}, "above this model's limit of 512"),
    ({"input": None}, "got NoneType"),
    ({"input": "x", "dimensions": 10}, "'dimensions' 10"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"input": "x", "frobnicate": True}, "'frobnicate' is not supported"),
    ({}, "'input' is required"),
]
BAD_CHAT = [
    ({"messages": []}, "at least 1 item"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "max_completion_tokens": 2}, "not both"),
    ({"messages": [{"role": "user", "content": "hi"}], "seed": 7.5}, "seed"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "stream"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
    ({"messages": [{"role": "user"}]}, "content"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "'n' 2"),
    ({"messages": [{"role": "user", "content": "hi"}], "logprobs": True}, "'logprobs' is not supported"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 3}, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "top_p": 0}, "top_p"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": ["a", "b", "c", "d", "e"]}, "up to 4"),
    ({"messages": [{"role": "user", "content": "word " * 600}]}, "context is 512 tokens"),
]
BAD_COMPLETIONS = [
    ({"prompt": ""}, "gives no tokens"),
    ({"prompt": None}, "got NoneType"),
    ({"prompt": "hi", "max_tokens": "8"}, "max_tokens"),
    ({"prompt": []}, "empty list"),
    ({"prompt": [[5, 99999999]]}, "outside the vocabulary"),
    ({"prompt": "hi", "seed": -1}, "seed"),
    ({"prompt": "hi", "best_of": 2}, "'best_of' is not supported"),
]


@pytest.mark.parametrize("path,body,says", [("/v1/embeddings", b, s) for b, s in BAD_EMBEDDINGS]
                         + [("/v1/chat/completions", b, s) for b, s in BAD_CHAT]
                         + [("/v1/completions", b, s) for b, s in BAD_COMPLETIONS])
def test_bad_requests_get_400_naming_the_problem(server: ServerProcess, path: str, body: dict, says: str) -> None:
    r = httpx.post(f"{server.url}{path}", json=body, timeout=60)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert says in error["message"], error
    assert error["type"] == "invalid_request_error"


def test_malformed_bodies_and_paths(server: ServerProcess, ids: dict[str, str]) -> None:
    r = httpx.post(f"{server.url}/v1/embeddings", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/v1/embeddings")  # no body at all
    assert r.status_code == 400 and "'body' is required" in r.json()["error"]["message"]
    # A model that is not here, or cannot serve the endpoint: 404, as OpenAI answers.
    r = httpx.post(f"{server.url}/v1/embeddings", json={"input": "x", "model": ids["generation"]})
    assert r.status_code == 404 and "cannot serve /v1/embeddings" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/v1/embeddings", json={"input": "x", "model": "no-such-model"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found", r.text
    r = httpx.get(f"{server.url}/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(f"{server.url}/v1/embeddings")
    assert r.status_code == 405 and "error" in r.json() and r.headers["Allow"] == "POST"
    r = httpx.request("TRACE", f"{server.url}/health")
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    # Over the limit, but asked to truncate: the request's field, counted after the cut.
    r = httpx.post(f"{server.url}/v1/embeddings", json={"input": "word " * 600, "truncate": True})
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == 512


def test_what_the_schema_allows_is_accepted(server: ServerProcess, ids: dict[str, str]) -> None:
    """Corners the schema allows, each once (tests/test_openapi_schemathesis.py finds them):
    an integer written 7.0, a top_p under float32's range, stream_options without stream."""
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2.0, "seed": 7.0, "top_p": 5e-324,
            "stream_options": {"include_usage": True}}
    r = httpx.post(f"{server.url}/v1/chat/completions", json=chat, timeout=60)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 2, r.text
    r = httpx.post(f"{server.url}/v1/embeddings", json={"input": [[101.0, 2000, 102]]}, timeout=60)
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == 3, r.text


def test_openapi_states_the_served_models_facts(server: ServerProcess, embedder: llamabatch.Embedder,
                                                smollm: llamabatch.Model) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    schemas = doc["components"]["schemas"]
    embedding_input = schemas["EmbeddingRequest"]["properties"]["input"]["anyOf"]
    assert embedding_input[2]["items"]["maximum"] == embedder.model.n_vocab - 1
    assert schemas["EmbeddingRequest"]["properties"]["dimensions"]["anyOf"][0]["const"] == embedder.n_embd
    prompt = schemas["CompletionRequest"]["properties"]["prompt"]["anyOf"]
    assert prompt[0] == {"type": "string", "minLength": 1}  # SmolLM2 makes no tokens of ""
    assert prompt[3]["items"]["items"]["maximum"] == smollm.n_vocab - 1
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
            if method == "post":
                assert {"400", "404", "413", "429", "503"} <= set(operation["responses"]), (method, path)
    assert list(doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain; version=0.0.4"]
    assert "text/event-stream" in doc["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert "securitySchemes" not in doc["components"]  # no --api-key here


def test_access_log_has_a_line_per_request(server: ServerProcess) -> None:
    httpx.post(f"{server.url}/v1/embeddings", json={"input": ["a cup of tea", "espresso"]}).raise_for_status()
    time.sleep(0.2)
    lines = [line for line in server.log().splitlines() if '"POST /v1/embeddings" 200' in line]
    assert lines and re.search(r"inputs=2 tokens=\d+ queue_ms=[\d.]+ compute_ms=[\d.]+", lines[-1]), lines[-3:]
    assert " 500 " not in server.log()


# ---------------------------------------------------------------- limits: 401, 413, 429
@pytest.fixture(scope="module")
def strict_server(minilm_path: str):
    s = ServerProcess("--embedding-model", minilm_path, "--api-key", "sesame", "--max-request-bytes", "20000",
                      "--max-queued-tokens", "300", "--max-concurrent-requests", "2", "--no-access-log").wait_ready()
    yield s
    assert s.stop() == 0, s.log()[-3000:]


AUTH = {"Authorization": "Bearer sesame"}


def test_api_key_is_required_except_for_health(strict_server: ServerProcess) -> None:
    url = strict_server.url
    assert httpx.get(f"{url}/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sesame"}):
        r = httpx.post(f"{url}/v1/embeddings", json={"input": "x"}, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{url}/metrics").status_code == 401
    ok = openai.OpenAI(base_url=f"{url}/v1", api_key="sesame", max_retries=0).embeddings.create(model=_model(url),
                                                                                                  input="x")
    assert len(ok.data[0].embedding) == 384
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).embeddings.create(model=_model(url),
                                                                                               input="x")


def _model(url: str) -> str:
    return httpx.get(f"{url}/v1/models", headers=AUTH).json()["data"][0]["id"]


def test_request_over_the_byte_limit_gets_413(strict_server: ServerProcess) -> None:
    big = {"input": ["tea " * 100] * 60}  # about 24 kB of JSON
    r = httpx.post(f"{strict_server.url}/v1/embeddings", json=big, headers=AUTH)
    assert r.status_code == 413 and "--max-request-bytes" in r.json()["error"]["message"]

    def chunked():  # no Content-Length: the limit holds while the body streams in
        for _ in range(30):
            yield b" " * 1000
    r = httpx.post(f"{strict_server.url}/v1/embeddings", content=chunked(), headers=AUTH)
    assert r.status_code == 413


def test_full_queue_gets_429_with_retry_after(strict_server: ServerProcess) -> None:
    url = strict_server.url
    r = httpx.post(f"{url}/v1/embeddings", json={"input": ["a long sentence about tea and coffee"] * 40},
                   headers=AUTH)
    assert r.status_code == 400 and "--max-queued-tokens" in r.json()["error"]["message"]

    def one(i: int) -> httpx.Response:
        with httpx.Client(timeout=60) as c:
            return c.post(f"{url}/v1/embeddings", json={"input": [f"sentence {i} about tea"] * 16}, headers=AUTH)
    responses = _concurrently(24, one)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[429] >= 1 and statuses[200] >= 1, statuses
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["Retry-After"].isdigit() and refused.json()["error"]["type"] == "rate_limit_error"


# ---------------------------------------------------------------- shutdown
def test_sigterm_under_load_answers_what_it_accepted(minilm_path: str, smollm_path: str) -> None:
    s = ServerProcess("--embedding-model", minilm_path, "--model", smollm_path, "--n-ctx", str(N_CTX),
                      "--shutdown-timeout", "30").wait_ready()
    outcomes: list[Any] = []
    stream_lines: list[str] = []
    deadline = time.monotonic() + 30

    def embed_loop() -> None:
        with httpx.Client(timeout=60) as c:
            for i in range(300):  # bounded in count and in time
                if time.monotonic() > deadline:
                    return
                try:
                    outcomes.append(c.post(f"{s.url}/v1/embeddings", json={"input": [f"text {i}"] * 32}).status_code)
                except httpx.TransportError as e:  # the server stopped accepting: a clean refusal
                    outcomes.append(type(e).__name__)
                    return

    def stream() -> None:
        body = {"prompt": "1, 2, 3, 4, 5,", "max_tokens": 64, "temperature": 0, "stream": True}
        with httpx.Client(timeout=60) as c, c.stream("POST", f"{s.url}/v1/completions", json=body) as r:
            stream_lines.extend(line for line in r.iter_lines() if line.startswith("data: "))

    threads = [threading.Thread(target=embed_loop) for _ in range(3)] + [threading.Thread(target=stream)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    rc = s.stop(timeout=40)
    took = time.monotonic() - t0
    for t in threads:
        t.join(60)
    log = s.log()
    assert rc == 0 and took < 30, (rc, took, log[-2000:])
    served = sum(1 for line in log.splitlines() if '"POST /v1/embeddings" 200' in line)
    assert outcomes.count(200) == served > 0, (Counter(map(str, outcomes)), served)
    assert all(o == 200 or isinstance(o, str) for o in outcomes), Counter(map(str, outcomes))
    assert stream_lines and stream_lines[-1] == "data: [DONE]", stream_lines[-3:]  # the stream in flight finished
    assert " 500 " not in log


def test_a_model_that_fails_to_load_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    s = ServerProcess("--embedding-model", str(bad))
    try:
        rc = s.proc.wait(60)
    finally:
        s.kill()
    assert rc == 1
    assert "could not load the models" in s.log()


GEMMA_LIKE = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
              "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
              "<|im_start|>assistant\n")


def test_a_template_refusing_the_messages_is_a_400(smollm_path: str, tmp_path: Path) -> None:
    """--chat-template (here a file) renders /v1/chat/completions; its raise_exception
    is a 400 in OpenAI's shape naming the model and the reason, never a 500."""
    template = tmp_path / "gemma_like.jinja"
    template.write_text(GEMMA_LIKE, encoding="utf-8")
    s = ServerProcess("--model", smollm_path, "--n-parallel", "1", "--n-ctx", "256",
                      "--chat-template", str(template)).wait_ready()
    try:
        url = f"{s.url}/v1/chat/completions"
        r = httpx.post(url, json={"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}],
                                  "max_tokens": 2}, timeout=60)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert "refused these messages: System role not supported" in error["message"]
        assert Path(smollm_path).name in error["message"]
        assert error["type"] == "invalid_request_error" and error["param"] == "messages"
        ok = httpx.post(url, json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}, timeout=60)
        assert ok.status_code == 200, ok.text
    finally:
        assert s.stop() == 0, s.log()[-3000:]
