// Sampling: a llama.cpp sampler chain per sequence, built from plain settings.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "llama.h"

namespace llamabatch {

struct SamplingParams {
    float temperature = 0.0f;  // 0: greedy
    int32_t top_k = 0;         // 0: off
    float top_p = 1.0f;        // 1: off
    float min_p = 0.0f;        // 0: off
    uint32_t seed = LLAMA_DEFAULT_SEED;  // LLAMA_DEFAULT_SEED: a random seed
    // End-of-generation tokens are never sampled, so a sequence runs to its
    // token limit (llama.cpp server's ignore_eos): fixed-length benchmarks.
    bool ignore_eos = false;
};

// Throws InvalidArgument naming the bad value and its range.
void validate(const SamplingParams& params);

struct SamplerFree {
    void operator()(llama_sampler* s) const { llama_sampler_free(s); }
};
using SamplerPtr = std::unique_ptr<llama_sampler, SamplerFree>;

// greedy when temperature == 0; else top-k, top-p, min-p, temperature, then a
// seeded draw. A fresh chain per sequence, so a seed gives the same sample
// whatever the slot or the number of parallel sequences. With ignore_eos the
// chain starts with a -inf logit bias on eog (the Generator's end tokens;
// n_vocab is the vocabulary size).
SamplerPtr make_sampler(const SamplingParams& params, const std::vector<llama_token>& eog = {},
                        int32_t n_vocab = 0);

}  // namespace llamabatch
