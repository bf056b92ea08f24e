// Weight formats: which one a GGUF file holds, and a copy of it in another.
//
// The fastest lossless format depends on the CPU (ggml's sgemm converts every
// f16 load on AVX2, and multiplies bf16 natively only with AVX512-BF16), so
// llamabatch reads a file's format before loading it and can write a float copy
// of a float model. The choice of format itself is the Python layer's.
#pragma once

#include <string>

namespace llamabatch {

// The weight format a GGUF declares (its general.file_type): "f32", "f16",
// "bf16", a quantization such as "q4_1" or "q8_0", or "unknown" when the file
// does not say. Throws NotFound for a missing file, ModelError for one that is
// not a GGUF. Reads the header only.
std::string weight_format_of_file(const std::string& path);

// Writes `dst`, a copy of the float GGUF `src` whose 2-D weights are in
// `format` ("f32", "f16" or "bf16"), with llama.cpp's quantizer on n_threads
// threads (0: all). Every other tensor and all metadata are kept. Throws
// InvalidArgument for an unknown format or a quantized source (converting it
// would not restore what quantizing lost: convert the original weights
// instead), NotFound/ModelError as above, RuntimeFailure if writing fails.
void convert_weights(const std::string& src, const std::string& dst, const std::string& format, int n_threads);

}  // namespace llamabatch
