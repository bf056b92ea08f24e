// WordPiece (BERT) tokenization that gives the reference tokenizer's ids:
// Hugging Face's BertTokenizerFast, the one sentence-transformers loads.
// llama.cpp's own WPM tokenizer differs from it (marks, Hangul, special tokens,
// long words), so llamabatch tokenizes WPM vocabularies here instead.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "llama.h"
#include "llamabatch/bert_text.h"

namespace llamabatch {

class WordPiece {
public:
    // Reads the pieces and the special tokens of a WPM vocabulary. unk: the
    // [UNK] id (LLAMA_TOKEN_NULL: the control token whose text is "[UNK]").
    WordPiece(const llama_vocab* vocab, const BertTextOptions& options, llama_token unk);

    // Appends the tokens of text to out. add_special: [CLS] ... [SEP].
    // parse_special: a special token's text ("[SEP]") is that token, as
    // sentence-transformers reads it; otherwise it is plain text.
    void tokenize(std::string_view text, bool add_special, bool parse_special, std::vector<llama_token>& out) const;

    const BertTextOptions& options() const { return options_; }

    // WordpieceTokenizer's max_input_chars_per_word: a longer word is [UNK].
    static constexpr size_t kMaxCharsPerWord = 100;

private:
    void tokenize_plain(std::string_view text, std::vector<llama_token>& out) const;
    void tokenize_word(std::u32string_view word, std::vector<llama_token>& out) const;

    BertTextOptions options_;
    // Keys view into storage_ (stable: reserved once, never grown after).
    std::vector<std::string> storage_;
    std::unordered_map<std::string_view, llama_token> initial_;       // a word's first piece
    std::unordered_map<std::string_view, llama_token> continuation_;  // "##piece", without "##"
    size_t max_piece_chars_ = 0;
    std::vector<std::pair<std::string, llama_token>> specials_;  // longest text first
    std::array<bool, 256> special_first_byte_{};
    llama_token cls_ = LLAMA_TOKEN_NULL, sep_ = LLAMA_TOKEN_NULL, unk_ = LLAMA_TOKEN_NULL;
};

}  // namespace llamabatch
