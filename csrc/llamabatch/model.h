// Model: RAII over llama_model, plus what llamabatch derives from its metadata.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "llama.h"
#include "llamabatch/wordpiece.h"

namespace llamabatch {

// llama.h names a function llama_pooling_type too, which hides the enum in C++.
using PoolingType = enum llama_pooling_type;

// llama.cpp logs to stderr unless told otherwise; llamabatch keeps it quiet
// (warnings and errors only when verbose is off). The log is process-wide in
// llama.cpp, so this switch is too.
void set_verbose(bool verbose);
bool verbose();
// Installs llamabatch's log callback and initializes llama.cpp's backends, once
// per process; everything that touches llama.cpp or ggml calls it first.
void init_backend();

struct ModelOptions {
    // Layers to offload to the GPU; -1 = all, 0 = none; unset = all when a GPU
    // is present, none otherwise (see resolve_gpu_layers).
    std::optional<int32_t> n_gpu_layers;
    bool vocab_only = false;  // tokenizer only, no weights
    // Let the CPU backend repack quantized weights for its SIMD kernels (faster;
    // one row and several take different kernels, so batch invariance needs it off).
    bool repack = true;
};

class Model {
public:
    // Throws NotFound if the file is missing, ModelError if llama.cpp cannot load it.
    explicit Model(const std::string& path, ModelOptions options = {});

    const llama_model* get() const { return model_.get(); }
    llama_model* get() { return model_.get(); }
    const llama_vocab* vocab() const { return llama_model_get_vocab(model_.get()); }

    const std::string& path() const { return path_; }
    int32_t n_embd() const { return llama_model_n_embd(model_.get()); }
    // Width of the embeddings the model outputs (pooled or per token).
    int32_t n_embd_out() const { return llama_model_n_embd_out(model_.get()); }
    int32_t n_vocab() const { return llama_vocab_n_tokens(vocab()); }
    int32_t n_ctx_train() const { return llama_model_n_ctx_train(model_.get()); }
    int32_t n_layer() const { return llama_model_n_layer(model_.get()); }
    // The n_gpu_layers llama.cpp was given (-1 = all).
    int32_t n_gpu_layers() const { return n_gpu_layers_; }
    // Whether the CPU backend may repack quantized weights (ModelOptions::repack).
    bool repack() const { return repack_; }
    // Where the weights are: "cpu", "cuda:0", "cuda:0,cuda:1", or "cuda:0+cpu"
    // when only some layers are offloaded.
    const std::string& device() const { return device_; }
    bool on_gpu() const { return device_ != "cpu"; }
    uint64_t n_params() const { return llama_model_n_params(model_.get()); }
    std::string architecture() const { return meta("general.architecture"); }
    std::string description() const;
    // Attention over the whole sequence (BERT-like) rather than causal. Such
    // models must see a whole sequence inside one micro-batch.
    bool causal() const { return causal_; }
    // The pooling the GGUF asks for (LLAMA_POOLING_TYPE_UNSPECIFIED when none).
    PoolingType pooling() const { return pooling_; }
    bool has_encoder() const { return llama_model_has_encoder(model_.get()); }
    bool has_decoder() const { return llama_model_has_decoder(model_.get()); }
    // The reference-exact WordPiece tokenizer of a WPM (BERT) vocabulary, or
    // nullptr for other vocabularies (llama.cpp's tokenizer serves those).
    const WordPiece* wordpiece() const { return wordpiece_.get(); }
    // The model's chat template, or "" when it has none. A name picks one of the
    // GGUF's named templates (tokenizer.chat_template.<name>) instead of the default.
    std::string chat_template(const std::string& name = "") const;

    // The end-of-generation tokens the GGUF declares: its eos (or the
    // vocabulary type's default), and its eot and eom when it names them.
    // Not llama.cpp's llama_vocab_is_eog, which also takes tokens by their
    // text (Gemma 3's user-defined "</s>", which any HTML ends with).
    std::vector<llama_token> declared_end_tokens() const;
    // Tokens llama.cpp's loader made control tokens by their text although the
    // file types them otherwise (Gemma 3's user-defined "</s>"): when a model
    // writes one it is text, as the model's own tokenizer decodes it. Sorted;
    // reads the file's header.
    std::vector<llama_token> text_tokens_made_control() const;

    // A metadata value as a string, or "" when the key is absent.
    std::string meta(const std::string& key) const;
    // A boolean metadata value ("true"/"1", "false"/"0"); `absent` when the key
    // is missing or holds anything else.
    bool meta_flag(const std::string& key, bool absent) const;

private:
    struct Free {
        void operator()(llama_model* m) const { llama_model_free(m); }
    };
    std::string path_;
    std::unique_ptr<llama_model, Free> model_;
    bool causal_ = true;
    int32_t n_gpu_layers_ = 0;
    bool repack_ = true;
    std::string device_ = "cpu";
    PoolingType pooling_ = LLAMA_POOLING_TYPE_UNSPECIFIED;
    std::unique_ptr<const WordPiece> wordpiece_;
};

}  // namespace llamabatch
