/* kernels.h — the per-ISA kernel table behind the fast CPU backend (internal to src/cpu).
 *
 * Each ISA (portable C, AVX2+FMA+F16C, AVX-512) fills one sym_cpu_kernels table; ops.c picks one
 * at run time (sym_cpu_kernels_for) and only calls through it, so the AVX files are compiled
 * with target attributes and never run on a CPU without those instructions. Kernels are single-
 * threaded: ops.c and matmul.c split the work and call them from pool tasks. All arithmetic is
 * f32 with f32 accumulation; weight dtypes are converted exactly (f16/bf16 -> f32 is exact).
 */
#ifndef SYM_CPU_KERNELS_H
#define SYM_CPU_KERNELS_H

#include <stdint.h>

#include "infer/ops.h"

#define SYM_CPU_GEMV_MAX_TOK 4  /* gemv handles 1..4 tokens per pass over the weights */
#define SYM_CPU_ATTN_BLOCK   64 /* key/value positions converted and scored per step */

typedef struct sym_cpu_kernels {
    const char *isa; /* "generic", "avx2", "avx512" */
    int nr;          /* gemm panel width (outputs per packed panel) */
    int mr;          /* gemm register block (tokens) */

    /* Straight from the weights (decode): for n_tok in 1..SYM_CPU_GEMV_MAX_TOK and every output
     * o in [o0, o1): out[t*ldo + o] = sum_i x[t*ldx + i] * w[o][i] (+ bias[o] if bias). */
    void (*gemv)(int n_tok, const float *x, int64_t ldx, const void *w, sym_dtype wt, int64_t n_in,
                 int64_t o0, int64_t o1, const float *bias, float *out, int64_t ldo);
    /* Converts weight rows [o0, o0 + n_rows) (n_rows <= nr), columns [k0, k0 + kc) to the f32
     * panel p[k * nr + r] (transposed: one vector of outputs per k); rows past n_rows are 0. */
    void (*pack)(const void *w, sym_dtype wt, int64_t n_in, int64_t o0, int n_rows, int64_t k0,
                 int64_t kc, float *panel);
    /* For t < n_tok and r < n_rows: c[t*ldc + r] = (accumulate ? c[..] : bias ? bias[r] : 0)
     * + sum_{k < kc} x[t*ldx + k] * panel[k * nr + r]. */
    void (*gemm_panel)(int64_t n_tok, const float *x, int64_t ldx, const float *panel, int64_t kc,
                       float *c, int64_t ldc, int n_rows, int accumulate, const float *bias);

    /* conversions: dst[i] = src[i] for i < n (f32 -> f16/bf16 rounds to nearest even) */
    void (*to_f32)(const void *src, sym_dtype st, float *dst, int64_t n);
    void (*from_f32)(const float *src, void *dst, sym_dtype dt, int64_t n);

    /* row ops, f32 */
    float (*sumsq)(const float *x, int64_t n);
    /* out[i] = x[i] * scale * w[i] (w of dtype wt); out may alias x */
    void (*scale_mul)(float *out, const float *x, float scale, const void *w, sym_dtype wt,
                      int64_t n);
    /* out[i] = silu(g[i]) * u[i]; out may alias g or u */
    void (*silu_mul)(float *out, const float *g, const float *u, int64_t n);
    /* out[i] = a[i] + c[i]; out may alias a or c */
    void (*add)(float *out, const float *a, const float *c, int64_t n);
    /* x = softmax(x) in place */
    void (*softmax)(float *x, int64_t n);

    /* Flash attention, one block of at most SYM_CPU_ATTN_BLOCK cache positions of one KV head.
     * attn_kt converts the keys of n_p positions (src: position j at src + j * ld elements,
     * head_dim values each) into kt[d * SYM_CPU_ATTN_BLOCK + j], transposed so scores come out
     * a vector of positions at a time; columns j >= n_p are zero. attn_step then runs n_q query
     * rows q (n_q, head_dim; pre-scaled) against positions [p0, p0 + n_p): vf holds their
     * values (row stride ld_v floats), lim[i] is how many positions query i may see (causal,
     * absolute), m, l, acc (n_q, head_dim) carry the running max, sum and unnormalized output,
     * s is scratch of SYM_CPU_ATTN_BLOCK floats. */
    void (*attn_kt)(const void *src, sym_dtype st, int64_t ld, int n_p, int head_dim, float *kt);
    void (*attn_step)(int n_q, const float *q, const int *lim, int head_dim, int p0, int n_p,
                      const float *kt, const float *vf, int64_t ld_v, float *m, float *l,
                      float *acc, float *s);
} sym_cpu_kernels;

extern const sym_cpu_kernels sym_cpu_kernels_generic;
#if defined(__x86_64__) && !defined(SYM_CPU_GENERIC_ONLY)
#define SYM_CPU_HAVE_X86 1
extern const sym_cpu_kernels sym_cpu_kernels_avx2;
extern const sym_cpu_kernels sym_cpu_kernels_avx512;
#endif

#endif
