// Small types shared across the core: a view of one token sequence, the
// progress callback and the exception a stopped run throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>

#include "llama.h"

namespace llamabatch {

// Called after each decode with the number of inputs finished; return false to stop.
using ProgressFn = std::function<bool(size_t n_done)>;

// One input sequence (not owned).
struct TokenSpan {
    const llama_token* data = nullptr;
    int32_t size = 0;
};

// Thrown when a progress callback asks a run to stop.
struct Cancelled : std::exception {
    const char* what() const noexcept override { return "cancelled"; }
};

}  // namespace llamabatch
