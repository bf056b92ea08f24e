#include "llamabatch/devices.h"

#include <cctype>

#include "ggml-backend.h"
#include "llama.h"
#include "llamabatch/model.h"

// Set by CMake for CUDA builds (see CMakeLists.txt).
#ifndef LLAMABATCH_CUDA_VERSION
#define LLAMABATCH_CUDA_VERSION ""
#endif
#ifndef LLAMABATCH_CUDA_ARCHITECTURES
#define LLAMABATCH_CUDA_ARCHITECTURES ""
#endif

namespace llamabatch {

namespace {

// "CUDA0" -> "cuda:0", "CPU" -> "cpu": the spelling torch users know.
std::string user_name(const std::string& backend) {
    std::string name;
    for (char c : backend) name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t digits = name.size();
    while (digits > 0 && std::isdigit(static_cast<unsigned char>(name[digits - 1]))) --digits;
    if (digits > 0 && digits < name.size()) name.insert(digits, ":");
    return name;
}

const char* kind_name(enum ggml_backend_dev_type type) {
    switch (type) {
        case GGML_BACKEND_DEVICE_TYPE_CPU: return "cpu";
        case GGML_BACKEND_DEVICE_TYPE_GPU: return "gpu";
        case GGML_BACKEND_DEVICE_TYPE_IGPU: return "igpu";
        case GGML_BACKEND_DEVICE_TYPE_ACCEL: return "accel";
        default: return "other";
    }
}

}  // namespace

BuildInfo build_info() {
    init_backend();
    BuildInfo info;
    info.llama_cpp = llama_print_system_info();
    info.cuda = ggml_backend_reg_by_name("CUDA") != nullptr;
    info.cuda_version = LLAMABATCH_CUDA_VERSION;
    info.cuda_architectures = LLAMABATCH_CUDA_ARCHITECTURES;
    return info;
}

std::vector<Device> devices() {
    init_backend();
    std::vector<Device> found;
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        Device d;
        d.backend = ggml_backend_dev_name(dev);
        d.name = user_name(d.backend);
        d.description = ggml_backend_dev_description(dev);
        d.kind = kind_name(ggml_backend_dev_type(dev));
        ggml_backend_dev_memory(dev, &d.memory_free, &d.memory_total);
        found.push_back(std::move(d));
    }
    return found;
}

std::vector<Device> gpus() {
    // As llama.cpp picks them when a model is loaded: the discrete GPUs, or the
    // integrated ones when there is no discrete one.
    std::vector<Device> discrete, integrated;
    for (Device& d : devices()) {
        if (d.kind == "gpu") discrete.push_back(std::move(d));
        else if (d.kind == "igpu") integrated.push_back(std::move(d));
    }
    return discrete.empty() ? integrated : discrete;
}

int32_t resolve_gpu_layers(std::optional<int32_t> requested) {
    if (requested) return *requested;
    return gpus().empty() ? 0 : -1;
}

}  // namespace llamabatch
