// Context: RAII over llama_context, and the settings llamabatch derives for it
// so that no setting a user passes can reach one of llama.cpp's asserts.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "llama.h"
#include "llamabatch/batch.h"
#include "llamabatch/model.h"

namespace llamabatch {

// What a caller asks for; 0 (or UNSPECIFIED) means "derive it".
struct ContextOptions {
    int32_t n_ctx = 0;       // most tokens in one sequence (default: the model's trained context)
    int32_t n_batch = 0;     // tokens per llama_decode call
    int32_t n_ubatch = 0;    // tokens per micro-batch (forced to n_batch for non-causal models)
    int32_t n_seq_max = 0;   // sequences per batch
    int32_t n_threads = 0;   // CPU threads (default: all hardware threads)
    bool embeddings = false;
    PoolingType pooling = LLAMA_POOLING_TYPE_UNSPECIFIED;
    bool flash_attn = true;  // packs short sequences cheaply on the CPU
    // A sequence's results do not depend on the rest of its batch, bit for bit
    // (see ContextSettings::batch_invariant).
    bool batch_invariant = false;
};

// The settings actually used, after derivation.
struct ContextSettings {
    int32_t n_ctx = 0;       // limit on one sequence's tokens
    int32_t n_batch = 0;
    int32_t n_ubatch = 0;
    int32_t n_seq_max = 0;
    int32_t n_threads = 0;
    bool embeddings = false;
    PoolingType pooling = LLAMA_POOLING_TYPE_NONE;
    bool flash_attn = true;
    // The cache: n_cells cells in all. Unified: every sequence may use all of
    // them (streaming, where memory is cleared between batches). Not unified:
    // each of the n_seq_max sequences owns n_cells / n_seq_max (generation).
    int32_t n_cells = 0;
    bool kv_unified = true;
    // Batch invariance: the CPU kernels take one path whatever the number of
    // rows (vendor patch 0003), attention is flash attention's row-by-row path,
    // and pooled embeddings are pooled here, per sequence in token order,
    // instead of by llama.cpp's matrix product over the whole batch.
    bool batch_invariant = false;

    // The pooling llama.cpp is asked for: with batch invariance, mean, cls and
    // last pooling are done by llamabatch from the token rows (none).
    PoolingType llama_pooling() const;
};

// Checks that batch invariance can hold for this model and these settings
// (CPU only, flash attention on, no repacked weights); throws InvalidArgument
// naming the fix. A no-op when s.batch_invariant is off.
void check_batch_invariance(const Model& model, const ContextSettings& s);

// Derives the settings for a context that streams independent sequences (the
// memory is cleared between batches). Throws InvalidArgument naming the fix
// when the options cannot work with this model.
ContextSettings derive_settings(const Model& model, const ContextOptions& options);

class Context {
public:
    Context(Model& model, const ContextOptions& options);
    // Settings derived elsewhere (see derive_settings, derive_generation_settings).
    Context(Model& model, const ContextSettings& settings);

    llama_context* get() { return ctx_.get(); }
    Model& model() { return model_; }
    const ContextSettings& settings() const { return settings_; }

    // Decodes the batch's live tokens (llama_encode for encoder-only models).
    // Validates the batch first so that bad input raises instead of aborting.
    void decode(const Batch& batch);
    // Forgets every sequence in the context's memory.
    void clear_memory();

    // A llama_context is not safe to use from two threads at once. Whatever
    // drives this context (a decode, an Engine run, an Embedder or Generator
    // call) holds this lock for the whole call when it may be shared.
    std::mutex& in_use() { return in_use_; }

private:
    struct Free {
        void operator()(llama_context* c) const { llama_free(c); }
    };
    Model& model_;
    ContextSettings settings_;
    std::unique_ptr<llama_context, Free> ctx_;
    bool use_encode_ = false;
    std::mutex in_use_;
};

}  // namespace llamabatch
