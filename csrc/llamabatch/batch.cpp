#include "llamabatch/batch.h"

#include <algorithm>
#include <string>

#include "llamabatch/errors.h"

namespace llamabatch {

Batch::Batch(int32_t capacity, int32_t n_seq_max, int32_t embd)
    : capacity_(capacity), n_seq_max_(n_seq_max), embd_(embd) {
    if (capacity < 1) {
        throw InvalidArgument("Batch capacity must be at least 1 token, got " + str(capacity));
    }
    if (n_seq_max < 1) {
        throw InvalidArgument("Batch n_seq_max must be at least 1, got " + str(n_seq_max));
    }
    if (embd < 0) {
        throw InvalidArgument("Batch embd must be 0 (token ids) or a positive width, got " + str(embd));
    }
    const auto cap = static_cast<size_t>(capacity);
    if (embd == 0) {
        token_.assign(cap, 0);
    } else {
        embd_values_.assign(cap * static_cast<size_t>(embd), 0.0f);
    }
    pos_.assign(cap, 0);
    n_seq_id_.assign(cap, 0);
    seq_id_block_.assign(cap * static_cast<size_t>(n_seq_max), 0);
    seq_id_rows_.resize(cap);
    for (size_t i = 0; i < cap; ++i) {
        seq_id_rows_[i] = seq_id_block_.data() + i * static_cast<size_t>(n_seq_max);
    }
    output_.assign(cap, 0);
    seq_seen_.assign(static_cast<size_t>(n_seq_max), 0);
}

void Batch::check_seq_id(llama_seq_id seq_id) const {
    if (seq_id < 0 || seq_id >= n_seq_max_) {
        throw InvalidArgument("seq id " + str(seq_id) + " is out of range: this batch holds seq ids 0.." +
                              str(n_seq_max_ - 1) + " (raise n_seq_max to use more sequences)");
    }
}

void Batch::check_room(int32_t n_tokens) const {
    if (n_tokens > capacity_ - n_tokens_) {
        throw InvalidArgument("batch is full: " + str(n_tokens_) + " of " + str(capacity_) +
                              " tokens used, cannot add " + str(n_tokens) +
                              " more (check fits() first, or clear() after decoding)");
    }
}

void Batch::note_sequence(llama_seq_id seq_id) {
    auto& seen = seq_seen_[static_cast<size_t>(seq_id)];
    if (!seen) {
        seen = 1;
        ++n_seqs_;
    }
}

void Batch::add(llama_token token, llama_pos pos, const llama_seq_id* seq_ids, int32_t n_seq_ids,
                bool output) {
    if (embd_ != 0) {
        throw InvalidArgument("this batch carries embeddings (embd=" + str(embd_) +
                              "), not token ids: fill its embd array instead");
    }
    if (n_seq_ids < 1 || n_seq_ids > n_seq_max_) {
        throw InvalidArgument("a token must belong to 1.." + str(n_seq_max_) + " sequences, got " +
                              str(n_seq_ids) + " seq ids");
    }
    if (pos < 0) {
        throw InvalidArgument("position " + str(pos) + " is negative: positions count from 0");
    }
    for (int32_t k = 0; k < n_seq_ids; ++k) check_seq_id(seq_ids[k]);
    check_room(1);

    const auto i = static_cast<size_t>(n_tokens_);
    token_[i] = token;
    pos_[i] = pos;
    n_seq_id_[i] = n_seq_ids;
    std::copy(seq_ids, seq_ids + n_seq_ids, seq_id_rows_[i]);
    output_[i] = output ? 1 : 0;
    for (int32_t k = 0; k < n_seq_ids; ++k) note_sequence(seq_ids[k]);
    ++n_tokens_;
}

void Batch::add_sequence(const llama_token* tokens, int32_t n_tokens, llama_seq_id seq_id,
                         llama_pos pos0, Output output) {
    if (embd_ != 0) {
        throw InvalidArgument("this batch carries embeddings (embd=" + str(embd_) +
                              "), not token ids: fill its embd array instead");
    }
    if (n_tokens < 0) throw InvalidArgument("sequence length " + str(n_tokens) + " is negative");
    if (pos0 < 0) {
        throw InvalidArgument("pos0 " + str(pos0) + " is negative: positions count from 0");
    }
    check_seq_id(seq_id);
    check_room(n_tokens);
    if (n_tokens == 0) return;

    const auto first = static_cast<size_t>(n_tokens_);
    std::copy(tokens, tokens + n_tokens, token_.begin() + static_cast<std::ptrdiff_t>(first));
    for (int32_t k = 0; k < n_tokens; ++k) {
        const size_t i = first + static_cast<size_t>(k);
        pos_[i] = pos0 + k;
        n_seq_id_[i] = 1;
        seq_id_rows_[i][0] = seq_id;
        output_[i] = output == Output::All ? 1 : 0;
    }
    if (output == Output::Last) output_[first + static_cast<size_t>(n_tokens) - 1] = 1;
    note_sequence(seq_id);
    n_tokens_ += n_tokens;
}

void Batch::clear() {
    n_tokens_ = 0;
    n_seqs_ = 0;
    std::fill(seq_seen_.begin(), seq_seen_.end(), 0);
}

bool Batch::fits(int32_t n_tokens, int32_t n_seqs) const {
    return n_tokens_ + n_tokens <= capacity_ && n_seqs_ + n_seqs <= n_seq_max_;
}

void Batch::set_n_tokens(int32_t n_tokens) {
    if (n_tokens < 0 || n_tokens > capacity_) {
        throw InvalidArgument("n_tokens " + str(n_tokens) + " is outside 0.." + str(capacity_) +
                              " (the batch capacity)");
    }
    n_tokens_ = n_tokens;
    // Recount the sequences from what the arrays now hold.
    std::fill(seq_seen_.begin(), seq_seen_.end(), 0);
    n_seqs_ = 0;
    for (int32_t i = 0; i < n_tokens_; ++i) {
        const int32_t n = n_seq_id_[static_cast<size_t>(i)];
        for (int32_t k = 0; k < std::min(std::max(n, 0), n_seq_max_); ++k) {
            const llama_seq_id s = seq_id_rows_[static_cast<size_t>(i)][k];
            if (s >= 0 && s < n_seq_max_) note_sequence(s);
        }
    }
}

void Batch::validate(const Limits& limits) const {
    if (embd_ != 0 && limits.n_embd > 0 && embd_ != limits.n_embd) {
        throw InvalidArgument("this batch carries embeddings of width " + str(embd_) + ", but the model reads " +
                              str(limits.n_embd) + " floats per input: make the Batch with embd=" +
                              str(limits.n_embd));
    }
    for (int32_t i = 0; i < n_tokens_; ++i) {
        const auto u = static_cast<size_t>(i);
        const int32_t n = n_seq_id_[u];
        if (n < 1 || n > n_seq_max_) {
            throw InvalidArgument("token " + str(i) + " has n_seq_id " + str(n) + ": it must be 1.." +
                                  str(n_seq_max_));
        }
        for (int32_t k = 0; k < n; ++k) {
            const llama_seq_id s = seq_id_rows_[u][k];
            if (s < 0 || s >= n_seq_max_) {
                throw InvalidArgument("token " + str(i) + " has seq id " + str(s) +
                                      ", outside 0.." + str(n_seq_max_ - 1));
            }
            if (s >= limits.n_seq) {
                throw InvalidArgument("token " + str(i) + " has seq id " + str(s) +
                                      ", but this context holds seq ids 0.." + str(limits.n_seq - 1));
            }
        }
        if (pos_[u] < 0) {
            throw InvalidArgument("token " + str(i) + " has negative position " + str(pos_[u]));
        }
        if (pos_[u] >= limits.n_pos) {
            throw InvalidArgument("token " + str(i) + " has position " + str(pos_[u]) + ", past the " +
                                  str(limits.n_pos) + " positions this model was trained on");
        }
        if (embd_ == 0 && limits.n_vocab > 0 && (token_[u] < 0 || token_[u] >= limits.n_vocab)) {
            throw InvalidArgument("token " + str(i) + " has id " + str(token_[u]) +
                                  ", outside the model's vocabulary 0.." + str(limits.n_vocab - 1));
        }
    }
}

llama_batch Batch::view() const {
    llama_batch b{};
    b.n_tokens = n_tokens_;
    // llama_decode takes non-const pointers but only reads them.
    auto* self = const_cast<Batch*>(this);
    b.token = embd_ == 0 ? self->token_.data() : nullptr;
    b.embd = embd_ != 0 ? self->embd_values_.data() : nullptr;
    b.pos = self->pos_.data();
    b.n_seq_id = self->n_seq_id_.data();
    b.seq_id = self->seq_id_rows_.data();
    b.logits = self->output_.data();
    return b;
}

}  // namespace llamabatch
