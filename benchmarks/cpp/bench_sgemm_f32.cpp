// ggml's matrix product of f32 (or bf16) weights on all-MiniLM-L6-v2's shapes
// (384x384, 1536x384, 384x1536 weights by N tokens): GFLOP/s of the default path
// (patch 0006's packed panels from 32 tokens up; bf16 on CPUs with AVX512_BF16)
// against tinyBLAS (what use_ref runs), the best of 40 alternating runs each, in
// one process and one thread pool; and the largest error against double
// precision (of the weights and tokens as the product sees them: bf16 rounds
// the tokens too), relative to the sum of |terms|.
//
//   B=build/cp311-cp311-linux_x86_64/llama.cpp/ggml/src   # or another build's
//   g++ -O2 -std=c++17 benchmarks/cpp/bench_sgemm_f32.cpp -Ivendor/llama.cpp/ggml/include \
//       $B/libggml.a $B/libggml-cpu.a $B/libggml-base.a -fopenmp -lpthread -ldl -lm -o /tmp/bench_sgemm_f32
//   /tmp/bench_sgemm_f32 [threads=2] [tokens=512] [weights=f32|bf16]
//
// benchmarks/bench_sgemm_ceiling.py measures numpy's BLAS on the same shapes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "ggml-cpu.h"
#include "ggml.h"
#include <cstring>
int main(int argc, char** argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int N = argc > 2 ? atoi(argv[2]) : 512;
    const bool bf16 = argc > 3 && strcmp(argv[3], "bf16") == 0;
    struct S { int M, K; } shapes[] = {{384, 384}, {1536, 384}, {384, 1536}};
    bool use_ref = getenv("USE_REF") != nullptr;
    for (auto s : shapes) {
        ggml_init_params ip{(size_t)1 << 30, nullptr, false};
        ggml_context* ctx = ggml_init(ip);
        ggml_tensor* W = ggml_new_tensor_2d(ctx, bf16 ? GGML_TYPE_BF16 : GGML_TYPE_F32, s.K, s.M);
        ggml_tensor* X = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, s.K, N);
        std::mt19937 rng(1);
        std::normal_distribution<float> nd(0, 1);
        // w, x: the values the product multiplies (bf16: both rounded to bf16)
        std::vector<float> w(size_t(s.K) * s.M), x(size_t(s.K) * N);
        auto as_used = [&](float v) { return bf16 ? ggml_bf16_to_fp32(ggml_fp32_to_bf16(v)) : v; };
        for (size_t i = 0; i < w.size(); ++i) {
            const float v = nd(rng);
            if (bf16) ((ggml_bf16_t*)W->data)[i] = ggml_fp32_to_bf16(v); else ((float*)W->data)[i] = v;
            w[i] = as_used(v);
        }
        for (size_t i = 0; i < x.size(); ++i) x[i] = as_used(((float*)X->data)[i] = nd(rng));
        ggml_tensor* Y = ggml_mul_mat(ctx, W, X);
        ggml_cgraph* gf = ggml_new_graph(ctx);
        ggml_build_forward_expand(gf, Y);
        ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
        ggml_threadpool* tp = ggml_threadpool_new(&tpp);
        ggml_cplan plan = ggml_graph_plan(gf, threads, tp);
        std::vector<uint8_t> work(plan.work_size + 1);
        plan.work_data = work.data();
        plan.use_ref = use_ref;
        ggml_graph_compute(gf, &plan);
        double err = 0;
        const float* y = (const float*)Y->data;
        for (int t = 0; t < N; t += 37)
            for (int i = 0; i < s.M; i += 7) {
                double r = 0, a = 0;
                for (int k = 0; k < s.K; ++k) {
                    double p = (double)w[size_t(i) * s.K + k] * x[size_t(t) * s.K + k];
                    r += p; a += fabs(p);
                }
                err = fmax(err, fabs(y[t * s.M + i] - r) / a);
            }
        double best[2] = {1e30, 1e30};
        for (int round = 0; round < 40; ++round) {
            for (int mode = 0; mode < 2; ++mode) {
                plan.use_ref = mode == 1;
                auto t0 = std::chrono::steady_clock::now();
                for (int r = 0; r < 3; ++r) ggml_graph_compute(gf, &plan);
                double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 3;
                best[mode] = std::min(best[mode], el);
            }
        }
        double fl = 2.0 * s.M * s.K * N;
        printf("%s M=%4d K=%4d N=%4d threads=%d: default %6.1f  use_ref(tinyBLAS) %6.1f GFLOP/s  ratio %.2f  rel err %.2e\n", bf16 ? "bf16" : "f32 ", s.M, s.K, N, threads, fl/best[0]/1e9, fl/best[1]/1e9, best[1]/best[0], err);
        ggml_threadpool_free(tp);
        ggml_free(ctx);
    }
}
