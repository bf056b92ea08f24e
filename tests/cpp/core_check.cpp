// Exercises the C++ core end to end for the sanitizer and valgrind runs:
// batches and their error paths, a dry-run engine, embeddings with a real model
// (every pooling the model offers, truncation, bad input), WordPiece ids, create-and-drop
// cycles, and generation when a generation model is given.
//
//   core_check EMBEDDING_MODEL.gguf [GENERATION_MODEL.gguf]
//
// Prints "core_check: OK" and exits 0 when every check holds; any sanitizer
// report makes the run fail on its own (halt_on_error / exit code).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llamabatch/batch.h"
#include "llamabatch/chat.h"
#include "llamabatch/context.h"
#include "llamabatch/devices.h"
#include "llamabatch/embed.h"
#include "llamabatch/engine.h"
#include "llamabatch/errors.h"
#include "llamabatch/generate.h"
#include "llamabatch/model.h"
#include "llamabatch/tokenizer.h"

namespace lb = llamabatch;

namespace {

int g_failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what);
        ++g_failures;
    }
}

// Runs f and checks that it throws E (the typed errors the bindings map to Python).
template <typename E, typename F>
void expect_throw(F&& f, const char* what) {
    try {
        f();
    } catch (const E&) {
        return;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "FAILED: %s: wrong exception: %s\n", what, e.what());
        ++g_failures;
        return;
    }
    std::fprintf(stderr, "FAILED: %s: nothing thrown\n", what);
    ++g_failures;
}

class CountingSink final : public lb::Sink {
public:
    void on_sequence(lb::Context*, size_t input_index, llama_seq_id, int32_t, int32_t) override {
        order.push_back(input_index);
    }
    std::vector<size_t> order;
};

void check_batches() {
    lb::Batch b(16, 4);
    const llama_token toks[] = {1, 2, 3, 4, 5};
    b.add_sequence(toks, 5, 0);
    b.add_sequence(toks, 3, 1, 7);
    check(b.n_tokens() == 8 && b.n_seqs() == 2, "add_sequence counts");
    check(b.positions()[5] == 7, "positions start at pos0");
    check(b.fits(8, 2) && !b.fits(9, 1), "fits by tokens");
    expect_throw<lb::InvalidArgument>([&] { b.add_sequence(toks, 5, 9); }, "seq id out of range");
    expect_throw<lb::InvalidArgument>([&] { b.add_sequence(toks, 5, 2, 0); b.add_sequence(toks, 5, 3); },
                                      "over capacity");
    lb::Batch::Limits limits;
    limits.n_vocab = 4;
    expect_throw<lb::InvalidArgument>([&] { b.validate(limits); }, "token outside the vocabulary");
    b.clear();
    check(b.n_tokens() == 0, "clear");
    expect_throw<lb::InvalidArgument>([] { lb::Batch bad(0); }, "zero capacity");
}

void check_dry_run() {
    std::vector<std::vector<llama_token>> seqs;
    for (int i = 0; i < 200; ++i) seqs.emplace_back(static_cast<size_t>(1 + i % 13), 7);
    std::vector<lb::TokenSpan> spans;
    for (const auto& s : seqs) spans.push_back({s.data(), static_cast<int32_t>(s.size())});
    lb::Engine engine(32, 4);
    CountingSink sink;
    engine.run(spans, sink);
    bool in_order = sink.order.size() == spans.size();
    for (size_t i = 0; in_order && i < sink.order.size(); ++i) in_order = sink.order[i] == i;
    check(in_order, "dry run keeps input order");
    std::vector<llama_token> too_long(40, 7);
    spans.push_back({too_long.data(), 40});
    expect_throw<lb::InvalidArgument>([&] { engine.run(spans, sink); }, "sequence longer than the batch");
}

// The device list always starts with the CPU; a model goes where resolve_gpu_layers says.
void check_devices(const char* path) {
    const std::vector<lb::Device> found = lb::devices();
    check(!found.empty() && found[0].name == "cpu" && found[0].kind == "cpu", "the CPU is the first device");
    check(!lb::build_info().llama_cpp.empty(), "build info names llama.cpp's features");
    const bool gpu = !lb::gpus().empty();
    check(lb::resolve_gpu_layers(std::nullopt) == (gpu ? -1 : 0), "default placement follows the GPUs found");
    check(lb::resolve_gpu_layers(0) == 0 && lb::resolve_gpu_layers(5) == 5, "an explicit count is kept");
    lb::ModelOptions on_cpu;
    on_cpu.n_gpu_layers = 0;
    check(lb::Model(path, on_cpu).device() == "cpu", "n_gpu_layers 0 keeps the model on the CPU");
    lb::ModelOptions bad;
    bad.n_gpu_layers = -2;
    expect_throw<lb::InvalidArgument>([&] { lb::Model m(path, bad); }, "n_gpu_layers below -1");
}

// WordPiece gives the reference tokenizer's ids (Hugging Face's, for all-MiniLM-L6-v2).
void check_wordpiece(const char* path) {
    lb::ModelOptions vocab;
    vocab.vocab_only = true;
    const lb::Model model(path, vocab);
    check(model.wordpiece() != nullptr, "a BERT vocabulary gets the WordPiece tokenizer");
    using Ids = std::vector<llama_token>;
    check(lb::tokenize_text(model, "오늘 저녁") == Ids{101, 1463, 30011, 29992, 30017, 30022, 1464, 30008, 29992, 30010,
                                                    30020, 102},
          "Hangul syllables decompose into jamo, as the reference does");
    check(lb::tokenize_text(model, "की चाय") == Ids{101, 1315, 29878, 1318, 29876, 29868, 102},
          "spacing vowel signs are kept");
    const std::string special = "[CLS] Naïve" + std::string(101, 'x');
    check(lb::tokenize_text(model, special, true, true) == Ids{101, 101, 100, 102},
          "special-token text parsed; a word over 100 characters is [UNK]");
    check(lb::tokenize_text(model, std::string("a\xff\xfe b")) == lb::tokenize_text(model, "a b"),
          "malformed UTF-8 bytes are dropped like U+FFFD");
}

void check_embeddings(const char* path) {
    lb::Model model(path);
    const std::vector<std::string_view> texts = {
        "A cat sits on the mat.", "", "naïve café — 東京 🍜", "The stock market fell sharply today.",
        "How do I bake sourdough bread?"};
    for (const lb::PoolingType pooling : {LLAMA_POOLING_TYPE_UNSPECIFIED, LLAMA_POOLING_TYPE_CLS,
                                          LLAMA_POOLING_TYPE_NONE}) {
        lb::ContextOptions options;
        options.n_seq_max = 2;
        options.pooling = pooling;
        lb::Embedder embedder(model, options);
        lb::TokenizedTexts tokens = embedder.prepare(embedder.tokenize(texts), 0);
        const size_t rows = pooling == LLAMA_POOLING_TYPE_NONE ? tokens.tokens.size() : tokens.size();
        std::vector<float> out(rows * static_cast<size_t>(embedder.n_embd()));
        embedder.embed(tokens, out.data(), lb::kNormL2);
        bool finite = true;
        for (float v : out) finite = finite && std::isfinite(v);
        check(finite, "embeddings are finite");
        if (pooling != LLAMA_POOLING_TYPE_NONE) {  // the streaming path: tokenized chunk by chunk
            std::vector<float> streamed(out.size());
            embedder.encode(texts, 0, streamed.data(), lb::kNormL2);
            bool same = true;
            for (size_t i = 0; i < out.size(); ++i) same = same && std::fabs(out[i] - streamed[i]) < 1e-5f;
            check(same, "encode (streamed) equals prepare + embed");
        }
        // embed_texts picks the path the pooling needs: the same rows either way.
        const lb::EmbeddingRows picked = embedder.embed_texts(texts, 0, lb::kNormL2);
        check(picked.rows == rows && picked.width == static_cast<size_t>(embedder.n_embd()), "embed_texts shape");
        check((pooling == LLAMA_POOLING_TYPE_NONE) == !picked.offsets.empty(), "offsets only for per-token rows");
        bool same_rows = true;
        for (size_t i = 0; i < out.size(); ++i) same_rows = same_rows && std::fabs(out[i] - picked.data[i]) < 1e-5f;
        check(same_rows, "embed_texts equals prepare + embed");
    }

    lb::Embedder embedder(model, lb::ContextOptions{});
    std::string long_text;
    for (int i = 0; i < 900; ++i) long_text += "word ";
    const std::vector<std::string_view> long_texts = {"short", long_text};
    expect_throw<lb::InvalidArgument>([&] { embedder.prepare(embedder.tokenize(long_texts), 0); },
                                      "over-long text without truncation");
    lb::TokenizedTexts cut = embedder.prepare(embedder.tokenize(long_texts), 64);
    check(cut.length(1) == 64, "truncated to 64 tokens");
    const lb::EmbeddingRows from_ids = embedder.embed_sequences(embedder.tokenize(long_texts), 64, lb::kNormL2);
    check(from_ids.rows == 2 && from_ids.lengths.size() == 2 && from_ids.lengths[1] == 64,
          "embed_sequences reports lengths after truncation");
    lb::TokenizedTexts bad_ids;
    bad_ids.tokens = {101, model.n_vocab(), 102};
    bad_ids.offsets = {0, 3};
    expect_throw<lb::InputError>([&] { embedder.embed_sequences(bad_ids, 0, lb::kNormL2); },
                                 "a token id outside the vocabulary");
    std::vector<float> out(2 * static_cast<size_t>(embedder.n_embd()));
    embedder.embed(cut, out.data(), lb::kNormL2);

    // A batch of narrower embeddings than the model reads is refused before
    // llama.cpp could read past its buffer (ASan would report that read).
    lb::Batch narrow(4, 1, 7);
    narrow.set_n_tokens(2);
    for (int32_t i = 0; i < 2; ++i) {
        narrow.n_seq_ids()[i] = 1;
        narrow.seq_ids()[i] = 0;  // row i, first seq id (n_seq_max 1)
        narrow.positions()[i] = i;
    }
    expect_throw<lb::InvalidArgument>([&] { embedder.context().decode(narrow); }, "embeddings of the wrong width");

    lb::ContextOptions too_many;
    too_many.n_seq_max = 100000;
    expect_throw<lb::InvalidArgument>([&] { lb::Embedder bad(model, too_many); }, "n_seq_max above the limit");

    for (int i = 0; i < 20; ++i) {  // create-and-drop: leaks show up in the sanitizer's exit report
        lb::Embedder e(model, lb::ContextOptions{});
        (void)e.n_embd();
    }
    expect_throw<lb::NotFound>([] { lb::Model missing("/nonexistent/model.gguf"); }, "missing model file");
}

void check_generation(const char* path) {
    lb::Model model(path);
    lb::GenerationOptions options;
    options.n_parallel = 3;
    options.n_ctx = 128;
    lb::Generator generator(model, options);
    std::vector<lb::GenerationRequest> requests(5);
    const char* prompts[] = {"1, 2, 3,", "The capital of France is", "Tea is", "Once upon a time", "A, B, C,"};
    for (size_t i = 0; i < requests.size(); ++i) {
        requests[i].prompt = lb::plain_prompt_tokens(model, prompts[i]);
        requests[i].max_new_tokens = 6 + static_cast<int32_t>(i);
        requests[i].stop = {"\n\n"};
    }
    requests[2].sampling.temperature = 0.8f;
    requests[2].sampling.seed = 42;
    const auto results = generator.run(requests);
    check(results.size() == requests.size(), "a result per prompt");
    for (size_t i = 0; i < results.size(); ++i) {
        check(results[i].tokens.size() <= static_cast<size_t>(requests[i].max_new_tokens), "max_new_tokens");
    }
    if (!model.chat_template().empty()) {
        const auto chat = lb::chat_prompt_tokens(model, {{"user", "Hello"}});
        check(!chat.empty(), "chat template applied");
        // prompt_tokens: a text is a user message with chat, plain without; a system message comes first.
        lb::Prompt text;
        text.text = "Hello";
        check(lb::prompt_tokens(model, text, true, std::nullopt) == chat, "chat=true: the text as a user message");
        check(lb::prompt_tokens(model, text, false, std::nullopt) == lb::plain_prompt_tokens(model, "Hello"),
              "chat=false: a plain prompt");
        lb::Prompt messages;
        messages.is_messages = true;
        messages.messages = {{"user", "Hello"}};
        check(lb::prompt_tokens(model, messages, false, std::nullopt) == chat, "messages always use the template");
        check(lb::prompt_tokens(model, messages, false, std::string("Be brief.")) ==
                  lb::chat_prompt_tokens(model, {{"system", "Be brief."}, {"user", "Hello"}}),
              "the system message comes first");
    }
    std::vector<lb::GenerationRequest> too_long(1);
    too_long[0].prompt.assign(500, requests[0].prompt.back());
    expect_throw<lb::InvalidArgument>([&] { generator.run(too_long); }, "prompt longer than the context");
    expect_throw<lb::InvalidArgument>([&] { generator.submit(too_long[0]); }, "submit checks like run");

    // The incremental API: the same requests submitted one decode apart give
    // run()'s results, and each request's streamed text joins to its result.
    std::vector<lb::RequestId> ids;
    std::vector<std::string> streamed(requests.size());
    std::vector<lb::GenerationResult> finished(requests.size());
    std::vector<bool> done(requests.size(), false);
    size_t next = 0;
    int steps = 0;
    while (next < requests.size() || !generator.idle()) {
        if (next < requests.size()) ids.push_back(generator.submit(requests[next++]));
        for (auto& ev : generator.step()) {
            const size_t i = static_cast<size_t>(std::find(ids.begin(), ids.end(), ev.id) - ids.begin());
            check(i < ids.size() && !done[i], "an event names a live request");
            streamed[i] += ev.text;
            if (ev.finished) {
                done[i] = true;
                finished[i] = std::move(ev.result);
            }
        }
        check(++steps < 10000, "step() finishes");
    }
    for (size_t i = 0; i < requests.size(); ++i) {
        check(done[i], "every submitted request finishes");
        check(finished[i].tokens == results[i].tokens, "submit/step gives run()'s tokens");
        check(finished[i].text == results[i].text && streamed[i] == results[i].text, "streamed text joins to the result");
        check(finished[i].finish == results[i].finish, "same finish reason");
    }

    // cancel(): a running request frees its slot at once; a queued one is dropped.
    const lb::RequestId running = generator.submit(requests[0]);
    (void)generator.step();
    check(generator.n_running() == 1, "a submitted request runs after one step");
    check(generator.cancel(running) && generator.idle(), "cancel frees the slot");
    check(!generator.cancel(running), "cancel of a finished request is false");
    const lb::RequestId queued = generator.submit(requests[1]);
    check(generator.n_queued() == 1 && generator.cancel(queued) && generator.idle(), "cancel drops a queued request");
    const auto again = generator.run({requests[0]});
    check(again[0].tokens == results[0].tokens, "run() after cancels gives the same tokens");
    (void)generator.submit(requests[0]);
    expect_throw<lb::InvalidArgument>([&] { generator.run({requests[1]}); }, "run() refuses while requests are in flight");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: %s EMBEDDING_MODEL.gguf [GENERATION_MODEL.gguf]\n", argv[0]);
        return 2;
    }
    try {
        check_batches();
        check_dry_run();
        check_devices(argv[1]);
        check_wordpiece(argv[1]);
        check_embeddings(argv[1]);
        if (argc == 3) check_generation(argv[2]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "FAILED: unexpected exception: %s\n", e.what());
        return 1;
    }
    if (g_failures != 0) {
        std::fprintf(stderr, "core_check: %d check(s) failed\n", g_failures);
        return 1;
    }
    std::printf("core_check: OK%s\n", argc == 3 ? " (embeddings and generation)" : " (embeddings)");
    return 0;
}
