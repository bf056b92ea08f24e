#include "llamabatch/model.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "llamabatch/devices.h"
#include "llamabatch/errors.h"
#include "llamabatch/gguf_file.h"

namespace llamabatch {

namespace {

std::atomic<bool> g_verbose{false};

// Silent unless verbose: llamabatch turns every failure it can see into an
// exception whose message says what to do, so llama.cpp's log is for debugging.
void log_callback(ggml_log_level /*level*/, const char* text, void* /*user_data*/) {
    if (g_verbose.load(std::memory_order_relaxed)) std::fputs(text, stderr);
}

bool quiet_progress(float /*progress*/, void* /*user_data*/) { return true; }

// Where the layers of a model loaded with n_gpu_layers go (see Model::device).
std::string placement(int32_t n_gpu_layers, int32_t n_layer) {
    if (n_gpu_layers == 0) return "cpu";
    std::string names;
    for (const Device& gpu : gpus()) names += (names.empty() ? "" : ",") + gpu.name;
    if (names.empty()) return "cpu";
    // llama.cpp counts the output layer too: n_layer + 1 layers in all.
    if (n_gpu_layers > 0 && n_gpu_layers <= n_layer) names += "+cpu";
    return names;
}

}  // namespace

void init_backend() {
    static std::once_flag once;
    std::call_once(once, [] {
        llama_log_set(log_callback, nullptr);
        llama_backend_init();
    });
}

void set_verbose(bool verbose) {
    init_backend();
    g_verbose.store(verbose);
}

bool verbose() { return g_verbose.load(); }

Model::Model(const std::string& path, ModelOptions options) : path_(path) {
    init_backend();
    {
        std::ifstream probe(path, std::ios::binary);
        if (!probe) {
            throw NotFound("model file not found: '" + path +
                           "' (pass the path of a .gguf file, or a catalogue name such as "
                           "'all-minilm-l6-v2')");
        }
        char magic[4] = {};
        probe.read(magic, 4);
        if (probe.gcount() != 4 || magic[0] != 'G' || magic[1] != 'G' || magic[2] != 'U' || magic[3] != 'F') {
            throw ModelError("'" + path + "' is not a GGUF file (it does not start with 'GGUF'); "
                             "convert the model with llama.cpp's convert_hf_to_gguf.py");
        }
    }
    llama_model_params params = llama_model_default_params();
    if (options.n_gpu_layers && *options.n_gpu_layers < -1) {
        throw InvalidArgument("n_gpu_layers " + std::to_string(*options.n_gpu_layers) +
                              " is not a layer count: pass -1 (all), 0 (CPU only), a count, or None (all "
                              "when a GPU is present)");
    }
    n_gpu_layers_ = resolve_gpu_layers(options.n_gpu_layers);
    params.n_gpu_layers = n_gpu_layers_;
    params.vocab_only = options.vocab_only;
    params.use_extra_bufts = options.repack;
    repack_ = options.repack;
    if (!g_verbose.load()) params.progress_callback = quiet_progress;  // no progress dots
    model_.reset(llama_model_load_from_file(path.c_str(), params));
    if (!model_) {
        throw ModelError("llama.cpp could not load '" + path +
                         "': the file is truncated, corrupt or of an unsupported architecture "
                         "(re-download it, or pass verbose=True to see llama.cpp's reason)");
    }
    device_ = placement(n_gpu_layers_, n_layer());
    const std::string arch = architecture();
    causal_ = meta_flag(arch + ".attention.causal", true);
    const std::string pooling = meta(arch + ".pooling_type");
    if (!pooling.empty()) {
        try {
            pooling_ = static_cast<PoolingType>(std::stoi(pooling));
        } catch (const std::exception&) {
            pooling_ = LLAMA_POOLING_TYPE_UNSPECIFIED;
        }
    }
    if (llama_vocab_type(vocab()) == LLAMA_VOCAB_TYPE_WPM) {
        // BERT's defaults where the GGUF does not say: lowercase, and strip
        // accents when lowercasing (BertNormalizer's strip_accents=None).
        BertTextOptions options;
        options.lowercase = meta_flag("tokenizer.ggml.normalizer.lowercase", true);
        options.strip_accents = meta_flag("tokenizer.ggml.normalizer.strip_accents", options.lowercase);
        const std::string unk = meta("tokenizer.ggml.unknown_token_id");
        wordpiece_ = std::make_unique<const WordPiece>(
            vocab(), options, unk.empty() ? LLAMA_TOKEN_NULL : static_cast<llama_token>(std::stol(unk)));
    }
}

std::string Model::meta(const std::string& key) const {
    const int32_t n = llama_model_meta_val_str(model_.get(), key.c_str(), nullptr, 0);
    if (n < 0) return {};
    std::vector<char> buf(static_cast<size_t>(n) + 1);
    llama_model_meta_val_str(model_.get(), key.c_str(), buf.data(), buf.size());
    return std::string(buf.data(), static_cast<size_t>(n));
}

std::vector<llama_token> Model::declared_end_tokens() const {
    std::vector<llama_token> out;
    auto add = [&](llama_token t) {
        if (t >= 0 && t < n_vocab() && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
    };
    add(llama_vocab_eos(vocab()));
    // llama_vocab_eot() would also name a token found by its text; the keys are what the file says.
    for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
        const std::string v = meta(key);
        if (!v.empty() && std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); }) &&
            v.size() < 10) {
            add(static_cast<llama_token>(std::stol(v)));
        }
    }
    return out;
}

std::vector<llama_token> Model::text_tokens_made_control() const {
    const std::vector<int> types = GgufHeader(path_).token_types();
    std::vector<llama_token> out;
    for (llama_token t = 0; t < static_cast<llama_token>(types.size()) && t < n_vocab(); ++t) {
        const bool typed_special = types[t] == LLAMA_TOKEN_TYPE_CONTROL || types[t] == LLAMA_TOKEN_TYPE_UNKNOWN ||
                                   types[t] == LLAMA_TOKEN_TYPE_UNUSED;
        if (!typed_special && (llama_vocab_get_attr(vocab(), t) & LLAMA_TOKEN_ATTR_CONTROL)) out.push_back(t);
    }
    return out;
}

bool Model::meta_flag(const std::string& key, bool absent) const {
    const std::string v = meta(key);
    if (v == "true" || v == "1") return true;
    if (v == "false" || v == "0") return false;
    return absent;
}

std::string Model::description() const {
    char buf[256];
    const int32_t n = llama_model_desc(model_.get(), buf, sizeof(buf));
    return n > 0 ? std::string(buf, static_cast<size_t>(std::min<int32_t>(n, sizeof(buf) - 1))) : std::string();
}

std::string Model::chat_template(const std::string& name) const {
    const char* tmpl = llama_model_chat_template(model_.get(), name.empty() ? nullptr : name.c_str());
    return tmpl ? std::string(tmpl) : std::string();
}

}  // namespace llamabatch
