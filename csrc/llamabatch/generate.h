// Generator: continuous batching. Up to n_parallel sequences decode together
// in one llama_batch; prompts of new sequences are prefilled (in chunks) in the
// same batches as the next tokens of running ones; a finished sequence frees
// its slot, and the next prompt takes a free slot at once.
//
// Two ways in, one decode loop: run() generates for a list of requests; a
// server submit()s requests as they arrive, calls step() for one decode at a
// time and hands each request its new text, and cancel()s a request whose
// client has gone. run() is submit() + step() until idle.
//
// Prompt-prefix reuse: a finished sequence leaves its tokens in its slot's
// memory. A new prompt takes the free slot whose memory shares the longest
// prefix with it and decodes only the rest, as llama-server's prompt cache does;
// when another slot (running or not) holds a much longer prefix, the new slot
// takes a copy of that slot's memory first. A shared system prompt or
// instruction is decoded once, not once per request, and a conversation that
// goes on decodes only its new turn.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
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
    // Greedy outputs that do not depend on n_parallel, n_batch, n_threads or
    // the other sequences running (ContextSettings::batch_invariant).
    bool batch_invariant = false;
    // Keep each slot's tokens in memory after its sequence ends and start the
    // next prompt from the longest prefix it shares with them. Off: every
    // prompt is decoded in full.
    bool prefix_cache = true;
    // Tokens that end a sequence (and that ignore_eos bans); empty: the ones
    // the GGUF declares (Model::declared_end_tokens). The Python Generator adds
    // the end-of-turn token of the model's chat template.
    std::vector<llama_token> end_tokens;
};

// Throws InvalidArgument naming the fix when the options cannot work.
ContextSettings derive_generation_settings(const Model& model, const GenerationOptions& options);

struct GenerationRequest {
    std::vector<llama_token> prompt;
    int32_t max_new_tokens = 256;
    SamplingParams sampling;
    std::vector<std::string> stop;  // stop strings (not part of the returned text)
};

// Stop: end of generation or a stop string; Length: max_new_tokens or the
// context; Cancelled: cancel() or a stopped run; Error: the decode failed.
enum class FinishReason { Stop, Length, Cancelled, Error };

using RequestId = uint64_t;

struct GenerationResult {
    std::vector<llama_token> tokens;  // generated tokens, without the end-of-generation token
    std::string text;                 // UTF-8, never ending inside a character
    FinishReason finish = FinishReason::Length;
    int32_t prompt_tokens = 0;
    int32_t cached_tokens = 0;  // prompt tokens found in the slot's memory, not decoded again
};

// What one step() did for one request.
struct GenerationEvent {
    RequestId id = 0;
    // Text that became final in this step: UTF-8 complete, and never a part of
    // a stop string (text that may start one is held back until it cannot).
    std::string text;
    int32_t new_tokens = 0;  // tokens generated in this step (0 or 1)
    bool finished = false;
    // Set when finished: the whole completion, whose text is every event's text joined.
    GenerationResult result;
    std::string error;  // why, when result.finish is Error
};

struct GenerationStats {
    int64_t decodes = 0;
    int64_t batch_tokens = 0;      // all tokens decoded (prompt + generated)
    int64_t prompt_tokens = 0;
    int64_t cached_tokens = 0;  // of prompt_tokens, those reused from a slot's memory
    int64_t prefix_copies = 0;  // prefixes copied from another slot's memory
    int64_t generated_tokens = 0;
    int64_t sequences = 0;
    double decode_seconds = 0;
    double total_seconds = 0;  // inside step()
};

class Generator {
public:
    Generator(Model& model, const GenerationOptions& options);
    ~Generator();

    Model& model() { return model_; }
    Context& context() { return *context_; }
    const ContextSettings& settings() const { return context_->settings(); }

    // Generates for every request; results are in request order. Throws
    // InvalidArgument (before any decode) for an empty or too long prompt, and
    // when requests submitted by submit() are still in flight.
    std::vector<GenerationResult> run(const std::vector<GenerationRequest>& requests,
                                      const ProgressFn& on_progress = {});

    // Checks a request as submit() does, without queueing it. input_index
    // names it in the error (an InputError).
    void check(const GenerationRequest& request, size_t input_index = 0) const;
    // Queues a request (checked first); it takes a free slot at the next step(),
    // in submission order. The id names it in events and in cancel().
    RequestId submit(GenerationRequest request);
    // One decode: queued requests take free slots, then every running sequence
    // advances by one token (or one prompt chunk). Returns an event for each
    // request that got text or finished. Does nothing when idle(). A failed
    // decode finishes every running request with FinishReason::Error and an
    // error message; queued ones stay queued.
    std::vector<GenerationEvent> step();
    // Drops a queued request, or ends a running one and frees its slot at once
    // (what it decoded stays for prefix reuse). No event follows. False if the
    // id is unknown or done.
    bool cancel(RequestId id);
    bool idle() const { return queue_.empty() && n_running() == 0; }
    size_t n_queued() const { return queue_.size(); }
    size_t n_running() const;

    const GenerationStats& stats() const { return stats_; }
    bool prefix_cache() const { return prefix_cache_; }
    // The tokens that end a sequence (GenerationOptions::end_tokens).
    const std::vector<llama_token>& end_tokens() const { return end_tokens_; }
    void reset_stats() { stats_ = {}; }

private:
    struct Slot;
    struct Queued {
        RequestId id;
        GenerationRequest request;
    };
    RequestId enqueue(GenerationRequest request);  // after check()
    void admit();
    Slot* free_slot_for(const std::vector<llama_token>& prompt);
    int32_t reuse_prefix(Slot& slot);
    void forget(Slot& slot);
    void forget_all();
    bool accept_token(Slot& slot, llama_token token);
    GenerationResult release(Slot& slot, FinishReason reason);
    std::string take_final_text(Slot& slot, bool finished);

    Model& model_;
    std::unique_ptr<Context> context_;
    Batch batch_;
    std::vector<Slot> slots_;
    std::deque<Queued> queue_;
    RequestId next_id_ = 1;
    GenerationStats stats_;
    std::vector<llama_token> end_tokens_;  // a sampled one ends its sequence; banned for ignore_eos
    std::vector<llama_token> shown_as_text_;  // Model::text_tokens_made_control: rendered, not dropped
    bool prefix_cache_ = true;
    bool copy_prefixes_ = false;  // a prefix may come from another slot's memory
};

// The length of the longest prefix of s that does not end inside a UTF-8 character.
size_t complete_utf8_prefix(std::string_view s);

}  // namespace llamabatch
