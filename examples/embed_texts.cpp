// Embeds a few texts with llamabatch from C++, no Python involved.
//
//   embed_texts MODEL.gguf
//
// Like llama.cpp's examples/embedding, but the batching is llamabatch's: the
// context holds 2 sequences per batch, so the 5 texts stream through the
// engine in 3 decodes, each text's pooled, L2-normalised embedding landing in
// its own row of one flat output buffer.
#include <cstdio>
#include <exception>
#include <string_view>
#include <vector>

#include "llamabatch/context.h"
#include "llamabatch/embed.h"
#include "llamabatch/model.h"
#include "llamabatch/tokenizer.h"

namespace {

// Rows are L2-normalised, so the cosine is their dot product.
float cosine(const float* a, const float* b, int32_t n) {
    float dot = 0.0f;
    for (int32_t i = 0; i < n; ++i) {
        dot += a[i] * b[i];
    }
    return dot;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    try {
        llamabatch::Model model(argv[1]);

        llamabatch::ContextOptions options;
        options.n_seq_max = 2;  // 2 texts per decode: 5 texts take 3 decodes
        llamabatch::Embedder embedder(model, options);

        const std::vector<std::string_view> texts = {
            "A cat sits on the mat.",
            "A kitten is resting on a rug.",
            "The stock market fell sharply today.",
            "How do I bake sourdough bread?",
            "Quantum computers use qubits.",
        };

        // truncate_to = 0: an over-long text is an error rather than cut short.
        llamabatch::TokenizedTexts tokens = embedder.prepare(embedder.tokenize(texts), 0);

        const int32_t n_embd = embedder.n_embd();
        std::vector<float> embeddings(texts.size() * static_cast<size_t>(n_embd));
        embedder.embed(tokens, embeddings.data(), llamabatch::kNormL2);

        std::printf("model: %s, n_embd = %d\n", model.description().c_str(), n_embd);
        for (size_t i = 0; i < texts.size(); ++i) {
            const float* row = embeddings.data() + i * n_embd;
            std::printf("%zu (%2d tokens) [%9.6f %9.6f %9.6f ...]  %.*s\n", i, tokens.length(i), row[0],
                        row[1], row[2], static_cast<int>(texts[i].size()), texts[i].data());
        }
        std::printf("cosine(0, 1) = %.4f\n", cosine(embeddings.data(), embeddings.data() + n_embd, n_embd));
        std::printf("embedded %zu texts in %lld decodes\n", texts.size(),
                    static_cast<long long>(embedder.engine().stats().decodes));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
