/* ref.c — the reference backend: plain loops, f32 accumulation in the obvious order, no threads,
 * no SIMD, no tricks. It is the specification every other backend is tested against; keep it
 * obviously correct rather than fast. */
#include "cpu/ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/half.h"

typedef struct ref_backend {
    sym_backend base;
} ref_backend;

/* ---- element access ------------------------------------------------------------------------ */

float sym_ref_get(const sym_tensor *t, int64_t row, int64_t col) {
    size_t i = (size_t)row * (size_t)t->n_cols + (size_t)col;
    switch (t->type) {
    case SYM_DT_F32: return ((const float *)t->data)[i];
    case SYM_DT_F16: return sym_f16_to_f32(((const uint16_t *)t->data)[i]);
    case SYM_DT_BF16: return sym_bf16_to_f32(((const uint16_t *)t->data)[i]);
    default: break;
    }
    sym_assert_fail(__FILE__, __LINE__, "bad dtype"); /* -O0 cannot see SYM_ASSERT(0) end it */
}

void sym_ref_set(sym_tensor *t, int64_t row, int64_t col, float v) {
    size_t i = (size_t)row * (size_t)t->n_cols + (size_t)col;
    switch (t->type) {
    case SYM_DT_F32: ((float *)t->data)[i] = v; break;
    case SYM_DT_F16: ((uint16_t *)t->data)[i] = sym_f32_to_f16(v); break;
    case SYM_DT_BF16: ((uint16_t *)t->data)[i] = sym_f32_to_bf16(v); break;
    default: SYM_ASSERT(0 && "bad dtype");
    }
}

/* ---- memory (shared by the CPU backends) ---------------------------------------------------- */

sym_status sym_host_alloc(sym_backend *b, sym_tensor *t, sym_dtype type, int64_t n_cols,
                          int64_t n_rows) {
    (void)b;
    size_t n;
    SYM_CHECK(n_cols > 0 && n_rows > 0, SYM_ERR_ARG, "alloc: bad shape %lld x %lld",
              (long long)n_rows, (long long)n_cols);
    SYM_CHECK(sym_mul_ok((size_t)n_cols, (size_t)n_rows, &n) &&
                  sym_mul_ok(n, sym_dtype_size(type), &n),
              SYM_ERR_ARG, "alloc: size overflows");
    memset(t, 0, sizeof *t);
    /* 64-byte alignment for SIMD loads; zeroed as the interface promises */
    size_t padded = (n + 63) & ~(size_t)63;
    void *p = NULL;
    SYM_CHECK(padded >= n, SYM_ERR_ARG, "alloc: size overflows");
    p = sym_malloc(padded + 64);
    if (!p) return SYM_FAIL(SYM_ERR_OOM, "alloc: out of memory for %zu bytes", n);
    memset(p, 0, padded + 64);
    /* keep the raw pointer just before the aligned block so release can free it */
    uintptr_t aligned = ((uintptr_t)p + 64) & ~(uintptr_t)63;
    ((void **)aligned)[-1] = p;
    t->type = type;
    t->n_cols = n_cols;
    t->n_rows = n_rows;
    t->data = (void *)aligned;
    t->buf = (void *)aligned; /* marks memory owned by the backend (load leaves buf NULL) */
    return SYM_OK;
}

sym_status sym_host_load(sym_backend *b, sym_tensor *t, const void *host, sym_dtype type,
                         int64_t n_cols, int64_t n_rows) {
    (void)b;
    SYM_CHECK(host && n_cols > 0 && n_rows > 0, SYM_ERR_ARG, "load: bad arguments");
    memset(t, 0, sizeof *t);
    t->type = type;
    t->n_cols = n_cols;
    t->n_rows = n_rows;
    t->data = (void *)host; /* borrowed */
    return SYM_OK;
}

void sym_host_release(sym_backend *b, sym_tensor *t) {
    (void)b;
    if (t->buf) sym_free(((void **)t->buf)[-1]);
    memset(t, 0, sizeof *t);
}

sym_status sym_host_write(sym_backend *b, sym_tensor *t, const void *src, size_t bytes) {
    (void)b;
    SYM_CHECK(bytes <= sym_tensor_bytes(t), SYM_ERR_ARG, "write: %zu bytes into a %zu-byte tensor",
              bytes, sym_tensor_bytes(t));
    memcpy(t->data, src, bytes);
    return SYM_OK;
}

sym_status sym_host_read(sym_backend *b, const sym_tensor *t, void *dst, size_t bytes) {
    (void)b;
    SYM_CHECK(bytes <= sym_tensor_bytes(t), SYM_ERR_ARG, "read: %zu bytes from a %zu-byte tensor",
              bytes, sym_tensor_bytes(t));
    memcpy(dst, t->data, bytes);
    return SYM_OK;
}

sym_status sym_host_sync(sym_backend *b) {
    (void)b;
    return SYM_OK;
}

/* ---- ops ------------------------------------------------------------------------------------ */

static void ref_embed(sym_backend *b, sym_tensor *out, const sym_tensor *table,
                      const int32_t *ids, int n_tok) {
    (void)b;
    for (int t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < table->n_cols; i++)
            sym_ref_set(out, t, i, sym_ref_get(table, ids[t], i));
}

static void ref_rmsnorm(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                        float eps) {
    (void)b;
    for (int64_t t = 0; t < x->n_rows; t++) {
        float ss = 0.0f;
        for (int64_t i = 0; i < x->n_cols; i++) {
            float v = sym_ref_get(x, t, i);
            ss += v * v;
        }
        float scale = 1.0f / sqrtf(ss / (float)x->n_cols + eps);
        for (int64_t i = 0; i < x->n_cols; i++)
            sym_ref_set(out, t, i, sym_ref_get(x, t, i) * scale * (w ? sym_ref_get(w, 0, i) : 1.0f));
    }
}

static void ref_matmul(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                       const sym_tensor *bias) {
    (void)b;
    for (int64_t t = 0; t < x->n_rows; t++) {
        for (int64_t o = 0; o < w->n_rows; o++) {
            float sum = 0.0f;
            for (int64_t i = 0; i < w->n_cols; i++) sum += sym_ref_get(x, t, i) * sym_ref_get(w, o, i);
            if (bias) sum += sym_ref_get(bias, 0, o);
            sym_ref_set(out, t, o, sum);
        }
    }
}

static void ref_rope(sym_backend *b, sym_tensor *x, int n_head, int head_dim, int pos0,
                     float theta, float freq_scale, int neox) {
    (void)b;
    int half = head_dim / 2;
    for (int64_t t = 0; t < x->n_rows; t++) {
        float pos = (float)(pos0 + t) * freq_scale;
        for (int h = 0; h < n_head; h++) {
            for (int i = 0; i < half; i++) {
                float freq = powf(theta, -2.0f * (float)i / (float)head_dim);
                float c = cosf(pos * freq), s = sinf(pos * freq);
                int64_t i0 = (int64_t)h * head_dim + (neox ? i : 2 * i);
                int64_t i1 = i0 + (neox ? half : 1);
                float x0 = sym_ref_get(x, t, i0), x1 = sym_ref_get(x, t, i1);
                sym_ref_set(x, t, i0, x0 * c - x1 * s);
                sym_ref_set(x, t, i1, x0 * s + x1 * c);
            }
        }
    }
}

static void ref_store_rows(sym_backend *b, sym_tensor *cache, int64_t row0, const sym_tensor *src) {
    (void)b;
    for (int64_t r = 0; r < src->n_rows; r++)
        for (int64_t i = 0; i < src->n_cols; i++)
            sym_ref_set(cache, row0 + r, i, sym_ref_get(src, r, i));
}

static void ref_attention(sym_backend *b, sym_tensor *out, const sym_tensor *q,
                          const sym_tensor *k, const sym_tensor *v, int n_head, int n_head_kv,
                          int head_dim, int pos0, float scale) {
    (void)b;
    int group = n_head / n_head_kv;
    int n_pos_max = pos0 + (int)q->n_rows;
    float *score = sym_malloc((size_t)n_pos_max * sizeof *score);
    SYM_ASSERT(score != NULL); /* reference only: tests size it small */
    for (int64_t t = 0; t < q->n_rows; t++) {
        int n_pos = pos0 + (int)t + 1; /* causal: positions 0 .. pos0 + t */
        for (int h = 0; h < n_head; h++) {
            int kvh = h / group;
            float max = -INFINITY;
            for (int p = 0; p < n_pos; p++) {
                float s = 0.0f;
                for (int d = 0; d < head_dim; d++)
                    s += sym_ref_get(q, t, (int64_t)h * head_dim + d) *
                         sym_ref_get(k, p, (int64_t)kvh * head_dim + d);
                score[p] = s * scale;
                if (score[p] > max) max = score[p];
            }
            float sum = 0.0f;
            for (int p = 0; p < n_pos; p++) {
                score[p] = expf(score[p] - max);
                sum += score[p];
            }
            for (int d = 0; d < head_dim; d++) {
                float acc = 0.0f;
                for (int p = 0; p < n_pos; p++)
                    acc += score[p] * sym_ref_get(v, p, (int64_t)kvh * head_dim + d);
                sym_ref_set(out, t, (int64_t)h * head_dim + d, acc / sum);
            }
        }
    }
    sym_free(score);
}

static void ref_silu_mul(sym_backend *b, sym_tensor *out, const sym_tensor *gate,
                         const sym_tensor *up) {
    (void)b;
    for (int64_t t = 0; t < gate->n_rows; t++)
        for (int64_t i = 0; i < gate->n_cols; i++) {
            float g = sym_ref_get(gate, t, i);
            sym_ref_set(out, t, i, g / (1.0f + expf(-g)) * sym_ref_get(up, t, i));
        }
}

static void ref_add(sym_backend *b, sym_tensor *out, const sym_tensor *a, const sym_tensor *c) {
    (void)b;
    for (int64_t t = 0; t < a->n_rows; t++)
        for (int64_t i = 0; i < a->n_cols; i++)
            sym_ref_set(out, t, i, sym_ref_get(a, t, i) + sym_ref_get(c, t, i));
}

static void ref_softmax(sym_backend *b, sym_tensor *x) {
    (void)b;
    for (int64_t t = 0; t < x->n_rows; t++) {
        float max = -INFINITY, sum = 0.0f;
        for (int64_t i = 0; i < x->n_cols; i++) max = fmaxf(max, sym_ref_get(x, t, i));
        for (int64_t i = 0; i < x->n_cols; i++) {
            float e = expf(sym_ref_get(x, t, i) - max);
            sym_ref_set(x, t, i, e);
            sum += e;
        }
        for (int64_t i = 0; i < x->n_cols; i++) sym_ref_set(x, t, i, sym_ref_get(x, t, i) / sum);
    }
}

static void ref_argmax(sym_backend *b, sym_tensor *out, const sym_tensor *x) {
    (void)b;
    for (int64_t t = 0; t < x->n_rows; t++) {
        int64_t best = -1;
        float best_v = 0.0f;
        for (int64_t i = 0; i < x->n_cols; i++) {
            float v = sym_ref_get(x, t, i);
            if (!isnan(v) && (best < 0 || v > best_v)) best = i, best_v = v;
        }
        sym_ref_set(out, t, 0, best < 0 ? 0.0f : (float)best);
    }
}

/* (value, index) pairs, the larger value first, then the lower index */
typedef struct ref_cand {
    float v;
    int64_t i;
} ref_cand;

static int ref_cand_cmp(const void *a, const void *b) {
    const ref_cand *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

static void ref_topk(sym_backend *b, sym_tensor *out, const sym_tensor *x, int k) {
    (void)b;
    ref_cand *c = sym_malloc((size_t)x->n_cols * sizeof *c);
    SYM_ASSERT(c != NULL); /* reference only: tests size it small */
    int64_t m = 0;
    for (int64_t i = 0; i < x->n_cols; i++) {
        float v = sym_ref_get(x, 0, i);
        if (!isnan(v)) c[m++] = (ref_cand){v == 0.0f ? 0.0f : v, i};
    }
    qsort(c, (size_t)m, sizeof *c, ref_cand_cmp);
    for (int j = 0; j < k; j++) {
        sym_ref_set(out, 0, 2 * j, j < m ? c[j].v : 0.0f);
        sym_ref_set(out, 0, 2 * j + 1, j < m ? (float)c[j].i : -1.0f);
    }
    sym_free(c);
}

void sym_host_set_cols(sym_backend *b, sym_tensor *out, int64_t col0, const sym_tensor *src,
                       int accumulate) {
    (void)b;
    for (int64_t t = 0; t < src->n_rows; t++) {
        float *o = (float *)out->data + (size_t)t * (size_t)out->n_cols + (size_t)col0;
        const float *s = (const float *)src->data + (size_t)t * (size_t)src->n_cols;
        if (accumulate)
            for (int64_t j = 0; j < src->n_cols; j++) o[j] += s[j];
        else
            memcpy(o, s, (size_t)src->n_cols * sizeof *s);
    }
}

static void ref_add_rows_scaled(sym_backend *b, sym_tensor *out, const sym_tensor *a,
                                const int32_t *rows, const float *scales) {
    (void)b;
    for (int64_t i = 0; i < a->n_rows; i++)
        for (int64_t c = 0; c < a->n_cols; c++)
            sym_ref_set(out, rows[i], c,
                        sym_ref_get(out, rows[i], c) + scales[i] * sym_ref_get(a, i, c));
}

static void ref_destroy(sym_backend *b) { sym_free(b); }

static const sym_backend_ops k_ref_ops = {
    .name = "reference",
    .destroy = ref_destroy,
    .alloc = sym_host_alloc,
    .load = sym_host_load,
    .release = sym_host_release,
    .write = sym_host_write,
    .read = sym_host_read,
    .sync = sym_host_sync,
    .embed = ref_embed,
    .rmsnorm = ref_rmsnorm,
    .matmul = ref_matmul,
    .rope = ref_rope,
    .store_rows = ref_store_rows,
    .attention = ref_attention,
    .silu_mul = ref_silu_mul,
    .add = ref_add,
    .softmax = ref_softmax,
    .argmax = ref_argmax,
    .topk = ref_topk,
    .set_cols = sym_host_set_cols,
    .add_rows_scaled = ref_add_rows_scaled,
};

sym_status sym_ref_backend_create(sym_backend **out) {
    ref_backend *rb = sym_calloc(1, sizeof *rb);
    if (!rb) return SYM_FAIL(SYM_ERR_OOM, "reference backend: out of memory");
    rb->base.ops = &k_ref_ops;
    *out = &rb->base;
    return SYM_OK;
}

const char *sym_dtype_name(sym_dtype t) {
    switch (t) {
    case SYM_DT_F32: return "f32";
    case SYM_DT_F16: return "f16";
    case SYM_DT_BF16: return "bf16";
    default: return "?";
    }
}
