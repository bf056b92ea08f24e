// Tokenization of many texts at once, on several threads, into one flat buffer.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "llama.h"
#include "llamabatch/model.h"
#include "llamabatch/types.h"

namespace llamabatch {

// Texts' tokens, back to back: text i is tokens[offsets[i] .. offsets[i+1]).
struct TokenizedTexts {
    std::vector<llama_token> tokens;
    std::vector<int64_t> offsets{0};

    size_t size() const { return offsets.size() - 1; }
    int32_t length(size_t i) const { return static_cast<int32_t>(offsets[i + 1] - offsets[i]); }
    const llama_token* data(size_t i) const { return tokens.data() + offsets[i]; }
    std::vector<TokenSpan> spans() const;
};

// The model's tokenizer: the reference-exact WordPiece for WPM (BERT)
// vocabularies (see wordpiece.h), llama.cpp's own for the others.
// add_special: add the BOS/CLS/SEP/EOS tokens the model expects.
// parse_special: read special tokens' text ("[SEP]", "<|im_end|>") as those
// tokens; embedding models do, as sentence-transformers does; never for user
// content in a chat, where it would let a message close its own turn.
// n_threads <= 0: pick from the hardware and the amount of text.
// llama_cpp: llama.cpp's own tokenizer even for WPM vocabularies (the ids
// llama.cpp's tools give; for comparisons).
TokenizedTexts tokenize_texts(const Model& model, const std::vector<std::string_view>& texts,
                              bool add_special = true, bool parse_special = false, int n_threads = 0,
                              bool llama_cpp = false);

// The tokens of one text.
std::vector<llama_token> tokenize_text(const Model& model, std::string_view text, bool add_special = true,
                                       bool parse_special = false);

// Cuts every text longer than max_tokens to max_tokens, keeping a closing
// special token (SEP/EOS) in the last place as sentence-transformers does.
TokenizedTexts truncate_texts(const llama_vocab* vocab, const TokenizedTexts& in, int32_t max_tokens);

}  // namespace llamabatch
