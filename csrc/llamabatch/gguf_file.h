// A GGUF file's header (metadata and tensor infos, never the weights), read
// with ggml's gguf reader: for what llama.cpp's loader does not hand back as
// the file holds it.
#pragma once

#include <memory>
#include <string>
#include <vector>

struct gguf_context;

namespace llamabatch {

class GgufHeader {
public:
    // Throws NotFound for a missing file, ModelError for one gguf cannot read.
    explicit GgufHeader(const std::string& path);
    ~GgufHeader();
    GgufHeader(const GgufHeader&) = delete;
    GgufHeader& operator=(const GgufHeader&) = delete;

    const gguf_context* get() const { return gguf_.get(); }

    // An integer value, or `absent` when the key is missing or not an integer.
    long long integer(const std::string& key, long long absent) const;
    // tokenizer.ggml.token_type as stored (llama_token_type values), empty when absent.
    std::vector<int> token_types() const;

private:
    struct Free {
        void operator()(gguf_context* g) const;
    };
    std::unique_ptr<gguf_context, Free> gguf_;
};

}  // namespace llamabatch
