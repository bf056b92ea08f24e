#include "llamabatch/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cstdint>

namespace llamabatch {

#if defined(__x86_64__) || defined(__i386__)
namespace {

struct Registers {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Registers cpuid(unsigned leaf, unsigned subleaf) {
    Registers r;
    if (__get_cpuid_max(leaf & 0x80000000u, nullptr) >= leaf) {
        __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
    }
    return r;
}

bool bit(unsigned value, int n) { return (value >> n) & 1u; }

// XCR0: which register states the OS saves on a context switch. The mnemonic
// needs no -mxsave, so this file builds for the baseline.
uint64_t xcr0() {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

}  // namespace

std::vector<CpuFeature> cpu_features() {
    std::vector<CpuFeature> found;
    auto add = [&found](bool present, const char* name) { found.push_back({name, present}); };
    const Registers l1 = cpuid(1, 0);
    const Registers l7 = cpuid(7, 0);
    const Registers l7s1 = l7.eax >= 1 ? cpuid(7, 1) : Registers{};

    const bool osxsave = bit(l1.ecx, 27);
    const uint64_t xcr = osxsave ? xcr0() : 0;
    const bool os_avx = (xcr & 0x6) == 0x6;        // XMM and YMM state
    const bool os_avx512 = (xcr & 0xe6) == 0xe6;   // and opmask, ZMM0-15 upper halves, ZMM16-31
    const bool os_amx = (xcr & 0x60000) == 0x60000;  // tile config and tile data

    add(bit(l1.ecx, 1), "pclmulqdq");
    add(bit(l1.ecx, 9), "ssse3");
    add(bit(l1.ecx, 19), "sse4_1");
    add(bit(l1.ecx, 20), "sse4_2");
    add(bit(l1.ecx, 22), "movbe");
    add(bit(l1.ecx, 23), "popcnt");
    add(bit(l7.ebx, 3), "bmi1");
    add(bit(l7.ebx, 8), "bmi2");
    add(bit(l7.ecx, 8), "gfni");
    add(os_avx && bit(l1.ecx, 28), "avx");
    add(os_avx && bit(l1.ecx, 29), "f16c");
    add(os_avx && bit(l1.ecx, 12), "fma");
    add(os_avx && bit(l7.ebx, 5), "avx2");
    add(os_avx && bit(l7.ecx, 9), "vaes");
    add(os_avx && bit(l7.ecx, 10), "vpclmulqdq");
    add(os_avx && bit(l7s1.eax, 4), "avx_vnni");
    add(os_avx512 && bit(l7.ebx, 16), "avx512f");
    add(os_avx512 && bit(l7.ebx, 17), "avx512dq");
    add(os_avx512 && bit(l7.ebx, 21), "avx512ifma");
    add(os_avx512 && bit(l7.ebx, 28), "avx512cd");
    add(os_avx512 && bit(l7.ebx, 30), "avx512bw");
    add(os_avx512 && bit(l7.ebx, 31), "avx512vl");
    add(os_avx512 && bit(l7.ecx, 1), "avx512vbmi");
    add(os_avx512 && bit(l7.ecx, 6), "avx512_vbmi2");
    add(os_avx512 && bit(l7.ecx, 11), "avx512_vnni");
    add(os_avx512 && bit(l7.ecx, 12), "avx512_bitalg");
    add(os_avx512 && bit(l7.ecx, 14), "avx512_vpopcntdq");
    add(os_avx512 && bit(l7.edx, 23), "avx512_fp16");
    add(os_avx512 && bit(l7s1.eax, 5), "avx512_bf16");
    add(os_amx && bit(l7.edx, 24), "amx_tile");
    add(os_amx && bit(l7.edx, 25), "amx_int8");
    add(os_amx && bit(l7.edx, 22), "amx_bf16");
    return found;
}

#else

std::vector<CpuFeature> cpu_features() { return {}; }

#endif

}  // namespace llamabatch
