// Generator: continuous batching. Up to n_parallel sequences decode together
// in one llama_batch; prompts of new sequences are prefilled (in chunks) in the
// same batches as the next tokens of running ones; a finished sequence frees
// its slot and its memory, and the next prompt takes the slot at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llamabatch/batch.h"
#include "llamabatch/context.h"
#include "llamabatch/model.h"
#include "llamabatch/sampling.h"
#include "llamabatch/types.h"

namespace llamabatch {

struct GenerationOptions {
    int32_t n_parallel = 16;  // sequences decoding together
    int32_t n_ctx = 0;        // most tokens (prompt + completion) per sequence; 0: min(trained, 2048)
    int32_t n_batch = 0;      // tokens per decode; 0: max(512, n_parallel)
    int32_t n_threads = 0;
    bool flash_attn = true;
};

// Throws InvalidArgument naming the fix when the options cannot work.
ContextSettings derive_generation_settings(const Model& model, const GenerationOptions& options);

struct GenerationRequest {
    std::vector<llama_token> prompt;
    int32_t max_new_tokens = 256;
    SamplingParams sampling;
    std::vector<std::string> stop;  // stop strings (not part of the returned text)
};

enum class FinishReason { Stop, Length };

struct GenerationResult {
    std::vector<llama_token> tokens;  // generated tokens, without the end-of-generation token
    std::string text;                 // UTF-8, never ending inside a character
    FinishReason finish = FinishReason::Length;
    int32_t prompt_tokens = 0;
};

struct GenerationStats {
    int64_t decodes = 0;
    int64_t batch_tokens = 0;      // all tokens decoded (prompt + generated)
    int64_t prompt_tokens = 0;
    int64_t generated_tokens = 0;
    int64_t sequences = 0;
    double decode_seconds = 0;
    double total_seconds = 0;
};

class Generator {
public:
    Generator(Model& model, const GenerationOptions& options);
    ~Generator();

    Model& model() { return model_; }
    Context& context() { return *context_; }
    const ContextSettings& settings() const { return context_->settings(); }

    // Generates for every request; results are in request order. Throws
    // InvalidArgument (before any decode) for an empty or too long prompt.
    std::vector<GenerationResult> run(const std::vector<GenerationRequest>& requests,
                                      const ProgressFn& on_progress = {});

    const GenerationStats& stats() const { return stats_; }
    void reset_stats() { stats_ = {}; }

private:
    struct Slot;
    bool accept_token(Slot& slot, llama_token token, const GenerationRequest& request);
    void finish(Slot& slot, FinishReason reason, std::vector<GenerationResult>& results);

    Model& model_;
    std::unique_ptr<Context> context_;
    Batch batch_;
    std::vector<Slot> slots_;
    GenerationStats stats_;
    std::vector<llama_token> eog_;  // end-of-generation tokens, banned for ignore_eos
};

// The length of the longest prefix of s that does not end inside a UTF-8 character.
size_t complete_utf8_prefix(const std::string& s);

}  // namespace llamabatch
