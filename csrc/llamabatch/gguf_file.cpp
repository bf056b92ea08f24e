#include "llamabatch/gguf_file.h"

#include <filesystem>

#include "gguf.h"
#include "llamabatch/errors.h"
#include "llamabatch/model.h"

namespace llamabatch {

void GgufHeader::Free::operator()(gguf_context* g) const { gguf_free(g); }

GgufHeader::GgufHeader(const std::string& path) {
    if (!std::filesystem::is_regular_file(path)) throw NotFound("model file '" + path + "' does not exist");
    init_backend();  // llamabatch's log callback, before gguf can log
    gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
    gguf_.reset(gguf_init_from_file(path.c_str(), params));
    if (!gguf_) throw ModelError("'" + path + "' is not a GGUF file llama.cpp can read");
}

GgufHeader::~GgufHeader() = default;

long long GgufHeader::integer(const std::string& key, long long absent) const {
    const int64_t id = gguf_find_key(gguf_.get(), key.c_str());
    if (id < 0) return absent;
    switch (gguf_get_kv_type(gguf_.get(), id)) {
        case GGUF_TYPE_UINT8: return gguf_get_val_u8(gguf_.get(), id);
        case GGUF_TYPE_INT8: return gguf_get_val_i8(gguf_.get(), id);
        case GGUF_TYPE_UINT16: return gguf_get_val_u16(gguf_.get(), id);
        case GGUF_TYPE_INT16: return gguf_get_val_i16(gguf_.get(), id);
        case GGUF_TYPE_UINT32: return gguf_get_val_u32(gguf_.get(), id);
        case GGUF_TYPE_INT32: return gguf_get_val_i32(gguf_.get(), id);
        case GGUF_TYPE_UINT64: return static_cast<long long>(gguf_get_val_u64(gguf_.get(), id));
        case GGUF_TYPE_INT64: return gguf_get_val_i64(gguf_.get(), id);
        default: return absent;
    }
}

std::vector<int> GgufHeader::token_types() const {
    const int64_t id = gguf_find_key(gguf_.get(), "tokenizer.ggml.token_type");
    if (id < 0 || gguf_get_kv_type(gguf_.get(), id) != GGUF_TYPE_ARRAY ||
        gguf_get_arr_type(gguf_.get(), id) != GGUF_TYPE_INT32) {
        return {};
    }
    const auto* data = static_cast<const int32_t*>(gguf_get_arr_data(gguf_.get(), id));
    return std::vector<int>(data, data + gguf_get_arr_n(gguf_.get(), id));
}

}  // namespace llamabatch
