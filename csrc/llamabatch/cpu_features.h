// Which x86 instruction-set extensions this CPU runs, read with CPUID.
//
// The portable build picks its CPU variant from this list before the main
// module is loaded, so it lives in a small module compiled for the x86-64
// baseline. CPUID rather than /proc/cpuinfo: under an emulator such as
// qemu-user, /proc/cpuinfo is the host's, while CPUID is the emulated CPU's.
#pragma once

#include <string>
#include <vector>

namespace llamabatch {

struct CpuFeature {
    std::string name;  // as /proc/cpuinfo names it
    bool present;      // the CPU has it and the OS has enabled it
};

// Whether this CPU runs each extension (AVX and AVX-512 also need the OS to
// have switched their register state on in XCR0), by /proc/cpuinfo names:
// "sse4_2", "avx2", "avx512f", "avx512_vnni", ... Only the extensions a
// compiler may use for ggml's kernels are looked for (-march=native turns on
// all of them). Empty on other architectures.
std::vector<CpuFeature> cpu_features();

}  // namespace llamabatch
