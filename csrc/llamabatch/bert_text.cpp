#include "llamabatch/bert_text.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace llamabatch {

namespace {

struct CodeRange {
    uint32_t first, second;
};
struct CharMapping {
    uint32_t cp, offset, length;
};

#include "llamabatch/bert_tables.inc"

enum CleanClass : uint32_t { kKeep = 0, kDrop = 1, kSpace = 2, kCjk = 3 };

// kCleanClasses: (start, class) at each change, from code point 0.
uint32_t clean_class(char32_t cp) {
    const auto* it = std::upper_bound(std::begin(kCleanClasses), std::end(kCleanClasses), uint32_t(cp),
                                      [](uint32_t v, const CodeRange& r) { return v < r.first; });
    return std::prev(it)->second;
}

// Inclusive [first, second] ranges.
template <size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t cp) {
    const auto* it = std::upper_bound(std::begin(table), std::end(table), uint32_t(cp),
                                      [](uint32_t v, const CodeRange& r) { return v < r.first; });
    return it != std::begin(table) && cp <= std::prev(it)->second;
}

template <size_t N, size_t P>
bool append_mapping(const CharMapping (&table)[N], const char32_t (&pool)[P], char32_t cp, std::u32string& out) {
    const auto* it = std::lower_bound(std::begin(table), std::end(table), uint32_t(cp),
                                      [](const CharMapping& m, uint32_t v) { return m.cp < v; });
    if (it == std::end(table) || it->cp != cp) return false;
    out.append(pool + it->offset, it->length);
    return true;
}

uint32_t combining_class(char32_t cp) {
    if (cp < 0x300) return 0;
    const auto* it = std::lower_bound(std::begin(kCombiningClasses), std::end(kCombiningClasses), uint32_t(cp),
                                      [](const CodeRange& r, uint32_t v) { return r.first < v; });
    return it != std::end(kCombiningClasses) && it->first == cp ? it->second : 0;
}

// Hangul syllables decompose by formula (Unicode 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kVCount = 21, kTCount = 28, kSCount = 11172;

void append_decomposed(char32_t cp, std::u32string& out) {
    if (cp >= kSBase && cp < kSBase + kSCount) {
        const char32_t s = cp - kSBase;
        out.push_back(kLBase + s / (kVCount * kTCount));
        out.push_back(kVBase + (s % (kVCount * kTCount)) / kTCount);
        if (s % kTCount) out.push_back(kTBase + s % kTCount);
        return;
    }
    if (cp < 0xC0 || !append_mapping(kDecompositions, kDecompositionsPool, cp, out)) out.push_back(cp);
}

// Canonical ordering: each run of marks with a class above 0 sorted stably by class.
void canonical_order(std::u32string& s) {
    size_t i = 0;
    while (i < s.size()) {
        if (combining_class(s[i]) == 0) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < s.size() && combining_class(s[j]) != 0) ++j;
        if (j - i > 1) {
            std::stable_sort(s.begin() + static_cast<std::ptrdiff_t>(i), s.begin() + static_cast<std::ptrdiff_t>(j),
                             [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
        }
        i = j;
    }
}

bool is_ascii_alnum(char32_t cp) {
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
}

}  // namespace

std::u32string decode_utf8(std::string_view text) {
    std::u32string out;
    out.reserve(text.size());
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    size_t i = 0;
    while (i < n) {
        const unsigned char b = p[i];
        if (b < 0x80) {
            out.push_back(b);
            ++i;
            continue;
        }
        size_t len = 0;
        char32_t cp = 0, min = 0;
        if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1F, min = 0x80;
        else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0F, min = 0x800;
        else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07, min = 0x10000;
        bool ok = len != 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) ok = false;
            else cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
        if (!ok) {
            out.push_back(0xFFFD);
            ++i;  // resynchronise on the next byte
            continue;
        }
        out.push_back(cp);
        i += len;
    }
    return out;
}

void append_utf8(char32_t cp, std::string& out) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::u32string bert_normalize(std::u32string_view text, const BertTextOptions& options) {
    // 1. Clean: drop controls, whitespace to ' ', pad CJK ideographs.
    std::u32string cleaned;
    cleaned.reserve(text.size());
    for (char32_t cp : text) {
        if (is_ascii_alnum(cp)) {  // the common case, class kKeep
            cleaned.push_back(cp);
            continue;
        }
        switch (clean_class(cp)) {
            case kKeep: cleaned.push_back(cp); break;
            case kDrop: break;
            case kSpace: cleaned.push_back(U' '); break;
            default:
                cleaned.push_back(U' ');
                cleaned.push_back(cp);
                cleaned.push_back(U' ');
        }
    }
    if (!options.strip_accents && !options.lowercase) return cleaned;

    // 2. NFD and strip nonspacing marks (ordering first: it spans the marks dropped).
    std::u32string stripped;
    if (options.strip_accents) {
        std::u32string decomposed;
        decomposed.reserve(cleaned.size());
        for (char32_t cp : cleaned) append_decomposed(cp, decomposed);
        canonical_order(decomposed);
        stripped.reserve(decomposed.size());
        for (char32_t cp : decomposed) {
            if (cp < 0x300 || !in_ranges(kStrippedMarks, cp)) stripped.push_back(cp);
        }
    } else {
        stripped = std::move(cleaned);
    }
    if (!options.lowercase) return stripped;

    // 3. Lowercase, one code point at a time (no context, as the reference does).
    std::u32string out;
    out.reserve(stripped.size());
    for (char32_t cp : stripped) {
        if (cp < 0x80) {
            out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
        } else if (!append_mapping(kLowercase, kLowercasePool, cp, out)) {
            out.push_back(cp);
        }
    }
    return out;
}

std::vector<WordRange> bert_words(std::u32string_view s) {
    std::vector<WordRange> words;
    size_t start = 0;
    bool in_word = false;
    for (size_t i = 0; i < s.size(); ++i) {
        const char32_t cp = s[i];
        if (is_ascii_alnum(cp)) {
            if (!in_word) start = i, in_word = true;
            continue;
        }
        const bool space = in_ranges(kWhitespace, cp);
        const bool punct = !space && in_ranges(kPunctuation, cp);
        if (space || punct) {
            if (in_word) words.push_back({start, i});
            in_word = false;
            if (punct) words.push_back({i, i + 1});
        } else if (!in_word) {
            start = i, in_word = true;
        }
    }
    if (in_word) words.push_back({start, s.size()});
    return words;
}

}  // namespace llamabatch
