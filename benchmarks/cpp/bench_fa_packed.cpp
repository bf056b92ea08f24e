// ggml's CPU flash attention on a packed batch of a non-causal model, the shape
// all-MiniLM-L6-v2's embeddings give it (12 heads of 32, f16 K and V, texts packed
// end to end, each token seeing its own text only): milliseconds per call and
// GFLOP/s of the live work (2 x L^2 x (DK + DV) per text and head), the best of
// 40 runs, for the default mode and for use_ref (batch invariance); and an FNV-1a
// hash of the output bytes, so that two builds' results can be compared bit for
// bit. Compare builds by running each build's binary on the same machine.
//
//   B=build/cp311-cp311-linux_x86_64/llama.cpp/ggml/src   # or another build's
//   g++ -O2 -std=c++17 benchmarks/cpp/bench_fa_packed.cpp -Ivendor/llama.cpp/ggml/include \
//       $B/libggml.a $B/libggml-cpu.a $B/libggml-base.a -fopenmp -lpthread -ldl -lm -o /tmp/bench_fa_packed
//   /tmp/bench_fa_packed [threads=2] [text length=180] [texts=2]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "ggml-cpu.h"
#include "ggml.h"

int main(int argc, char** argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const int len = argc > 2 ? atoi(argv[2]) : 180;
    const int n_texts = argc > 3 ? atoi(argv[3]) : 2;
    const int D = 32, n_head = 12, n = len * n_texts;

    ggml_init_params ip{size_t(256) << 20, nullptr, false};
    ggml_context* ctx = ggml_init(ip);
    ggml_tensor* q = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, D, n, n_head, 1);
    ggml_tensor* k = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, D, n, n_head, 1);
    ggml_tensor* v = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, D, n, n_head, 1);
    ggml_tensor* mask = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, n, n, 1, 1);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t i = 0; i < ggml_nelements(q); ++i) static_cast<float*>(q->data)[i] = normal(rng);
    for (int64_t i = 0; i < ggml_nelements(k); ++i) static_cast<ggml_fp16_t*>(k->data)[i] = ggml_fp32_to_fp16(normal(rng));
    for (int64_t i = 0; i < ggml_nelements(v); ++i) static_cast<ggml_fp16_t*>(v->data)[i] = ggml_fp32_to_fp16(normal(rng));
    auto* md = static_cast<ggml_fp16_t*>(mask->data);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) md[i * n + j] = ggml_fp32_to_fp16(i / len == j / len ? 0.0f : -INFINITY);

    ggml_tensor* out = ggml_flash_attn_ext(ctx, q, k, v, mask, 1.0f / std::sqrt(float(D)), 0.0f, 0.0f);
    ggml_cgraph* gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, out);
    ggml_threadpool_params tpp = ggml_threadpool_params_default(threads);
    ggml_threadpool* tp = ggml_threadpool_new(&tpp);
    ggml_cplan plan = ggml_graph_plan(gf, threads, tp);
    std::vector<uint8_t> work(plan.work_size + 1);
    plan.work_data = work.data();

    const double flop = 2.0 * double(len) * len * (D + D) * n_head * n_texts;
    for (int mode = 0; mode < 2; ++mode) {
        plan.use_ref = mode == 1;
        double best = 1e30;
        for (int round = 0; round < 40; ++round) {
            auto t0 = std::chrono::steady_clock::now();
            ggml_graph_compute(gf, &plan);
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        uint64_t hash = 1469598103934665603ull;
        const auto* bytes = static_cast<const uint8_t*>(out->data);
        for (size_t i = 0; i < ggml_nbytes(out); ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
        printf("%d texts of %d tokens, %d heads of %d, threads=%d, %-8s %8.3f ms  %6.1f GFLOP/s  output hash %016llx\n",
               n_texts, len, n_head, D, threads, mode ? "use_ref" : "default", best * 1e3, flop / best / 1e9,
               static_cast<unsigned long long>(hash));
    }
    ggml_threadpool_free(tp);
    ggml_free(ctx);
}
