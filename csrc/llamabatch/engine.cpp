#include "llamabatch/engine.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "llamabatch/errors.h"

namespace llamabatch {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}
}  // namespace

Engine::Engine(Context& ctx, Output output)
    : ctx_(&ctx),
      output_(output),
      n_seq_max_(ctx.settings().n_seq_max),
      batch_(std::make_unique<Batch>(ctx.settings().n_batch, ctx.settings().n_seq_max)) {
    packed_.reserve(static_cast<size_t>(ctx.settings().n_seq_max));
}

Engine::Engine(int32_t n_batch, int32_t n_seq_max, Output output)
    : ctx_(nullptr),
      output_(output),
      n_seq_max_(n_seq_max),
      batch_(std::make_unique<Batch>(n_batch, n_seq_max)) {
    packed_.reserve(static_cast<size_t>(n_seq_max));
}

namespace {
void check_sequence(size_t i, int32_t n, int32_t limit) {
    if (n <= 0) {
        throw InvalidArgument("sequence " + std::to_string(i) + " is empty: there is nothing to decode");
    }
    if (n > limit) {
        throw InvalidArgument("sequence " + std::to_string(i) + " has " + std::to_string(n) +
                              " tokens, above the limit of " + std::to_string(limit) +
                              " tokens per sequence (truncate it, or raise n_batch/n_ctx)");
    }
}

class SpanList final : public SequenceSource {
public:
    explicit SpanList(const std::vector<TokenSpan>& spans) : spans_(spans) {}
    bool next(TokenSpan& seq) override {
        if (pos_ == spans_.size()) return false;
        seq = spans_[pos_++];
        return true;
    }

private:
    const std::vector<TokenSpan>& spans_;
    size_t pos_ = 0;
};
}  // namespace

void Engine::run(const std::vector<TokenSpan>& sequences, Sink& sink) {
    // A list can be checked whole, so a bad sequence throws before any decode.
    const int32_t seq_limit = ctx_ ? ctx_->settings().n_ctx : batch_->capacity();
    for (size_t i = 0; i < sequences.size(); ++i) check_sequence(i, sequences[i].size, seq_limit);
    SpanList source(sequences);
    run(source, sink);
}

void Engine::run(SequenceSource& sequences, Sink& sink) {
    const int32_t seq_limit = ctx_ ? ctx_->settings().n_ctx : batch_->capacity();
    const auto t0 = Clock::now();
    batch_->clear();
    packed_.clear();
    const int64_t done_before = stats_.sequences;  // stats accumulate across runs
    TokenSpan seq;
    for (size_t i = 0; sequences.next(seq); ++i) {
        check_sequence(i, seq.size, seq_limit);
        if (!batch_->fits(seq.size, 1)) {
            flush(sink);
            if (!sink.on_flush(static_cast<size_t>(stats_.sequences - done_before))) throw Cancelled();
        }
        const auto seq_id = static_cast<llama_seq_id>(packed_.size());
        packed_.push_back({i, seq_id, batch_->n_tokens(), seq.size});
        batch_->add_sequence(seq.data, seq.size, seq_id, 0, output_);
    }
    if (batch_->n_tokens() > 0) {
        flush(sink);
        if (!sink.on_flush(static_cast<size_t>(stats_.sequences - done_before))) throw Cancelled();
    }
    stats_.total_seconds += seconds_since(t0);
}

void Engine::set_max_sequences(int32_t n_seqs) {
    if (n_seqs < 0) throw InvalidArgument("the number of sequences per batch must be positive, got " + std::to_string(n_seqs));
    const int32_t limit = n_seqs == 0 ? n_seq_max_ : std::min(n_seqs, n_seq_max_);
    if (limit != batch_->n_seq_max()) batch_ = std::make_unique<Batch>(batch_->capacity(), limit);
    packed_.reserve(static_cast<size_t>(limit));
}

void Engine::flush(Sink& sink) {
    if (ctx_) {
        // Sequences of earlier batches must not attend to or collide with these.
        ctx_->clear_memory();
        const auto t0 = Clock::now();
        ctx_->decode(*batch_);
        stats_.decode_seconds += seconds_since(t0);
    }
    ++stats_.decodes;
    stats_.tokens += batch_->n_tokens();
    for (const Packed& p : packed_) {
        sink.on_sequence(ctx_, p.input_index, p.seq_id, p.first, p.n_tokens);
    }
    stats_.sequences += static_cast<int64_t>(packed_.size());
    batch_->clear();
    packed_.clear();
}

}  // namespace llamabatch
