/* kernels_generic.c — portable C kernels: the fallback on CPUs without AVX2 (and on other
 * architectures). Same contracts as the SIMD tables; written so a compiler can vectorize the
 * inner loops, with several partial sums to break the dependency chains. */
#include <math.h>

#include "base/half.h"
#include "cpu/kernels.h"

#define G_NR 8

static inline float get_dt(const void *p, sym_dtype dt, int64_t i) {
    if (dt == SYM_DT_F16) return sym_f16_to_f32(((const uint16_t *)p)[i]);
    if (dt == SYM_DT_BF16) return sym_bf16_to_f32(((const uint16_t *)p)[i]);
    return ((const float *)p)[i];
}

static inline const void *row_ptr(const void *w, sym_dtype dt, int64_t row, int64_t n_cols) {
    return (const char *)w + (size_t)row * (size_t)n_cols * sym_dtype_size(dt);
}

static void g_gemv(int n_tok, const float *x, int64_t ldx, const void *w, sym_dtype wt,
                   int64_t n_in, int64_t o0, int64_t o1, const float *bias, float *out,
                   int64_t ldo) {
    for (int64_t o = o0; o < o1; o++) {
        const void *row = row_ptr(w, wt, o, n_in);
        for (int t = 0; t < n_tok; t++) {
            const float *xt = x + t * ldx;
            float s[4] = {0, 0, 0, 0};
            int64_t i = 0;
            for (; i + 4 <= n_in; i += 4)
                for (int u = 0; u < 4; u++)
                    s[u] += xt[i + u] * get_dt(row, wt, i + u);
            for (; i < n_in; i++)
                s[0] += xt[i] * get_dt(row, wt, i);
            float sum = (s[0] + s[1]) + (s[2] + s[3]);
            if (bias) sum += bias[o];
            out[t * ldo + o] = sum;
        }
    }
}

static void g_pack(const void *w, sym_dtype wt, int64_t n_in, int64_t o0, int n_rows, int64_t k0,
                   int64_t kc, float *panel) {
    for (int r = 0; r < G_NR; r++) {
        const void *row = r < n_rows ? row_ptr(w, wt, o0 + r, n_in) : NULL;
        for (int64_t k = 0; k < kc; k++)
            panel[k * G_NR + r] = row ? get_dt(row, wt, k0 + k) : 0.0f;
    }
}

static void g_gemm_panel(int64_t n_tok, const float *x, int64_t ldx, const float *panel, int64_t kc,
                         float *c, int64_t ldc, int n_rows, int accumulate, const float *bias) {
    for (int64_t t = 0; t < n_tok; t++) {
        float acc[G_NR];
        for (int r = 0; r < G_NR; r++)
            acc[r] = r >= n_rows ? 0.0f : accumulate ? c[t * ldc + r] : bias ? bias[r] : 0.0f;
        const float *xt = x + t * ldx;
        for (int64_t k = 0; k < kc; k++)
            for (int r = 0; r < G_NR; r++)
                acc[r] += xt[k] * panel[k * G_NR + r];
        for (int r = 0; r < n_rows; r++)
            c[t * ldc + r] = acc[r];
    }
}

static void g_to_f32(const void *src, sym_dtype st, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dst[i] = get_dt(src, st, i);
}

static void g_from_f32(const float *src, void *dst, sym_dtype dt, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        if (dt == SYM_DT_F16)
            ((uint16_t *)dst)[i] = sym_f32_to_f16(src[i]);
        else if (dt == SYM_DT_BF16)
            ((uint16_t *)dst)[i] = sym_f32_to_bf16(src[i]);
        else
            ((float *)dst)[i] = src[i];
    }
}

static float g_sumsq(const float *x, int64_t n) {
    float part[16] = {0}, sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        part[i & 15] += x[i] * x[i];
    for (int i = 0; i < 16; i++)
        sum += part[i];
    return sum;
}

static void g_scale_mul(float *out, const float *x, float scale, const void *w, sym_dtype wt,
                        int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * scale * get_dt(w, wt, i);
}

static void g_silu_mul(float *out, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void g_add(float *out, const float *a, const float *c, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + c[i];
}

/* 16 partial sums, like a 16-lane vector: a long row summed in one chain loses ~n ulp */
static void g_softmax(float *x, int64_t n) {
    float mx = -INFINITY, part[16] = {0};
    for (int64_t i = 0; i < n; i++)
        mx = fmaxf(mx, x[i]);
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        part[i & 15] += x[i];
    }
    float sum = 0.0f;
    for (int i = 0; i < 16; i++)
        sum += part[i];
    for (int64_t i = 0; i < n; i++)
        x[i] /= sum;
}

static void g_attn_kt(const void *src, sym_dtype st, int64_t ld, int n_p, int head_dim, float *kt) {
    for (int j = 0; j < SYM_CPU_ATTN_BLOCK; j++) {
        const void *row = j < n_p ? row_ptr(src, st, j, ld) : NULL;
        for (int d = 0; d < head_dim; d++)
            kt[d * SYM_CPU_ATTN_BLOCK + j] = row ? get_dt(row, st, d) : 0.0f;
    }
}

static void g_attn_step(int n_q, const float *q, const int *lim, int head_dim, int p0, int n_p,
                        const float *kt, const float *vf, int64_t ld_v, float *m, float *l,
                        float *acc, float *s) {
    for (int qi = 0; qi < n_q; qi++) {
        int np = lim[qi] - p0 < n_p ? lim[qi] - p0 : n_p;
        if (np <= 0) continue;
        const float *qr = q + (int64_t)qi * head_dim;
        float mx = -INFINITY;
        for (int j = 0; j < np; j++)
            s[j] = 0.0f;
        for (int d = 0; d < head_dim; d++)
            for (int j = 0; j < np; j++)
                s[j] += qr[d] * kt[d * SYM_CPU_ATTN_BLOCK + j];
        for (int j = 0; j < np; j++)
            mx = fmaxf(mx, s[j]);
        float m_new = fmaxf(m[qi], mx), corr = expf(m[qi] - m_new), sum = 0.0f;
        for (int j = 0; j < np; j++) {
            s[j] = expf(s[j] - m_new);
            sum += s[j];
        }
        l[qi] = l[qi] * corr + sum;
        m[qi] = m_new;
        float *a = acc + (int64_t)qi * head_dim;
        for (int i = 0; i < head_dim; i++)
            a[i] *= corr;
        for (int j = 0; j < np; j++)
            for (int i = 0; i < head_dim; i++)
                a[i] += s[j] * vf[j * ld_v + i];
    }
}

const sym_cpu_kernels sym_cpu_kernels_generic = {
    .isa = "generic",
    .nr = G_NR,
    .mr = 1,
    .gemv = g_gemv,
    .pack = g_pack,
    .gemm_panel = g_gemm_panel,
    .to_f32 = g_to_f32,
    .from_f32 = g_from_f32,
    .sumsq = g_sumsq,
    .scale_mul = g_scale_mul,
    .silu_mul = g_silu_mul,
    .add = g_add,
    .softmax = g_softmax,
    .attn_kt = g_attn_kt,
    .attn_step = g_attn_step,
};
