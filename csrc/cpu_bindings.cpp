// nanobind glue for llamabatch._cpuid, the small module that reads the CPU's
// features before the main module is chosen. Compiled for the x86-64
// baseline, so it loads on any CPU the portable build supports.
#include <nanobind/nanobind.h>

#include "llamabatch/cpu_features.h"

namespace nb = nanobind;

NB_MODULE(_cpuid, m) {
    m.def("cpu_features", [] {
              nb::dict features;
              for (const auto& f : llamabatch::cpu_features()) features[f.name.c_str()] = f.present;
              return features;
          },
          nb::sig("def cpu_features() -> dict[str, bool]"),
          "Whether this CPU runs each x86 extension a compiler may use for ggml's kernels, by its "
          "/proc/cpuinfo name (read with CPUID, so right under an emulator too; empty on other "
          "architectures).");
}
