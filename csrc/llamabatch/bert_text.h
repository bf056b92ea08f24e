// BERT's text rules (Hugging Face's BertNormalizer + BertPreTokenizer), code
// point for code point as the reference tokenizer applies them. The character
// tables come from scripts/gen_bert_tables.py, which says where each rule's
// Unicode data comes from.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace llamabatch {

struct BertTextOptions {
    bool lowercase = true;
    bool strip_accents = true;  // NFD, then drop nonspacing marks
};

// UTF-8 to code points; a malformed byte becomes U+FFFD (which cleaning drops).
std::u32string decode_utf8(std::string_view text);
void append_utf8(char32_t cp, std::string& out);

// The normalized text: control characters dropped, whitespace made ' ', CJK
// ideographs padded with spaces, then (per options) NFD and marks stripped,
// then lowercase.
std::u32string bert_normalize(std::u32string_view text, const BertTextOptions& options);

// Words of normalized text: split at whitespace, each punctuation character a
// word of its own. Each word is a [begin, end) range of code points.
struct WordRange {
    size_t begin, end;
};
std::vector<WordRange> bert_words(std::u32string_view normalized);

}  // namespace llamabatch
