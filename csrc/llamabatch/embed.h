// Embedding many texts: tokenize, check or truncate lengths, stream through the
// engine, and pool + normalise each sequence straight into its output row
// (row = input index, so the order never depends on how texts were packed).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "llamabatch/context.h"
#include "llamabatch/engine.h"
#include "llamabatch/model.h"
#include "llamabatch/tokenizer.h"

namespace llamabatch {

// Normalisation, as llama.cpp's tools number it: -1 none, 0 max-abs (scaled to
// int16 range), 1 taxicab, 2 euclidean (L2), p > 2 p-norm.
constexpr int kNormNone = -1;
constexpr int kNormMaxAbs = 0;
constexpr int kNormTaxicab = 1;
constexpr int kNormL2 = 2;
void normalize_embedding(const float* in, float* out, int32_t n, int norm);

// Embeddings as rows: one per text (pooled), or one per token (pooling "none").
struct EmbeddingRows {
    std::unique_ptr<float[]> data;  // rows x width floats, row-major
    size_t rows = 0;
    size_t width = 0;
    std::vector<int64_t> offsets;  // pooling "none": text i has rows offsets[i]..offsets[i+1]; else empty
    std::vector<int32_t> lengths;  // tokens of each text after truncation (from embed_sequences)
};

class Embedder {
public:
    // options.embeddings is forced on; pooling UNSPECIFIED means the model's own.
    // parse_special: a special token's text in a text ("[SEP]") is that token,
    // as sentence-transformers reads it (see tokenize_texts).
    Embedder(Model& model, ContextOptions options, bool parse_special = true);

    Model& model() { return model_; }
    Context& context() { return *context_; }
    Engine& engine() { return *engine_; }
    const ContextSettings& settings() const { return context_->settings(); }

    // Width of one output row: n_embd, or the number of scores for "rank".
    int32_t n_embd() const { return n_out_; }
    PoolingType pooling() const { return context_->settings().pooling; }
    // The most tokens one text may have.
    int32_t max_tokens() const { return context_->settings().n_ctx; }

    bool parse_special() const { return parse_special_; }
    TokenizedTexts tokenize(const std::vector<std::string_view>& texts) const;

    // Checks every text against max_tokens(). truncate_to == 0: an over-long
    // text is an error naming its index, its length and the limit; > 0: texts
    // are cut to min(truncate_to, max_tokens()). A text with no tokens is an error.
    // first_index: the input index of texts[0], for the messages.
    TokenizedTexts prepare(TokenizedTexts texts, int32_t truncate_to, size_t first_index = 0) const;

    // Pooled embeddings: writes texts.size() rows of n_embd() floats to out.
    // Pooling "none": writes one row per token, texts.tokens.size() rows.
    void embed(const TokenizedTexts& texts, float* out, int norm, const ProgressFn& on_progress = {});

    // Pooled embeddings straight from text: writes texts.size() rows of n_embd()
    // floats to out. Texts are tokenized a bounded chunk at a time as the engine
    // needs them, so the memory used besides out does not grow with the number
    // of texts. Every text is checked first (with more than one chunk, a pass
    // that tokenizes and forgets), so a bad text throws, naming its index,
    // before anything is decoded.
    // Not for pooling "none" (its output size depends on the tokens: use embed()).
    void encode(const std::vector<std::string_view>& texts, int32_t truncate_to, float* out, int norm,
                const ProgressFn& on_progress = {});

    // Whichever of encode() and embed() the pooling calls for: texts in, rows out.
    EmbeddingRows embed_texts(const std::vector<std::string_view>& texts, int32_t truncate_to, int norm,
                              const ProgressFn& on_progress = {});
    // Token id sequences from a caller (checked against the vocabulary and the
    // length limit as prepare() does), with their lengths after truncation.
    EmbeddingRows embed_sequences(TokenizedTexts sequences, int32_t truncate_to, int norm,
                                  const ProgressFn& on_progress = {});

private:
    EmbeddingRows embed_prepared(const TokenizedTexts& texts, int norm, const ProgressFn& on_progress);

    Model& model_;
    std::unique_ptr<Context> context_;
    std::unique_ptr<Engine> engine_;
    int32_t n_out_ = 0;
    bool parse_special_ = true;
};

}  // namespace llamabatch
