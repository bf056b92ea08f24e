def cpu_features() -> dict[str, bool]:
    """
    Whether this CPU runs each x86 extension a compiler may use for ggml's kernels, by its /proc/cpuinfo name (read with CPUID, so right under an emulator too; empty on other architectures).
    """
