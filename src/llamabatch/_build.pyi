# Types of _build.py, which CMake writes at configure time (cmake/_build.py.in).
CUDA_MAJOR: int | None
CPU_VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] | None
CPU_BUILT_FOR: tuple[str, ...]
