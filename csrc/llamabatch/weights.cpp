#include "llamabatch/weights.h"

#include <filesystem>
#include <memory>

#include "llama.h"
#include "llamabatch/errors.h"
#include "llamabatch/gguf_file.h"
#include "llamabatch/model.h"

namespace llamabatch {
namespace {

// general.file_type values (llama_ftype) by the names llama.cpp's tools use.
std::string ftype_name(int64_t ftype) {
    switch (ftype) {
        case LLAMA_FTYPE_ALL_F32: return "f32";
        case LLAMA_FTYPE_MOSTLY_F16: return "f16";
        case LLAMA_FTYPE_MOSTLY_BF16: return "bf16";
        case LLAMA_FTYPE_MOSTLY_Q4_0: return "q4_0";
        case LLAMA_FTYPE_MOSTLY_Q4_1: return "q4_1";
        case LLAMA_FTYPE_MOSTLY_Q5_0: return "q5_0";
        case LLAMA_FTYPE_MOSTLY_Q5_1: return "q5_1";
        case LLAMA_FTYPE_MOSTLY_Q8_0: return "q8_0";
        case LLAMA_FTYPE_MOSTLY_Q2_K: return "q2_k";
        case LLAMA_FTYPE_MOSTLY_Q3_K_S: return "q3_k_s";
        case LLAMA_FTYPE_MOSTLY_Q3_K_M: return "q3_k_m";
        case LLAMA_FTYPE_MOSTLY_Q3_K_L: return "q3_k_l";
        case LLAMA_FTYPE_MOSTLY_Q4_K_S: return "q4_k_s";
        case LLAMA_FTYPE_MOSTLY_Q4_K_M: return "q4_k_m";
        case LLAMA_FTYPE_MOSTLY_Q5_K_S: return "q5_k_s";
        case LLAMA_FTYPE_MOSTLY_Q5_K_M: return "q5_k_m";
        case LLAMA_FTYPE_MOSTLY_Q6_K: return "q6_k";
        default: return "quantized (file type " + str(ftype) + ")";
    }
}

llama_ftype float_ftype(const std::string& format) {
    if (format == "f32") return LLAMA_FTYPE_ALL_F32;
    if (format == "f16") return LLAMA_FTYPE_MOSTLY_F16;
    if (format == "bf16") return LLAMA_FTYPE_MOSTLY_BF16;
    throw InvalidArgument("weight format '" + format + "' is not one of f32, f16, bf16");
}

bool is_float(const std::string& format) { return format == "f32" || format == "f16" || format == "bf16"; }

}  // namespace

std::string weight_format_of_file(const std::string& path) {
    const long long ftype = GgufHeader(path).integer("general.file_type", -1);
    return ftype < 0 ? "unknown" : ftype_name(ftype);
}

void convert_weights(const std::string& src, const std::string& dst, const std::string& format, int n_threads) {
    const llama_ftype ftype = float_ftype(format);
    const std::string from = weight_format_of_file(src);
    if (!is_float(from)) {
        throw InvalidArgument("'" + src + "' holds " + from + " weights; only f32, f16 and bf16 models can be "
                              "converted to " + format + " (a copy would not restore what quantizing lost: "
                              "convert the original weights instead)");
    }
    llama_model_quantize_params params = llama_model_quantize_default_params();
    params.nthread = n_threads;
    params.ftype = ftype;
    params.pure = true;  // every 2-D weight in `format`: no per-tensor mixtures
    params.quantize_output_tensor = true;
    if (llama_model_quantize(src.c_str(), dst.c_str(), &params) != 0) {
        throw RuntimeFailure("llama.cpp could not write a " + format + " copy of '" + src + "' to '" + dst +
                             "' (is the folder writable, with room for it?)");
    }
}

}  // namespace llamabatch
