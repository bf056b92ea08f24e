#include "llamabatch/tokenizer.h"

#include <algorithm>
#include <climits>
#include <string>
#include <thread>

#include "llamabatch/errors.h"

namespace llamabatch {

namespace {

// Tokenizes one text, appending to out.
void append_tokens(const Model& model, std::string_view text, bool add_special, bool parse_special,
                   std::vector<llama_token>& out, bool llama_cpp = false) {
    if (text.size() > static_cast<size_t>(INT32_MAX / 2)) {
        throw InvalidArgument("a text of " + std::to_string(text.size()) + " bytes is too long to tokenize");
    }
    if (const WordPiece* wordpiece = model.wordpiece(); wordpiece && !llama_cpp) {
        wordpiece->tokenize(text, add_special, parse_special, out);
        return;
    }
    const llama_vocab* vocab = model.vocab();
    const auto len = static_cast<int32_t>(text.size());
    const size_t start = out.size();
    // A token covers at least one byte, plus a few special tokens.
    out.resize(start + static_cast<size_t>(len) + 8);
    int32_t n = llama_tokenize(vocab, text.data(), len, out.data() + start, static_cast<int32_t>(out.size() - start),
                               add_special, parse_special);
    if (n < 0 && n != INT32_MIN) {
        out.resize(start + static_cast<size_t>(-n));
        n = llama_tokenize(vocab, text.data(), len, out.data() + start, -n, add_special, parse_special);
    }
    if (n < 0) throw RuntimeFailure("llama_tokenize failed on a text of " + std::to_string(len) + " bytes");
    out.resize(start + static_cast<size_t>(n));
}

TokenizedTexts tokenize_range(const Model& model, const std::vector<std::string_view>& texts, size_t begin,
                              size_t end, bool add_special, bool parse_special, bool llama_cpp) {
    TokenizedTexts part;
    part.offsets.reserve(end - begin + 1);
    for (size_t i = begin; i < end; ++i) {
        append_tokens(model, texts[i], add_special, parse_special, part.tokens, llama_cpp);
        part.offsets.push_back(static_cast<int64_t>(part.tokens.size()));
    }
    return part;
}

bool is_closing_special(const llama_vocab* vocab, llama_token t) {
    return t == llama_vocab_sep(vocab) || t == llama_vocab_eos(vocab) || llama_vocab_is_control(vocab, t);
}

}  // namespace

std::vector<TokenSpan> TokenizedTexts::spans() const {
    std::vector<TokenSpan> out(size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = {data(i), length(i)};
    return out;
}

std::vector<llama_token> tokenize_text(const Model& model, std::string_view text, bool add_special,
                                       bool parse_special) {
    std::vector<llama_token> out;
    append_tokens(model, text, add_special, parse_special, out);
    return out;
}

TokenizedTexts tokenize_texts(const Model& model, const std::vector<std::string_view>& texts, bool add_special,
                              bool parse_special, int n_threads, bool llama_cpp) {
    size_t total_bytes = 0;
    for (auto t : texts) total_bytes += t.size();
    // Threads pay only when there is enough text to share out (~64 KB each).
    const size_t by_work = std::max<size_t>(1, total_bytes / 65536);
    size_t threads = n_threads > 0 ? static_cast<size_t>(n_threads)
                                   : std::max(1u, std::thread::hardware_concurrency());
    threads = std::min({threads, by_work, std::max<size_t>(texts.size(), 1)});
    if (threads <= 1) return tokenize_range(model, texts, 0, texts.size(), add_special, parse_special, llama_cpp);

    std::vector<TokenizedTexts> parts(threads);
    std::vector<std::exception_ptr> errors(threads);
    std::vector<std::thread> workers;
    const size_t chunk = (texts.size() + threads - 1) / threads;
    for (size_t t = 0; t < threads; ++t) {
        const size_t begin = std::min(texts.size(), t * chunk), end = std::min(texts.size(), begin + chunk);
        workers.emplace_back([&, t, begin, end] {
            try {
                parts[t] = tokenize_range(model, texts, begin, end, add_special, parse_special, llama_cpp);
            } catch (...) {
                errors[t] = std::current_exception();
            }
        });
    }
    for (auto& w : workers) w.join();
    for (auto& e : errors) {
        if (e) std::rethrow_exception(e);
    }

    TokenizedTexts all;
    size_t n_tokens = 0;
    for (auto& p : parts) n_tokens += p.tokens.size();
    all.tokens.reserve(n_tokens);
    all.offsets.reserve(texts.size() + 1);
    for (auto& p : parts) {
        const auto base = static_cast<int64_t>(all.tokens.size());
        all.tokens.insert(all.tokens.end(), p.tokens.begin(), p.tokens.end());
        for (size_t i = 1; i < p.offsets.size(); ++i) all.offsets.push_back(base + p.offsets[i]);
    }
    return all;
}

TokenizedTexts truncate_texts(const llama_vocab* vocab, const TokenizedTexts& in, int32_t max_tokens) {
    if (max_tokens < 1) throw InvalidArgument("truncation length must be at least 1, got " + std::to_string(max_tokens));
    TokenizedTexts out;
    out.tokens.reserve(in.tokens.size());
    out.offsets.reserve(in.offsets.size());
    for (size_t i = 0; i < in.size(); ++i) {
        const llama_token* t = in.data(i);
        const int32_t n = in.length(i);
        if (n <= max_tokens) {
            out.tokens.insert(out.tokens.end(), t, t + n);
        } else if (max_tokens >= 2 && is_closing_special(vocab, t[n - 1])) {
            out.tokens.insert(out.tokens.end(), t, t + max_tokens - 1);
            out.tokens.push_back(t[n - 1]);
        } else {
            out.tokens.insert(out.tokens.end(), t, t + max_tokens);
        }
        out.offsets.push_back(static_cast<int64_t>(out.tokens.size()));
    }
    return out;
}

}  // namespace llamabatch
