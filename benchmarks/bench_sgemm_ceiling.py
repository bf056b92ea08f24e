"""numpy's BLAS (OpenBLAS in numpy's wheels) on all-MiniLM-L6-v2's f32 shapes: GFLOP/s.

    OPENBLAS_NUM_THREADS=2 python benchmarks/bench_sgemm_ceiling.py [tokens=512]

The ceiling the issue measures ggml's product against (benchmarks/cpp/bench_sgemm_f32.cpp
measures ggml's on the same shapes); threadpoolctl, where installed, names the kernel family.
"""
from __future__ import annotations

import sys
import time

import numpy as np

SHAPES = ((384, 384), (1536, 384), (384, 1536))  # (output rows, k)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    rng = np.random.default_rng(1)
    for m, k in SHAPES:
        w = rng.standard_normal((m, k), dtype=np.float32)
        x = rng.standard_normal((n, k), dtype=np.float32)
        best = float("inf")
        for _ in range(40):
            t0 = time.perf_counter()
            for _ in range(3):
                x @ w.T
            best = min(best, (time.perf_counter() - t0) / 3)
        print(f"M={m:4} K={k:4} N={n:4}: {2 * m * k * n / best / 1e9:6.1f} GFLOP/s")
    try:
        from threadpoolctl import threadpool_info

        print([(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()])
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
