// The CPU kernels that vendor/patches/ changes, against plain double-precision
// references, on shapes that take the patched paths:
//   0001: flash attention's tiled path (64 or more queries) with a packed batch's
//         causal block-diagonal mask (most 64x64 tiles fully masked, some
//         sequences straddling tiles), with and without ALiBi slopes;
//   0002: llamafile's tinyBLAS matrix products (2 or more columns) for f32, f16
//         and bf16 weights, including shapes that leave remainder blocks;
//   0003: flash attention in batch-invariant mode (ggml's use_ref), 16 unmasked
//         keys at a time: against the reference, and a sequence's output the
//         same bits wherever it sits in a packed batch, at 1 or 2 threads;
//   0004: gelu on f32 rows, a SIMD vector at a time;
//   0005: flash attention by default on a packed non-causal batch (each
//         sequence's rows share one mask): 0003's rows instead of the tiles.
//   0006: f32 and f16 matrix products of 32 rows or more through packed panels
//         (f16 weights times f32 activations), and bf16 ones where the CPU has
//         AVX512_BF16;
//   0007: a product with its bias ADD (and GELU), and NORM with its MUL and ADD,
//         each folded into one node: the same bits as ggml computing every node,
//         and the folded nodes' own outputs never written;
//   0008: f32 cast to f16 a row at a time: the same bits as ggml's conversion.
// 0001 and 0002 change no arithmetic, so theirs are the kernels' own tolerances;
// 0004 computes gelu in f32 where the f16 table it replaces rounded x and the
// result to f16 (relative errors up to 1e-3), so its limit is 100 times tighter.
// Exit code 0 when every check passes; each failure prints what and by how much.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "ggml-cpu.h"
#include "ggml.h"

namespace {

int g_failures = 0;

void check(bool ok, const char* what, double got, double limit) {
    std::printf("%s %s: %.3g (limit %.3g)\n", ok ? "ok  " : "FAIL", what, got, limit);
    if (!ok) ++g_failures;
}

struct Context {
    ggml_context* ctx;
    explicit Context(size_t bytes) {
        ggml_init_params p{bytes, nullptr, false};
        ctx = ggml_init(p);
    }
    ~Context() { ggml_free(ctx); }
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
};

// use_ref: ggml's reference mode, which patch 0003 makes batch-invariant
// (llama_set_batch_invariant sets it on a context's CPU backend).
void compute(ggml_context* ctx, ggml_tensor* out, int n_threads, bool use_ref = false) {
    ggml_cgraph* gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, out);
    ggml_cplan plan = ggml_graph_plan(gf, n_threads, nullptr);
    std::vector<uint8_t> work(plan.work_size);
    plan.work_data = work.data();
    plan.use_ref = use_ref;
    ggml_graph_compute(gf, &plan);
}

// The sequence each token of a batch of sequences packed end to end belongs to.
std::vector<int> sequence_of_each_token(const std::vector<int>& lengths) {
    std::vector<int> seq_of;
    for (int s = 0; s < static_cast<int>(lengths.size()); ++s) seq_of.insert(seq_of.end(), lengths[s], s);
    return seq_of;
}

// The f16 attention mask of such a batch: 0 where token i sees token j, else -inf.
template <typename Sees>
ggml_tensor* packed_mask(ggml_context* ctx, int n, Sees sees) {
    ggml_tensor* mask = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, n, n, 1, 1);
    auto* md = static_cast<ggml_fp16_t*>(mask->data);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) md[i * n + j] = ggml_fp32_to_fp16(sees(i, j) ? 0.0f : -INFINITY);
    return mask;
}

// Attention over a batch of sequences packed end to end (non-causal, as BERT):
// token i sees token j only within its own sequence.
// causal: token i sees token j only within its own sequence and for j <= i (a
// decoder's prefill): every mask row differs from the one before, which keeps
// the default on its 64x64 tiles (0001); without it the rows of a sequence share
// one mask, and the default takes patch 0005's rows.
void check_flash_attention(const std::vector<int>& lengths, float max_bias, int n_threads, const char* name,
                           bool use_ref = false, int D = 32, bool causal = false) {
    const int DK = D, DV = D, n_head = 4;
    const std::vector<int> seq_of = sequence_of_each_token(lengths);
    const int n = static_cast<int>(seq_of.size());
    auto sees = [&](int i, int j) { return seq_of[i] == seq_of[j] && (!causal || j <= i); };

    Context c(64u << 20);
    ggml_tensor* q = ggml_new_tensor_4d(c.ctx, GGML_TYPE_F32, DK, n, n_head, 1);
    ggml_tensor* k = ggml_new_tensor_4d(c.ctx, GGML_TYPE_F16, DK, n, n_head, 1);
    ggml_tensor* v = ggml_new_tensor_4d(c.ctx, GGML_TYPE_F16, DV, n, n_head, 1);
    ggml_tensor* mask = packed_mask(c.ctx, n, sees);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto* qd = static_cast<float*>(q->data);
    auto* kd = static_cast<ggml_fp16_t*>(k->data);
    auto* vd = static_cast<ggml_fp16_t*>(v->data);
    for (int64_t i = 0; i < ggml_nelements(q); ++i) qd[i] = normal(rng);
    for (int64_t i = 0; i < ggml_nelements(k); ++i) kd[i] = ggml_fp32_to_fp16(normal(rng));
    for (int64_t i = 0; i < ggml_nelements(v); ++i) vd[i] = ggml_fp32_to_fp16(normal(rng));

    const float scale = 1.0f / std::sqrt(static_cast<float>(DK));
    ggml_tensor* out = ggml_flash_attn_ext(c.ctx, q, k, v, mask, scale, max_bias, 0.0f);
    compute(c.ctx, out, n_threads, use_ref);
    const auto* od = static_cast<const float*>(out->data);  // [DV, n_head, n]

    // With ALiBi (max_bias > 0) each head's slope multiplies the mask; inside a
    // sequence the mask is 0, so the result is the same, but the kernel takes the
    // slope != 1 path (the patch's guard).
    double worst = 0.0;
    std::vector<double> w(n);
    for (int h = 0; h < n_head; ++h) {
        for (int i = 0; i < n; ++i) {
            double top = -INFINITY;
            for (int j = 0; j < n; ++j) {
                if (!sees(i, j)) {
                    w[j] = -INFINITY;
                    continue;
                }
                double s = 0.0;
                for (int d = 0; d < DK; ++d)
                    s += double(qd[(h * n + i) * DK + d]) * ggml_fp16_to_fp32(kd[(h * n + j) * DK + d]);
                w[j] = s * scale;  // ALiBi adds slope * mask, and the mask is 0 inside a sequence
                top = std::max(top, w[j]);
            }
            double sum = 0.0;
            for (int j = 0; j < n; ++j) sum += (w[j] = std::isinf(w[j]) ? 0.0 : std::exp(w[j] - top));
            for (int d = 0; d < DV; ++d) {
                double ref = 0.0;
                for (int j = 0; j < n; ++j)
                    if (w[j] != 0.0) ref += w[j] * ggml_fp16_to_fp32(vd[(h * n + j) * DV + d]);
                ref /= sum;
                worst = std::max(worst, std::abs(ref - od[(i * n_head + h) * DV + d]));
            }
        }
    }
    check(worst < 1e-4, name, worst, 1e-4);
}

// Patch 0003's batch-invariant attention (use_ref): the output rows of one
// sequence ("the target", its values drawn from a fixed seed) in a batch of
// sequences packed end to end, `before` in front of it and `after` behind it.
std::vector<float> target_attention(const std::vector<int>& before, int target_len, const std::vector<int>& after,
                                    int D, float max_bias, float softcap, int n_threads) {
    const int n_head = 4;
    std::vector<int> lengths(before);
    lengths.push_back(target_len);
    lengths.insert(lengths.end(), after.begin(), after.end());
    const int target = static_cast<int>(before.size());
    const std::vector<int> seq_of = sequence_of_each_token(lengths);
    const int n = static_cast<int>(seq_of.size());
    const int at = static_cast<int>(std::find(seq_of.begin(), seq_of.end(), target) - seq_of.begin());
    Context c(64u << 20);
    ggml_tensor* q = ggml_new_tensor_4d(c.ctx, GGML_TYPE_F32, D, n, n_head, 1);
    ggml_tensor* k = ggml_new_tensor_4d(c.ctx, GGML_TYPE_F16, D, n, n_head, 1);
    ggml_tensor* v = ggml_new_tensor_4d(c.ctx, GGML_TYPE_F16, D, n, n_head, 1);
    ggml_tensor* mask = packed_mask(c.ctx, n, [&](int i, int j) { return seq_of[i] == seq_of[j]; });
    std::normal_distribution<float> normal(0.0f, 1.5f);
    for (int h = 0; h < n_head; ++h) {
        for (int i = 0; i < n; ++i) {
            // The target's rows come from its own seed; its neighbours' from their place
            std::mt19937 rng(seq_of[i] == target ? 1000u + h * 1000u + (i - at) : 7u + h * 100000u + i);
            for (int d = 0; d < D; ++d) {
                const size_t e = (size_t(h) * n + i) * D + d;
                static_cast<float*>(q->data)[e] = normal(rng);
                static_cast<ggml_fp16_t*>(k->data)[e] = ggml_fp32_to_fp16(normal(rng));
                static_cast<ggml_fp16_t*>(v->data)[e] = ggml_fp32_to_fp16(normal(rng));
            }
        }
    }
    ggml_tensor* out = ggml_flash_attn_ext(c.ctx, q, k, v, mask, 1.0f / std::sqrt(float(D)), max_bias, softcap);
    compute(c.ctx, out, n_threads, /*use_ref=*/true);
    const auto* od = static_cast<const float*>(out->data);  // [D, n_head, n]
    return std::vector<float>(od + size_t(at) * n_head * D, od + size_t(at + target_len) * n_head * D);
}

// The same bits for the target wherever it sits, beside whatever, at 1 or 2 threads.
void check_attention_invariance(int D, float max_bias, float softcap, const char* name) {
    const int len = 37;  // two blocks of 16 keys and a short one
    const std::vector<float> alone = target_attention({}, len, {}, D, max_bias, softcap, 1);
    const std::vector<std::vector<int>> befores = {{}, {5}, {17, 3}, {64, 60}, {100}, {1, 1, 1}};
    const std::vector<std::vector<int>> afters = {{}, {9}, {200}, {16, 16, 16}};
    double worst = 0.0;
    for (const auto& before : befores)
        for (const auto& after : afters)
            for (int threads : {1, 2}) {
                const std::vector<float> got = target_attention(before, len, after, D, max_bias, softcap, threads);
                for (size_t i = 0; i < got.size(); ++i) {
                    uint32_t a, b;
                    std::memcpy(&a, &got[i], 4);
                    std::memcpy(&b, &alone[i], 4);
                    if (a != b) worst = std::max(worst, std::abs(double(got[i]) - alone[i]) + 1e-30);
                }
            }
    check(worst == 0.0, name, worst, 0.0);
}

// C = A^T B as ggml_mul_mat computes it, for weights A of `type` (k x m) and f32
// activations B (k x n), against doubles of the values the kernel multiplies
// (weights as stored; activations rounded to the weights' dot type first, except
// where f16 weights take patch 0006's f32 panels, which multiply them in f32).
void check_matmul(ggml_type type, int k, int m, int n, int n_threads, const char* name) {
    Context c(64u << 20);
    ggml_tensor* a = ggml_new_tensor_2d(c.ctx, type, k, m);
    ggml_tensor* b = ggml_new_tensor_2d(c.ctx, GGML_TYPE_F32, k, n);
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> av(static_cast<size_t>(k) * m), bv(static_cast<size_t>(k) * n);
    for (auto& x : av) x = uniform(rng);
    for (auto& x : bv) x = uniform(rng);
    const bool f16_panels = type == GGML_TYPE_F16 && ggml_cpu_has_avx2() && ggml_cpu_has_fma() &&
                            ggml_cpu_has_f16c() && n >= 32 && m % (ggml_cpu_has_avx512() ? 32 : 16) == 0;
    auto round_to = [type](float x) {
        if (type == GGML_TYPE_F16) return ggml_fp16_to_fp32(ggml_fp32_to_fp16(x));
        if (type == GGML_TYPE_BF16) return ggml_bf16_to_fp32(ggml_fp32_to_bf16(x));
        return x;
    };
    for (size_t i = 0; i < av.size(); ++i) {
        av[i] = round_to(av[i]);
        if (type == GGML_TYPE_F16) static_cast<ggml_fp16_t*>(a->data)[i] = ggml_fp32_to_fp16(av[i]);
        else if (type == GGML_TYPE_BF16) static_cast<ggml_bf16_t*>(a->data)[i] = ggml_fp32_to_bf16(av[i]);
        else static_cast<float*>(a->data)[i] = av[i];
    }
    std::copy(bv.begin(), bv.end(), static_cast<float*>(b->data));
    ggml_tensor* out = ggml_mul_mat(c.ctx, a, b);  // [m, n]
    compute(c.ctx, out, n_threads);
    const auto* od = static_cast<const float*>(out->data);
    double worst = 0.0;
    for (int j = 0; j < n; ++j)
        for (int i = 0; i < m; ++i) {
            double ref = 0.0;
            for (int l = 0; l < k; ++l) {
                const float x = bv[size_t(j) * k + l];
                ref += double(av[size_t(i) * k + l]) * (f16_panels ? x : round_to(x));
            }
            worst = std::max(worst, std::abs(ref - od[size_t(j) * m + i]) / std::sqrt(double(k)));
        }
    // Per-term rounding of the activations is in the reference; what is left is
    // float accumulation (and, without a native bf16/f16 dot, nothing more).
    const double limit = 1e-5;
    check(worst < limit, name, worst, limit);
}

// ggml_gelu (the tanh approximation, as BERT's feed-forward uses it) of values
// over the range activations take and past the table's +-10 clamp, in rows of
// `width` (a multiple of the SIMD width, or not: the tail goes element by element).
void check_gelu(int width, int n_threads, const char* name, double limit) {
    Context c(16u << 20);
    const int rows = 64;
    ggml_tensor* x = ggml_new_tensor_2d(c.ctx, GGML_TYPE_F32, width, rows);
    auto* xd = static_cast<float*>(x->data);
    for (int64_t i = 0; i < ggml_nelements(x); ++i) {
        xd[i] = -12.0f + 24.0f * static_cast<float>(i) / static_cast<float>(ggml_nelements(x) - 1);
    }
    ggml_tensor* out = ggml_gelu(c.ctx, x);
    compute(c.ctx, out, n_threads);
    const auto* od = static_cast<const float*>(out->data);
    double worst = 0.0;
    for (int64_t i = 0; i < ggml_nelements(x); ++i) {
        const double v = xd[i];
        const double ref = 0.5 * v * (1.0 + std::tanh(0.79788456080286535588 * v * (1.0 + 0.044715 * v * v)));
        worst = std::max(worst, std::abs(ref - od[i]) / std::max(1.0, std::abs(ref)));
    }
    check(worst < limit, name, worst, limit);
}

// A float that no computation here produces: marks a tensor nothing has written.
constexpr uint32_t kUnwritten = 0x7fc0dead;  // a quiet NaN with a payload

void mark_unwritten(ggml_tensor* t) {
    auto* d = static_cast<uint32_t*>(t->data);
    std::fill(d, d + ggml_nelements(t), kUnwritten);
}

bool unwritten(const ggml_tensor* t) {
    const auto* d = static_cast<const uint32_t*>(t->data);
    return std::all_of(d, d + ggml_nelements(t), [](uint32_t x) { return x == kUnwritten; });
}

double max_abs_diff(const ggml_tensor* a, const ggml_tensor* b) {
    const auto* x = static_cast<const float*>(a->data);
    const auto* y = static_cast<const float*>(b->data);
    double worst = std::memcmp(x, y, ggml_nbytes(a)) == 0 ? 0.0 : 1e-300;  // bits differ, values may not
    for (int64_t i = 0; i < ggml_nelements(a); ++i) worst = std::max(worst, std::abs(double(x[i]) - double(y[i])));
    return worst;
}

void fill_uniform(ggml_tensor* t, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> uniform(lo, hi);
    auto* d = static_cast<float*>(t->data);
    for (int64_t i = 0; i < ggml_nelements(t); ++i) d[i] = uniform(rng);
}

// Patch 0007: gelu?(W x + bias) for f32 (or f16) weights W (k x m), as one node
// where the panels run (AVX2 and FMA, F16C for f16; 32 tokens or more): the same
// bits as the three nodes computed one by one (marking the product an output
// keeps ggml from folding it), and the product's own tensor never written. Fewer
// tokens: nothing folded.
void check_fused_matmul_bias(int k, int m, int n, int n_threads, bool gelu, const char* name,
                             ggml_type type = GGML_TYPE_F32) {
    Context c(128u << 20);
    ggml_tensor* w = ggml_new_tensor_2d(c.ctx, type, k, m);
    ggml_tensor* x = ggml_new_tensor_2d(c.ctx, GGML_TYPE_F32, k, n);
    ggml_tensor* bias = ggml_new_tensor_1d(c.ctx, GGML_TYPE_F32, m);
    if (type == GGML_TYPE_F16) {
        std::mt19937 rng(21);
        std::uniform_real_distribution<float> uniform(-0.1f, 0.1f);
        for (int64_t i = 0; i < ggml_nelements(w); ++i)
            static_cast<ggml_fp16_t*>(w->data)[i] = ggml_fp32_to_fp16(uniform(rng));
    } else {
        fill_uniform(w, 21, -0.1f, 0.1f);
    }
    fill_uniform(x, 22, -2.0f, 2.0f);
    fill_uniform(bias, 23);
    ggml_tensor* outs[2];
    ggml_tensor* products[2];
    for (int unfused = 0; unfused < 2; ++unfused) {
        products[unfused] = ggml_mul_mat(c.ctx, w, x);
        ggml_tensor* y = ggml_add(c.ctx, products[unfused], bias);
        if (gelu) y = ggml_gelu(c.ctx, y);
        if (unfused) ggml_set_output(products[unfused]);
        mark_unwritten(products[unfused]);
        compute(c.ctx, y, n_threads);
        outs[unfused] = y;
    }
    const bool folds = ggml_cpu_has_avx2() && ggml_cpu_has_fma() && (type == GGML_TYPE_F32 || ggml_cpu_has_f16c()) &&
                       n >= 32 && m % (ggml_cpu_has_avx512() ? 32 : 16) == 0;
    check(unwritten(products[0]) == folds && !unwritten(products[1]),
          folds ? "  (the product is folded: its tensor left unwritten)" : "  (nothing folded: the product is written)",
          unwritten(products[0]), folds);
    check(max_abs_diff(outs[0], outs[1]) == 0.0, name, max_abs_diff(outs[0], outs[1]), 0.0);
}

// Patch 0007: ggml_norm, times a row of weights, plus a row of biases (BERT's
// LayerNorm) as one node: the same bits as the three nodes one by one, the
// norm's and the product's tensors never written.
void check_fused_layer_norm(int width, int rows, int n_threads, const char* name) {
    Context c(64u << 20);
    ggml_tensor* x = ggml_new_tensor_2d(c.ctx, GGML_TYPE_F32, width, rows);
    ggml_tensor* w = ggml_new_tensor_1d(c.ctx, GGML_TYPE_F32, width);
    ggml_tensor* b = ggml_new_tensor_1d(c.ctx, GGML_TYPE_F32, width);
    fill_uniform(x, 31, -3.0f, 5.0f);
    fill_uniform(w, 32, 0.5f, 1.5f);
    fill_uniform(b, 33);
    ggml_tensor* outs[2];
    ggml_tensor* norms[2];
    for (int unfused = 0; unfused < 2; ++unfused) {
        norms[unfused] = ggml_norm(c.ctx, x, 1e-12f);
        ggml_tensor* scaled = ggml_mul(c.ctx, norms[unfused], w);
        ggml_tensor* y = ggml_add(c.ctx, scaled, b);
        if (unfused) ggml_set_output(norms[unfused]);
        mark_unwritten(norms[unfused]);
        mark_unwritten(scaled);
        compute(c.ctx, y, n_threads);
        outs[unfused] = y;
    }
    check(unwritten(norms[0]) && !unwritten(norms[1]), "  (the norm is folded: its tensor left unwritten)",
          unwritten(norms[0]), 1);
    check(max_abs_diff(outs[0], outs[1]) == 0.0, name, max_abs_diff(outs[0], outs[1]), 0.0);
}

// Patch 0008: an f32 tensor, permuted as llama.cpp permutes K and V for flash
// attention, cast to f16: every element the same bits as ggml_fp32_to_fp16.
void check_cast_to_f16(int head, int tokens, int heads, int n_threads, const char* name) {
    Context c(64u << 20);
    ggml_tensor* x = ggml_new_tensor_3d(c.ctx, GGML_TYPE_F32, head, heads, tokens);
    fill_uniform(x, 41, -70000.0f, 70000.0f);  // past f16's largest finite value too
    auto* xd = static_cast<float*>(x->data);
    for (int64_t i = 0; i < ggml_nelements(x); i += 7) xd[i] *= 1e-9f;  // and into its subnormals
    ggml_tensor* y = ggml_cast(c.ctx, ggml_permute(c.ctx, x, 0, 2, 1, 3), GGML_TYPE_F16);  // [head, tokens, heads]
    compute(c.ctx, y, n_threads);
    const auto* yd = static_cast<const ggml_fp16_t*>(y->data);
    int64_t wrong = 0;
    for (int h = 0; h < heads; ++h)
        for (int t = 0; t < tokens; ++t)
            for (int d = 0; d < head; ++d) {
                const ggml_fp16_t want = ggml_fp32_to_fp16(xd[(int64_t(t) * heads + h) * head + d]);
                const ggml_fp16_t got = yd[(int64_t(h) * tokens + t) * head + d];
                wrong += std::memcmp(&want, &got, sizeof want) != 0;
            }
    check(wrong == 0, name, double(wrong), 0.0);
}

}  // namespace

int main() {
    // 256 tokens: lengths as a packed batch of short texts gives them, some across
    // 64-token tile boundaries, one longer than a tile.
    const std::vector<int> packed = {5, 17, 9, 33, 3, 70, 12, 1, 24, 16, 30, 36};
    // 0001: the default's tiles, under causal masks
    for (int threads : {1, 2}) {
        check_flash_attention(packed, 0.0f, threads, threads == 1 ? "flash attention, packed causal mask, 1 thread"
                                                                  : "flash attention, packed causal mask, 2 threads",
                              false, 32, /*causal=*/true);
    }
    check_flash_attention(packed, 8.0f, 2, "flash attention, packed causal mask, ALiBi slopes", false, 32, true);
    check_flash_attention({64, 64, 64, 64}, 0.0f, 2, "flash attention, causal sequences on tile boundaries", false, 32,
                          true);
    // 0005: the default's rows for a packed non-causal batch
    for (int threads : {1, 2}) {
        check_flash_attention(packed, 0.0f, threads, threads == 1 ? "flash attention, packed mask, 1 thread"
                                                                  : "flash attention, packed mask, 2 threads");
    }
    check_flash_attention(packed, 8.0f, 2, "flash attention, packed mask, ALiBi slopes");
    check_flash_attention({64, 64, 64, 64}, 0.0f, 2, "flash attention, sequences on tile boundaries");
    check_flash_attention({200}, 0.0f, 2, "flash attention, one sequence, nothing masked");
    check_flash_attention({20, 30, 14}, 0.0f, 2, "flash attention, packed mask, head 64", false, 64);
    // 0003: the batch-invariant path (use_ref), 16 keys at a time, for head sizes 32 and 64
    for (int D : {32, 64}) {
        const bool d32 = D == 32;
        check_flash_attention(packed, 0.0f, 2, d32 ? "batch-invariant flash attention, packed mask, head 32"
                                                   : "batch-invariant flash attention, packed mask, head 64",
                              /*use_ref=*/true, D);
        check_flash_attention({200}, 8.0f, 1, d32 ? "batch-invariant flash attention, 200 keys, ALiBi, head 32"
                                                  : "batch-invariant flash attention, 200 keys, ALiBi, head 64",
                              /*use_ref=*/true, D);
        check_attention_invariance(D, 0.0f, 0.0f, d32 ? "batch-invariant attention, same bits anywhere, head 32"
                                                      : "batch-invariant attention, same bits anywhere, head 64");
    }
    check_attention_invariance(32, 8.0f, 30.0f, "batch-invariant attention, same bits anywhere, ALiBi and softcap");

    for (int threads : {1, 2}) {
        const bool one = threads == 1;
        check_matmul(GGML_TYPE_F32, 384, 1536, 96, threads, one ? "matmul f32 384x1536 by 96, 1 thread"
                                                                : "matmul f32 384x1536 by 96, 2 threads");
        check_matmul(GGML_TYPE_F16, 384, 1536, 96, threads, one ? "matmul f16 384x1536 by 96, 1 thread"
                                                                : "matmul f16 384x1536 by 96, 2 threads");
        check_matmul(GGML_TYPE_BF16, 384, 1536, 96, threads, one ? "matmul bf16 384x1536 by 96, 1 thread"
                                                                 : "matmul bf16 384x1536 by 96, 2 threads");
    }
    check_matmul(GGML_TYPE_F32, 1536, 384, 37, 2, "matmul f32 1536x384 by 37 (remainder blocks)");
    // 0006: f32 through packed panels (32 rows or more): a k that is not a multiple
    // of 8, one past two packed blocks of 256, weight rows that leave a short last
    // job, token counts that leave a short last micro-tile, more threads than jobs
    check_matmul(GGML_TYPE_F32, 300, 96, 53, 3, "matmul f32 300x96 by 53, 3 threads (every tail)");
    check_matmul(GGML_TYPE_F32, 520, 160, 200, 4, "matmul f32 520x160 by 200, 4 threads (three k blocks)");
    check_matmul(GGML_TYPE_F32, 64, 32, 32, 8, "matmul f32 64x32 by 32, 8 threads (one job)");
    check_matmul(GGML_TYPE_BF16, 384, 388, 7, 2, "matmul bf16 384x388 by 7 (remainder blocks)");
    // bf16 through the panels (AVX512_BF16; elsewhere these run tinyBLAS): two
    // packed blocks of 512 and a short third, a short last job and micro-tile,
    // more threads than jobs; an odd k (pairs of k cannot form) keeps tinyBLAS
    check_matmul(GGML_TYPE_BF16, 1100, 96, 53, 3, "matmul bf16 1100x96 by 53, 3 threads (every tail)");
    check_matmul(GGML_TYPE_BF16, 520, 160, 200, 4, "matmul bf16 520x160 by 200, 4 threads");
    check_matmul(GGML_TYPE_BF16, 64, 32, 32, 8, "matmul bf16 64x32 by 32, 8 threads (one job)");
    check_matmul(GGML_TYPE_BF16, 301, 64, 40, 2, "matmul bf16 301x64 by 40 (odd k: tinyBLAS)");
    // f16 weights through the f32 panels: the tails and blocks as for f32
    check_matmul(GGML_TYPE_F16, 300, 96, 53, 3, "matmul f16 300x96 by 53, 3 threads (every tail)");
    check_matmul(GGML_TYPE_F16, 520, 160, 200, 4, "matmul f16 520x160 by 200, 4 threads (three k blocks)");
    check_matmul(GGML_TYPE_F16, 384, 388, 7, 2, "matmul f16 384x388 by 7 (tinyBLAS, activations in f16)");
    for (int threads : {1, 2}) {
        check_gelu(1536, threads, threads == 1 ? "gelu, rows of 1536, 1 thread" : "gelu, rows of 1536, 2 threads",
                   1e-5);
    }
    // The last 5 of each row run element by element through the f16 table.
    check_gelu(1541, 2, "gelu, rows of 1541 (an element-by-element tail)", 2e-3);
    // 0007: a feed-forward's first product with its bias and gelu; the next
    // three with their bias alone; three k blocks; too few tokens to fold
    check_fused_matmul_bias(384, 1536, 96, 2, true, "matmul f32 + bias + gelu folded, 384x1536 by 96");
    check_fused_matmul_bias(1536, 384, 53, 2, false, "matmul f32 + bias folded, 1536x384 by 53");
    check_fused_matmul_bias(520, 160, 200, 4, true, "matmul f32 + bias + gelu folded, 520x160 by 200, 4 threads");
    check_fused_matmul_bias(384, 384, 7, 2, true, "matmul f32 + bias + gelu, 7 tokens (not folded)");
    check_fused_matmul_bias(384, 1536, 96, 2, true, "matmul f16 + bias + gelu folded, 384x1536 by 96", GGML_TYPE_F16);
    check_fused_matmul_bias(1536, 384, 53, 3, false, "matmul f16 + bias folded, 1536x384 by 53, 3 threads",
                            GGML_TYPE_F16);
    check_fused_layer_norm(384, 300, 2, "layer norm (norm, mul, add) folded, 300 rows of 384");
    check_fused_layer_norm(1000, 3, 4, "layer norm folded, 3 rows of 1000, 4 threads");
    // 0008
    check_cast_to_f16(32, 300, 12, 2, "f32 K, permuted, cast to f16: head 32");
    check_cast_to_f16(67, 5, 3, 1, "f32 K, permuted, cast to f16: head 67 (a tail)");
    std::printf("%d failure(s)\n", g_failures);
    return g_failures == 0 ? 0 : 1;
}
