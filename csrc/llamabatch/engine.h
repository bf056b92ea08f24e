// Engine: the streaming decode loop. Any number of token sequences flows
// through one fixed Batch: pack in input order; when the next sequence does not
// fit (by tokens or by sequence count), decode, hand each sequence's outputs to
// a sink, clear, go on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "llamabatch/batch.h"
#include "llamabatch/context.h"
#include "llamabatch/types.h"

namespace llamabatch {

struct EngineStats {
    int64_t decodes = 0;        // llama_decode / llama_encode calls (flushes in a dry run)
    int64_t tokens = 0;         // tokens decoded
    int64_t sequences = 0;      // sequences finished
    double decode_seconds = 0;  // time inside llama_decode
    double total_seconds = 0;   // time inside run()
};

// Where a finished sequence's outputs go. Called after each decode, in input
// order, while the context still holds that decode's outputs.
class Sink {
public:
    virtual ~Sink() = default;
    // input_index: position in the input list; seq_id: its id in this batch;
    // first: index of its first token in the batch. ctx is null in a dry run.
    virtual void on_sequence(Context* ctx, size_t input_index, llama_seq_id seq_id, int32_t first,
                             int32_t n_tokens) = 0;
    // After each flush, with the number of sequences finished so far. Return
    // false to stop early (the run then throws Cancelled).
    virtual bool on_flush(size_t /*n_done*/) { return true; }
};

// Hands the engine its sequences one at a time, so that they need not all be in
// memory at once (the Embedder tokenizes its texts chunk by chunk).
class SequenceSource {
public:
    virtual ~SequenceSource() = default;
    // Sets seq to the next sequence and returns true, or returns false at the
    // end. seq must stay valid only until the next call: the batch copies it.
    virtual bool next(TokenSpan& seq) = 0;
};

class Engine {
public:
    // Decodes on ctx; the batch holds ctx's n_batch tokens and n_seq_max sequences.
    explicit Engine(Context& ctx, Output output = Output::All);
    // A dry run: packs and flushes exactly as a real run would, without a model.
    Engine(int32_t n_batch, int32_t n_seq_max, Output output = Output::All);

    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Streams all sequences through the batch. Throws InvalidArgument (before
    // any decode) if a sequence is empty or longer than the batch.
    void run(const std::vector<TokenSpan>& sequences, Sink& sink);
    // Streams sequences as the source gives them, in its order (input_index
    // counts from 0). Each is checked as it arrives, so an empty or over-long
    // one throws after the decodes before it: check them first where that matters.
    void run(SequenceSource& sequences, Sink& sink);

    // Caps the sequences per decode (1..n_seq_max; 0 = n_seq_max), like a
    // batch size in sequences. The cap lives in the batch, so fits() stays the
    // only flush rule.
    void set_max_sequences(int32_t n_seqs);

    const EngineStats& stats() const { return stats_; }
    void reset_stats() { stats_ = {}; }
    const Batch& batch() const { return *batch_; }
    // The context decoded on; null in a dry run.
    Context* context() { return ctx_; }
    // An Engine is not safe to use from two threads at once: callers that may
    // share one hold this lock (and then the context's) for the whole run.
    std::mutex& in_use() { return in_use_; }

private:
    struct Packed {
        size_t input_index;
        llama_seq_id seq_id;
        int32_t first;
        int32_t n_tokens;
    };
    void flush(Sink& sink);

    Context* ctx_;  // null in a dry run
    Output output_;
    int32_t n_seq_max_;
    std::unique_ptr<Batch> batch_;
    std::vector<Packed> packed_;
    EngineStats stats_;
    std::mutex in_use_;
};

}  // namespace llamabatch
