// Batch: the buffers of one llama_batch, owned in C++ and never reallocated,
// so views handed out (to Python, say) stay valid for the Batch's lifetime.
#pragma once

#include <climits>
#include <cstdint>
#include <vector>

#include "llama.h"

namespace llamabatch {

// Which tokens of a sequence ask for an output (logits or embeddings).
enum class Output { None, Last, All };

class Batch {
public:
    // capacity: tokens the batch holds; n_seq_max: sequences it holds (seq ids
    // are 0..n_seq_max-1) and the most seq ids one token may carry; embd: if
    // > 0 the batch carries embeddings of that width instead of token ids.
    explicit Batch(int32_t capacity, int32_t n_seq_max = 1, int32_t embd = 0);

    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    // Appends one token belonging to the given sequences.
    void add(llama_token token, llama_pos pos, const llama_seq_id* seq_ids, int32_t n_seq_ids,
             bool output = false);
    // Appends a whole sequence: positions pos0, pos0+1, ... all in seq_id.
    void add_sequence(const llama_token* tokens, int32_t n_tokens, llama_seq_id seq_id,
                      llama_pos pos0 = 0, Output output = Output::All);
    // Forgets all tokens; capacity and storage are kept.
    void clear();

    // The flush rule, in one place: does a sequence of n_tokens tokens, making
    // n_seqs new sequences, still fit by tokens and by sequence count?
    bool fits(int32_t n_tokens, int32_t n_seqs = 1) const;

    // Sets how many leading entries are live, for callers that filled the
    // arrays directly (through the views). Checked again by validate().
    void set_n_tokens(int32_t n_tokens);

    // What the context a batch is decoded on can take (0 / INT32_MAX: no limit).
    struct Limits {
        int32_t n_vocab = 0;          // token ids 0..n_vocab-1
        int32_t n_seq = INT32_MAX;    // seq ids 0..n_seq-1
        int32_t n_pos = INT32_MAX;    // positions 0..n_pos-1
        int32_t n_embd = 0;           // the width llama.cpp reads per embedding input (0: unchecked)
    };

    // Throws InvalidArgument, in one pass, if any live entry would make
    // llama_decode fail or abort: a bad n_seq_id, a seq id outside this batch
    // or the limits, a negative or too large position, a token id outside the
    // vocabulary, embeddings of another width than the model reads (which
    // would make llama.cpp read past this batch's buffer).
    void validate(const Limits& limits) const;

    // The llama_batch that points into this object's storage.
    llama_batch view() const;

    int32_t n_tokens() const { return n_tokens_; }
    int32_t capacity() const { return capacity_; }
    int32_t n_seq_max() const { return n_seq_max_; }
    int32_t embd() const { return embd_; }
    // Distinct sequences among the live tokens.
    int32_t n_seqs() const { return n_seqs_; }

    // Raw storage, capacity entries each (seq_ids: capacity x n_seq_max, row-major).
    llama_token* tokens() { return token_.data(); }
    float* embeddings() { return embd_values_.data(); }
    llama_pos* positions() { return pos_.data(); }
    int32_t* n_seq_ids() { return n_seq_id_.data(); }
    llama_seq_id* seq_ids() { return seq_id_block_.data(); }
    int8_t* outputs() { return output_.data(); }

private:
    void check_seq_id(llama_seq_id seq_id) const;
    void check_room(int32_t n_tokens) const;
    void note_sequence(llama_seq_id seq_id);

    int32_t capacity_;
    int32_t n_seq_max_;
    int32_t embd_;
    int32_t n_tokens_ = 0;
    int32_t n_seqs_ = 0;

    std::vector<llama_token> token_;
    std::vector<float> embd_values_;
    std::vector<llama_pos> pos_;
    std::vector<int32_t> n_seq_id_;
    std::vector<llama_seq_id> seq_id_block_;   // one contiguous capacity x n_seq_max block
    std::vector<llama_seq_id*> seq_id_rows_;   // llama_batch::seq_id points at its rows
    std::vector<int8_t> output_;
    std::vector<uint8_t> seq_seen_;            // which seq ids the live tokens use
};

}  // namespace llamabatch
