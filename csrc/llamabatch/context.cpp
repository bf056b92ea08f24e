#include "llamabatch/context.h"

#include <algorithm>
#include <string>
#include <thread>

#include "llamabatch/errors.h"

namespace llamabatch {

namespace {

// Large enough to pack many short texts per decode, small enough that attention
// over a packed batch stays cheap (see the benchmarks).
constexpr int32_t kDefaultMinBatch = 512;
constexpr int32_t kDefaultMaxBatch = 2048;
// A GPU needs many tokens per decode to keep its cores busy, and attention over
// a packed batch costs it little; scripts/gpu_check.sh sweeps this on a GPU.
constexpr int32_t kDefaultGpuBatch = 2048;
}  // namespace

ContextSettings derive_settings(const Model& model, const ContextOptions& o) {
    if (o.n_ctx < 0 || o.n_batch < 0 || o.n_ubatch < 0 || o.n_seq_max < 0 || o.n_threads < 0) {
        throw InvalidArgument("n_ctx, n_batch, n_ubatch, n_seq_max and n_threads must be positive "
                              "(or 0/None to derive them)");
    }
    const int32_t n_ctx_train = std::max(model.n_ctx_train(), 1);
    ContextSettings s;
    s.embeddings = o.embeddings;
    s.flash_attn = o.flash_attn;
    s.batch_invariant = o.batch_invariant;

    if (o.n_ctx > n_ctx_train && !model.causal()) {
        // Position embeddings of BERT-like models end at n_ctx_train: past it llama.cpp aborts.
        throw InvalidArgument("n_ctx " + str(o.n_ctx) + " is above the " + str(n_ctx_train) +
                              " tokens this model was trained on; use n_ctx <= " + str(n_ctx_train));
    }
    const int32_t n_ctx = o.n_ctx > 0 ? o.n_ctx : n_ctx_train;
    if (o.n_batch > 0) {
        s.n_batch = o.n_batch;
    } else if (model.on_gpu()) {
        s.n_batch = kDefaultGpuBatch;
    } else {
        s.n_batch = std::clamp(std::min(n_ctx, n_ctx_train), kDefaultMinBatch, kDefaultMaxBatch);
    }
    // One sequence must fit into one decode call.
    s.n_ctx = std::min(n_ctx, s.n_batch);

    if (!model.causal()) {
        // A non-causal model attends over the whole sequence, so a sequence may
        // not be split across micro-batches.
        if (o.n_ubatch > 0 && o.n_ubatch < s.n_batch) {
            throw InvalidArgument("n_ubatch " + str(o.n_ubatch) + " is below n_batch " + str(s.n_batch) +
                                  ": this model is non-causal and needs a whole batch in one "
                                  "micro-batch; leave n_ubatch unset");
        }
        s.n_ubatch = s.n_batch;
    } else {
        s.n_ubatch = o.n_ubatch > 0 ? std::min(o.n_ubatch, s.n_batch) : std::min(s.n_batch, 512);
    }

    const auto max_parallel = static_cast<int32_t>(llama_max_parallel_sequences());
    const int32_t seq_limit = std::min(max_parallel, s.n_batch);
    if (o.n_seq_max > max_parallel) {
        throw InvalidArgument("n_seq_max " + str(o.n_seq_max) + " is above llama.cpp's limit of " +
                              str(max_parallel) + " sequences per batch");
    }
    s.n_seq_max = o.n_seq_max > 0 ? std::min(o.n_seq_max, seq_limit) : seq_limit;

    if (o.n_threads > 0) {
        s.n_threads = o.n_threads;
    } else {
        s.n_threads = std::max(1, static_cast<int32_t>(std::thread::hardware_concurrency()));
    }

    s.n_cells = s.n_batch;
    s.kv_unified = true;

    s.pooling = o.pooling;
    if (s.pooling == LLAMA_POOLING_TYPE_UNSPECIFIED) {
        s.pooling = model.pooling() == LLAMA_POOLING_TYPE_UNSPECIFIED ? LLAMA_POOLING_TYPE_NONE
                                                                      : model.pooling();
    }
    if (s.pooling == LLAMA_POOLING_TYPE_RANK && model.pooling() != LLAMA_POOLING_TYPE_RANK) {
        throw InvalidArgument("pooling 'rank' needs a reranker model with a classification head; '" +
                              model.path() + "' is not one (use 'mean', 'cls' or 'last')");
    }
    return s;
}

PoolingType ContextSettings::llama_pooling() const {
    if (!embeddings) return LLAMA_POOLING_TYPE_NONE;
    const bool pooled_here = pooling == LLAMA_POOLING_TYPE_MEAN || pooling == LLAMA_POOLING_TYPE_CLS ||
                             pooling == LLAMA_POOLING_TYPE_LAST;
    return batch_invariant && pooled_here ? LLAMA_POOLING_TYPE_NONE : pooling;
}

void check_batch_invariance(const Model& model, const ContextSettings& s) {
    if (!s.batch_invariant) return;
    if (model.on_gpu()) {
        throw InvalidArgument("batch_invariant=True holds on the CPU only, and '" + model.path() + "' is on " +
                              model.device() + ": load it with n_gpu_layers=0");
    }
    if (!s.flash_attn) {
        throw InvalidArgument("batch_invariant=True needs flash attention (its row-by-row path is what keeps a "
                              "sequence's attention apart from the batch): leave flash_attn on");
    }
    if (model.repack()) {
        throw InvalidArgument("batch_invariant=True needs the model loaded without repacked weights (one row and "
                              "several take different kernels): load it with repack=False");
    }
    if (s.embeddings && s.pooling == LLAMA_POOLING_TYPE_RANK && model.architecture() == "modern-bert") {
        throw InvalidArgument("batch_invariant=True cannot hold for ModernBERT's rank pooling (llama.cpp pools it "
                              "with a product over the whole batch)");
    }
}

Context::Context(Model& model, const ContextOptions& options)
    : Context(model, derive_settings(model, options)) {}

Context::Context(Model& model, const ContextSettings& settings) : model_(model), settings_(settings) {
    check_batch_invariance(model, settings_);
    llama_context_params p = llama_context_default_params();
    // For streaming, sequences are independent and the memory is cleared
    // between batches, so one unified cache of n_batch cells holds every
    // sequence of a batch, and no sequence is limited to n_ctx / n_seq_max.
    p.n_ctx = static_cast<uint32_t>(settings_.n_cells);
    p.n_batch = static_cast<uint32_t>(settings_.n_batch);
    p.n_ubatch = static_cast<uint32_t>(settings_.n_ubatch);
    p.n_seq_max = static_cast<uint32_t>(settings_.n_seq_max);
    p.kv_unified = settings_.kv_unified;
    p.n_threads = settings_.n_threads;
    p.n_threads_batch = settings_.n_threads;
    p.embeddings = settings_.embeddings;
    p.pooling_type = settings_.llama_pooling();
    if (!settings_.flash_attn) {
        p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    } else {
        p.flash_attn_type = settings_.batch_invariant ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_AUTO;
    }
    p.no_perf = true;
    ctx_.reset(llama_init_from_model(model.get(), p));
    if (!ctx_) {
        throw RuntimeFailure("llama.cpp could not create a context (n_batch=" + str(settings_.n_batch) +
                             ", n_seq_max=" + str(settings_.n_seq_max) +
                             "); try a smaller n_batch, or verbose=True to see why");
    }
    if (settings_.batch_invariant) llama_set_batch_invariant(ctx_.get(), true);
    use_encode_ = model.has_encoder() && !model.has_decoder();
}

void Context::decode(const Batch& batch) {
    if (batch.n_tokens() == 0) return;
    if (batch.n_tokens() > settings_.n_batch) {
        throw InvalidArgument("batch holds " + str(batch.n_tokens()) + " tokens, above this context's n_batch " +
                              str(settings_.n_batch));
    }
    Batch::Limits limits;
    limits.n_vocab = model_.n_vocab();
    limits.n_seq = settings_.n_seq_max;
    limits.n_embd = llama_model_n_embd_inp(model_.get());
    // BERT-like models have position embeddings up to their trained context only.
    if (!model_.causal()) limits.n_pos = model_.n_ctx_train();
    batch.validate(limits);
    if (!model_.causal() && batch.n_tokens() > settings_.n_ubatch) {
        throw InvalidArgument("batch holds " + str(batch.n_tokens()) + " tokens, above n_ubatch " +
                              str(settings_.n_ubatch) + ": a non-causal model needs the whole batch "
                              "in one micro-batch");
    }
    const int32_t rc = use_encode_ ? llama_encode(ctx_.get(), batch.view()) : llama_decode(ctx_.get(), batch.view());
    if (rc != 0) {
        throw RuntimeFailure(std::string(use_encode_ ? "llama_encode" : "llama_decode") + " failed with code " +
                             str(rc) + (rc == 1 ? " (no room in the context's memory: clear it or use a smaller batch)"
                                                : " (pass verbose=True to see llama.cpp's log)"));
    }
}

void Context::clear_memory() {
    if (llama_memory_t mem = llama_get_memory(ctx_.get())) llama_memory_clear(mem, true);
}

}  // namespace llamabatch
