#include "llamabatch/wordpiece.h"

#include <algorithm>

#include "llamabatch/errors.h"

namespace llamabatch {

namespace {

// llama.cpp's converter marks a word's first piece with U+2581 and drops the
// "##" of continuation pieces.
constexpr std::string_view kWordStart = "\xE2\x96\x81";

size_t utf8_chars(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

}  // namespace

WordPiece::WordPiece(const llama_vocab* vocab, const BertTextOptions& options, llama_token unk)
    : options_(options), unk_(unk) {
    const int32_t n = llama_vocab_n_tokens(vocab);
    storage_.reserve(static_cast<size_t>(n));
    for (llama_token id = 0; id < n; ++id) {
        const std::string_view text = llama_vocab_get_text(vocab, id);
        const auto attr = llama_vocab_get_attr(vocab, id);
        if (attr & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED)) {
            if (!text.empty()) specials_.emplace_back(std::string(text), id);
            if (unk_ == LLAMA_TOKEN_NULL && text == "[UNK]") unk_ = id;
            continue;
        }
        const bool first = text.substr(0, kWordStart.size()) == kWordStart;
        storage_.emplace_back(first ? text.substr(kWordStart.size()) : text);
        const std::string_view key = storage_.back();
        // The first id wins, as in the reference's vocabulary map.
        (first ? initial_ : continuation_).emplace(key, id);
        max_piece_chars_ = std::max(max_piece_chars_, utf8_chars(key));
    }
    std::stable_sort(specials_.begin(), specials_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    for (const auto& special : specials_) special_first_byte_[static_cast<unsigned char>(special.first[0])] = true;

    if (unk_ == LLAMA_TOKEN_NULL) throw ModelError("this WordPiece vocabulary has no [UNK] token");
    cls_ = llama_vocab_bos(vocab);
    sep_ = llama_vocab_sep(vocab);
    if (sep_ == LLAMA_TOKEN_NULL) sep_ = llama_vocab_eos(vocab);
}

void WordPiece::tokenize(std::string_view text, bool add_special, bool parse_special,
                         std::vector<llama_token>& out) const {
    if (add_special && cls_ != LLAMA_TOKEN_NULL) out.push_back(cls_);
    if (!parse_special || specials_.empty()) {
        tokenize_plain(text, out);
    } else {
        // Leftmost-longest match of the special tokens' texts, on the raw text.
        size_t plain_from = 0, i = 0;
        while (i < text.size()) {
            if (!special_first_byte_[static_cast<unsigned char>(text[i])]) {
                ++i;
                continue;
            }
            const llama_token* hit = nullptr;
            size_t hit_len = 0;
            for (const auto& [s, id] : specials_) {
                if (text.compare(i, s.size(), s) == 0) {
                    hit = &id;
                    hit_len = s.size();
                    break;  // longest first
                }
            }
            if (!hit) {
                ++i;
                continue;
            }
            tokenize_plain(text.substr(plain_from, i - plain_from), out);
            out.push_back(*hit);
            i += hit_len;
            plain_from = i;
        }
        tokenize_plain(text.substr(plain_from), out);
    }
    if (add_special && sep_ != LLAMA_TOKEN_NULL) out.push_back(sep_);
}

void WordPiece::tokenize_plain(std::string_view text, std::vector<llama_token>& out) const {
    if (text.empty()) return;
    const std::u32string normalized = bert_normalize(decode_utf8(text), options_);
    const std::u32string_view view(normalized);
    for (const WordRange& w : bert_words(view)) tokenize_word(view.substr(w.begin, w.end - w.begin), out);
}

void WordPiece::tokenize_word(std::u32string_view word, std::vector<llama_token>& out) const {
    if (word.size() > kMaxCharsPerWord) {
        out.push_back(unk_);
        return;
    }
    // UTF-8 of the word, and where each code point starts in it.
    std::string bytes;
    std::vector<size_t> at;
    at.reserve(word.size() + 1);
    for (char32_t cp : word) {
        at.push_back(bytes.size());
        append_utf8(cp, bytes);
    }
    at.push_back(bytes.size());

    const size_t mark = out.size();
    size_t start = 0;
    while (start < word.size()) {
        const auto& pieces = start == 0 ? initial_ : continuation_;
        llama_token found = LLAMA_TOKEN_NULL;
        size_t end = std::min(word.size(), start + max_piece_chars_);
        for (; end > start; --end) {
            const auto it = pieces.find(std::string_view(bytes).substr(at[start], at[end] - at[start]));
            if (it != pieces.end()) {
                found = it->second;
                break;
            }
        }
        if (found == LLAMA_TOKEN_NULL) {  // no piece fits: the whole word is unknown
            out.resize(mark);
            out.push_back(unk_);
            return;
        }
        out.push_back(found);
        start = end;
    }
}

}  // namespace llamabatch
