// Devices: what this build of llama.cpp holds (build_info) and what it can run
// on here (devices), and where a model's layers go when the caller does not say.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llamabatch {

// One device that ggml found at run time (the CPU is always one).
struct Device {
    std::string name;         // "cpu", "cuda:0", ...: the name Embedder.device uses
    std::string backend;      // ggml's name for it ("CPU", "CUDA0")
    std::string description;  // the CPU or GPU model
    std::string kind;         // "cpu", "gpu", "igpu" or "accel"
    size_t memory_free = 0;   // bytes (for the CPU: the host's)
    size_t memory_total = 0;
};

// What was compiled in.
struct BuildInfo {
    std::string llama_cpp;           // llama.cpp's system info line: CPU features, backends
    bool cuda = false;               // ggml's CUDA backend is compiled in
    std::string cuda_version;        // the toolkit built with ("" without CUDA)
    std::string cuda_architectures;  // e.g. "90-real" or "75-real,...,100-virtual"
};

BuildInfo build_info();
std::vector<Device> devices();
// The GPUs among devices() (empty in a CPU build, or with no GPU or no driver).
std::vector<Device> gpus();

// The n_gpu_layers llama.cpp gets: what the caller asked for, or, when they
// did not say (nullopt), every layer if a GPU is present and none otherwise.
int32_t resolve_gpu_layers(std::optional<int32_t> requested);

}  // namespace llamabatch
