#include "llamabatch/sampling.h"

#include <cmath>
#include <limits>
#include <string>

#include "llamabatch/errors.h"

namespace llamabatch {

void validate(const SamplingParams& p) {
    if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) {
        throw InvalidArgument("temperature " + std::to_string(p.temperature) + " must be >= 0 (0 is greedy)");
    }
    if (p.top_k < 0) throw InvalidArgument("top_k " + std::to_string(p.top_k) + " must be >= 1 (or None)");
    if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
        throw InvalidArgument("top_p " + std::to_string(p.top_p) + " must be in (0, 1]");
    }
    if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
        throw InvalidArgument("min_p " + std::to_string(p.min_p) + " must be in [0, 1]");
    }
}


SamplerPtr make_sampler(const SamplingParams& p, const std::vector<llama_token>& eog, int32_t n_vocab) {
    validate(p);
    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    SamplerPtr chain(llama_sampler_chain_init(cp));
    if (p.ignore_eos && !eog.empty()) {
        if (n_vocab <= 0) throw InvalidArgument("make_sampler: ignore_eos needs the vocabulary size (n_vocab)");
        std::vector<llama_logit_bias> bans;
        bans.reserve(eog.size());
        for (llama_token t : eog) bans.push_back({t, -std::numeric_limits<float>::infinity()});
        llama_sampler_chain_add(chain.get(), llama_sampler_init_logit_bias(n_vocab, static_cast<int32_t>(bans.size()),
                                                                            bans.data()));
    }
    if (p.temperature == 0.0f) {
        llama_sampler_chain_add(chain.get(), llama_sampler_init_greedy());
        return chain;
    }
    if (p.top_k > 0) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_k(p.top_k));
    if (p.top_p < 1.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_top_p(p.top_p, 1));
    if (p.min_p > 0.0f) llama_sampler_chain_add(chain.get(), llama_sampler_init_min_p(p.min_p, 1));
    llama_sampler_chain_add(chain.get(), llama_sampler_init_temp(p.temperature));
    llama_sampler_chain_add(chain.get(), llama_sampler_init_dist(p.seed));
    return chain;
}

}  // namespace llamabatch
