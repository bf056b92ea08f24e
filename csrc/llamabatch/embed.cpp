#include "llamabatch/embed.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "llamabatch/errors.h"

namespace llamabatch {

void normalize_embedding(const float* in, float* out, int32_t n, int norm) {
    double sum = 0.0;
    switch (norm) {
        case kNormNone:
            sum = 1.0;
            break;
        case kNormMaxAbs:
            for (int32_t i = 0; i < n; ++i) sum = std::max(sum, static_cast<double>(std::fabs(in[i])));
            sum /= 32760.0;  // int16 range, as llama.cpp does
            break;
        case kNormTaxicab:
            for (int32_t i = 0; i < n; ++i) sum += std::fabs(in[i]);
            break;
        case kNormL2:
            for (int32_t i = 0; i < n; ++i) sum += static_cast<double>(in[i]) * in[i];
            sum = std::sqrt(sum);
            break;
        default:
            for (int32_t i = 0; i < n; ++i) sum += std::pow(std::fabs(in[i]), norm);
            sum = std::pow(sum, 1.0 / norm);
            break;
    }
    const double scale = sum > 0.0 ? 1.0 / sum : 0.0;
    for (int32_t i = 0; i < n; ++i) out[i] = static_cast<float>(in[i] * scale);
}

namespace {

// llama.cpp has produced all-NaN embeddings for some models and settings; a
// NaN row must stop the run with the text's index, not reach the user's index.
void check_finite(const float* row, int32_t width, size_t input_index) {
    for (int32_t i = 0; i < width; ++i) {
        if (!std::isfinite(row[i])) {
            throw RuntimeFailure("text " + std::to_string(input_index) +
                                 " gave a non-finite embedding (NaN or inf) from llama.cpp; the model file may be "
                                 "damaged or its precision too low for these settings: try flash_attn=False, an "
                                 "f16/f32 copy of the model, or check the file with llamabatch.models");
        }
    }
}

const float* token_row(Context* ctx, int32_t i) {
    const float* v = llama_get_embeddings_ith(ctx->get(), i);
    if (!v) throw RuntimeFailure("llama.cpp returned no embedding for token " + std::to_string(i));
    return v;
}

// Pools a sequence's token rows [first, first + n_tokens) of the last decode
// into out: in token order, in double, so that the result depends on this
// sequence's rows alone (batch invariance; llama.cpp's mean pooling is one
// matrix product over the whole batch, whose sums depend on where the
// sequence sits in it).
void pool_token_rows(Context* ctx, PoolingType pooling, int32_t first, int32_t n_tokens, int32_t width,
                     std::vector<double>& sum, float* out) {
    if (pooling == LLAMA_POOLING_TYPE_CLS || pooling == LLAMA_POOLING_TYPE_LAST) {
        const float* v = token_row(ctx, pooling == LLAMA_POOLING_TYPE_CLS ? first : first + n_tokens - 1);
        std::memcpy(out, v, static_cast<size_t>(width) * sizeof(float));
        return;
    }
    sum.assign(static_cast<size_t>(width), 0.0);
    for (int32_t k = 0; k < n_tokens; ++k) {
        const float* v = token_row(ctx, first + k);
        for (int32_t d = 0; d < width; ++d) sum[static_cast<size_t>(d)] += v[d];
    }
    for (int32_t d = 0; d < width; ++d) out[d] = static_cast<float>(sum[static_cast<size_t>(d)] / n_tokens);
}

// Writes each sequence's pooled vector into row input_index: llama.cpp's, or
// with batch invariance, pooled here from the token rows.
class PooledRows final : public Sink {
public:
    PooledRows(float* out, int32_t width, int norm, const ContextSettings& settings)
        : out_(out), width_(width), norm_(norm), pooling_(settings.pooling),
          pool_here_(settings.llama_pooling() == LLAMA_POOLING_TYPE_NONE) {}
    void on_sequence(Context* ctx, size_t input_index, llama_seq_id seq_id, int32_t first, int32_t n_tokens) override {
        const float* v = nullptr;
        if (pool_here_) {
            pooled_.resize(static_cast<size_t>(width_));
            pool_token_rows(ctx, pooling_, first, n_tokens, width_, sum_, pooled_.data());
            v = pooled_.data();
        } else {
            v = llama_get_embeddings_seq(ctx->get(), seq_id);
            if (!v) throw RuntimeFailure("llama.cpp returned no pooled embedding for sequence " + std::to_string(seq_id));
        }
        float* row = out_ + input_index * static_cast<size_t>(width_);
        normalize_embedding(v, row, width_, norm_);
        check_finite(row, width_, input_index);
    }
    bool on_flush(size_t n_done) override { return progress ? progress(n_done) : true; }
    ProgressFn progress;

private:
    float* out_;
    int32_t width_;
    int norm_;
    PoolingType pooling_;
    bool pool_here_;
    std::vector<float> pooled_;
    std::vector<double> sum_;
};

// Writes each token's vector into the rows that belong to its text.
class TokenRows final : public Sink {
public:
    TokenRows(float* out, const std::vector<int64_t>& offsets, int32_t width, int norm)
        : out_(out), offsets_(offsets), width_(width), norm_(norm) {}
    void on_sequence(Context* ctx, size_t input_index, llama_seq_id, int32_t first, int32_t n_tokens) override {
        float* row = out_ + static_cast<size_t>(offsets_[input_index]) * static_cast<size_t>(width_);
        for (int32_t k = 0; k < n_tokens; ++k) {
            const float* v = token_row(ctx, first + k);
            normalize_embedding(v, row + static_cast<size_t>(k) * static_cast<size_t>(width_), width_, norm_);
        }
        check_finite(row, width_ * n_tokens, input_index);
    }
    bool on_flush(size_t n_done) override { return progress ? progress(n_done) : true; }
    ProgressFn progress;

private:
    float* out_;
    const std::vector<int64_t>& offsets_;
    int32_t width_;
    int norm_;
};

// A chunk ends after this many texts or bytes, whichever comes first (and holds
// at least one text): a few MB of tokens at most, yet long enough that starting
// tokenizer threads per chunk costs nothing measurable.
constexpr size_t kChunkTexts = 4096;
constexpr size_t kChunkBytes = size_t{4} << 20;

size_t chunk_end(const std::vector<std::string_view>& texts, size_t begin) {
    size_t end = begin, bytes = 0;
    while (end < texts.size() && end - begin < kChunkTexts && (end == begin || bytes + texts[end].size() <= kChunkBytes)) {
        bytes += texts[end].size();
        ++end;
    }
    return end;
}

// Gives the engine the texts' tokens in input order, tokenizing (and checking
// or truncating) one chunk when the one before is used up.
class ChunkedTexts final : public SequenceSource {
public:
    ChunkedTexts(const Embedder& embedder, const std::vector<std::string_view>& texts, int32_t truncate_to)
        : embedder_(embedder), texts_(texts), truncate_to_(truncate_to) {}

    bool next(TokenSpan& seq) override {
        while (pos_ == chunk_.size()) {
            if (end_ == texts_.size()) return false;
            load(end_);
        }
        seq = {chunk_.data(pos_), chunk_.length(pos_)};
        ++pos_;
        return true;
    }

    // Tokenizes and checks every text, chunk by chunk, so that a bad one throws
    // before the first decode (an error at text 90,000 must not come after
    // minutes of work), then goes back to the first text. When all texts fit
    // in one chunk, the usual case, that chunk is kept rather than made again.
    void check_all() {
        while (end_ < texts_.size()) load(end_);
        if (begin_ != 0) {
            chunk_ = TokenizedTexts{};
            end_ = 0;
        }
        pos_ = 0;
    }

private:
    // Tokenizes texts [begin, chunk_end) into the chunk (dropping the last one).
    void load(size_t begin) {
        begin_ = begin;
        end_ = chunk_end(texts_, begin);
        views_.assign(texts_.begin() + static_cast<std::ptrdiff_t>(begin),
                      texts_.begin() + static_cast<std::ptrdiff_t>(end_));
        chunk_ = TokenizedTexts{};  // free the old chunk before making the next
        chunk_ = embedder_.prepare(embedder_.tokenize(views_), truncate_to_, begin);
        pos_ = 0;
    }

    const Embedder& embedder_;
    const std::vector<std::string_view>& texts_;
    int32_t truncate_to_;
    std::vector<std::string_view> views_;
    TokenizedTexts chunk_;
    size_t pos_ = 0, begin_ = 0, end_ = 0;  // chunk_ holds texts [begin_, end_)
};

}  // namespace

Embedder::Embedder(Model& model, ContextOptions options, bool parse_special)
    : model_(model), parse_special_(parse_special) {
    options.embeddings = true;
    context_ = std::make_unique<Context>(model, options);
    engine_ = std::make_unique<Engine>(*context_, Output::All);
    n_out_ = pooling() == LLAMA_POOLING_TYPE_RANK ? static_cast<int32_t>(llama_model_n_cls_out(model.get()))
                                                  : model.n_embd_out();
}

TokenizedTexts Embedder::tokenize(const std::vector<std::string_view>& texts) const {
    return tokenize_texts(model_, texts, true, parse_special_, settings().n_threads);
}

TokenizedTexts Embedder::prepare(TokenizedTexts texts, int32_t truncate_to, size_t first_index) const {
    const int32_t limit = max_tokens();
    if (truncate_to < 0) throw InvalidArgument("truncate must be True, False or a positive token count");
    bool too_long = false;
    for (size_t i = 0; i < texts.size(); ++i) {
        const int32_t n = texts.length(i);
        if (n == 0) {
            throw InputError(first_index + i, "text " + std::to_string(first_index + i) + " gives no tokens (this model adds no special "
                                  "tokens to an empty text): remove it or give it some text");
        }
        if (n > limit && truncate_to == 0) {
            throw InputError(first_index + i, "text " + std::to_string(first_index + i) + " has " + std::to_string(n) +
                                  " tokens, above the limit of " + std::to_string(limit) +
                                  " tokens per text; pass truncate=True to cut long texts to the limit "
                                  "(or truncate=N for N tokens)");
        }
        too_long = too_long || n > std::min(limit, truncate_to > 0 ? truncate_to : limit);
        const llama_token* t = texts.data(i);
        for (int32_t k = 0; k < n; ++k) {  // ids given by a caller, not by our tokenizer, may be anything
            if (t[k] < 0 || t[k] >= model_.n_vocab()) {
                throw InputError(first_index + i, "text " + std::to_string(first_index + i) + " has token id " +
                                                      std::to_string(t[k]) + ", outside the vocabulary 0.." +
                                                      std::to_string(model_.n_vocab() - 1));
            }
        }
    }
    if (!too_long) return texts;
    return truncate_texts(model_.vocab(), texts, std::min(limit, truncate_to));
}

void Embedder::embed(const TokenizedTexts& texts, float* out, int norm, const ProgressFn& on_progress) {
    if (pooling() == LLAMA_POOLING_TYPE_RANK) norm = kNormNone;  // scores, not vectors
    if (pooling() == LLAMA_POOLING_TYPE_NONE) {
        TokenRows sink(out, texts.offsets, n_out_, norm);
        sink.progress = on_progress;
        engine_->run(texts.spans(), sink);
    } else {
        PooledRows sink(out, n_out_, norm, settings());
        sink.progress = on_progress;
        engine_->run(texts.spans(), sink);
    }
}

void Embedder::encode(const std::vector<std::string_view>& texts, int32_t truncate_to, float* out, int norm,
                      const ProgressFn& on_progress) {
    if (pooling() == LLAMA_POOLING_TYPE_NONE) {
        throw InvalidArgument("encode() gives one row per text; with pooling 'none' use embed() on tokenized texts");
    }
    if (pooling() == LLAMA_POOLING_TYPE_RANK) norm = kNormNone;  // scores, not vectors
    ChunkedTexts source(*this, texts, truncate_to);
    source.check_all();
    PooledRows sink(out, n_out_, norm, settings());
    sink.progress = on_progress;
    engine_->run(source, sink);
}

EmbeddingRows Embedder::embed_prepared(const TokenizedTexts& texts, int norm, const ProgressFn& on_progress) {
    EmbeddingRows out;
    out.width = static_cast<size_t>(n_embd());
    const bool per_token = pooling() == LLAMA_POOLING_TYPE_NONE;
    out.rows = per_token ? texts.tokens.size() : texts.size();
    out.data.reset(new float[std::max<size_t>(out.rows * out.width, 1)]);
    embed(texts, out.data.get(), norm, on_progress);
    if (per_token) out.offsets = texts.offsets;
    out.lengths.resize(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) out.lengths[i] = texts.length(i);
    return out;
}

EmbeddingRows Embedder::embed_texts(const std::vector<std::string_view>& texts, int32_t truncate_to, int norm,
                                    const ProgressFn& on_progress) {
    if (pooling() == LLAMA_POOLING_TYPE_NONE) {
        // One row per token: the tokens are needed whole for the offsets anyway.
        return embed_prepared(prepare(tokenize(texts), truncate_to), norm, on_progress);
    }
    EmbeddingRows out;
    out.width = static_cast<size_t>(n_embd());
    out.rows = texts.size();
    out.data.reset(new float[std::max<size_t>(out.rows * out.width, 1)]);
    encode(texts, truncate_to, out.data.get(), norm, on_progress);  // tokenizes chunk by chunk
    return out;
}

EmbeddingRows Embedder::embed_sequences(TokenizedTexts sequences, int32_t truncate_to, int norm,
                                        const ProgressFn& on_progress) {
    return embed_prepared(prepare(std::move(sequences), truncate_to), norm, on_progress);
}

}  // namespace llamabatch
