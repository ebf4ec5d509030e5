/* ops.c — the fast CPU backend: creation and ISA dispatch, memory (host, shared with ref.c),
 * error latching, and the row-wise ops (embed, rmsnorm, rope, store_rows, silu_mul, add,
 * softmax). matmul.c and attention.c hold the two heavy ops.
 *
 * Small ops run on the calling thread: below ~32K elements a parallel_for costs more than it
 * saves. Larger ones split rows (or flat element ranges) into tasks of at least that size.
 */
#include "cpu/ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "base/alloc.h"
#include "cpu/backend.h"
#include "cpu/ref.h"

#define PAR_MIN_ELEMS 32768 /* elements per task at least for the light ops */

/* ---- ISA ------------------------------------------------------------------------------------- */

#if defined(SYM_CPU_HAVE_X86)
/* CPUID feature bits, plus XGETBV: the OS must save the AVX (and AVX-512) register state. */
static unsigned x86_features(void) {
    enum { AVX2_SET = 1, AVX512_SET = 2 };
    unsigned a, b, c, d, xcr0_lo = 0, xcr0_hi = 0, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    if ((xcr0_lo & 0x6) != 0x6) return 0; /* XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (fma && f16c && ((b >> 5) & 1)) f |= AVX2_SET;
    int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
    if ((f & AVX2_SET) && avx512 && (xcr0_lo & 0xe0) == 0xe0) f |= AVX512_SET;
    return f;
}
#endif

int sym_cpu_isa_supported(sym_cpu_isa isa) {
    switch (isa) {
    case SYM_CPU_ISA_AUTO:
    case SYM_CPU_ISA_GENERIC:
        return 1;
#if defined(SYM_CPU_HAVE_X86)
    case SYM_CPU_ISA_AVX2:
        return (x86_features() & 1) != 0;
    case SYM_CPU_ISA_AVX512:
        return (x86_features() & 2) != 0;
#endif
    default:
        return 0;
    }
}

sym_cpu_isa sym_cpu_isa_best(void) {
    if (sym_cpu_isa_supported(SYM_CPU_ISA_AVX512)) return SYM_CPU_ISA_AVX512;
    if (sym_cpu_isa_supported(SYM_CPU_ISA_AVX2)) return SYM_CPU_ISA_AVX2;
    return SYM_CPU_ISA_GENERIC;
}

const char *sym_cpu_isa_name(sym_cpu_isa isa) {
    static const char *const names[SYM_CPU_ISA_COUNT] = {"auto", "generic", "avx2", "avx512"};
    return (unsigned)isa < SYM_CPU_ISA_COUNT ? names[isa] : "?";
}

static const sym_cpu_kernels *kernels_for(sym_cpu_isa isa) {
    switch (isa) {
#if defined(SYM_CPU_HAVE_X86)
    case SYM_CPU_ISA_AVX512:
        return &sym_cpu_kernels_avx512;
    case SYM_CPU_ISA_AVX2:
        return &sym_cpu_kernels_avx2;
#endif
    default:
        return &sym_cpu_kernels_generic;
    }
}

/* ---- errors and scratch ---------------------------------------------------------------------- */

int sym_cpu_fail(sym_cpu_backend *b, sym_status st, const char *fmt, ...) {
    if (b->err != SYM_OK) return 0; /* keep the first */
    b->err = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err_msg, sizeof b->err_msg, fmt, ap);
    va_end(ap);
    return 0;
}

int sym_cpu_scratch_reserve(sym_cpu_backend *b, size_t n) {
    if (n <= b->scratch_floats) return 1;
    n = n < 2 * b->scratch_floats ? 2 * b->scratch_floats : n;
    size_t bytes;
    if (!sym_mul_ok(n, sizeof(float), &bytes) || !sym_add_ok(bytes, 64, &bytes))
        return sym_cpu_fail(b, SYM_ERR_OOM, "cpu: scratch of %zu floats overflows", n);
    for (int i = 0; i < b->n_threads; i++) {
        void *raw = sym_malloc(bytes);
        if (!raw) return sym_cpu_fail(b, SYM_ERR_OOM, "cpu: out of memory for %zu bytes", bytes);
        sym_free(b->scratch_raw[i]);
        b->scratch_raw[i] = raw;
        b->scratch[i] = (float *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    }
    b->scratch_floats = n;
    return 1;
}

/* ---- memory: host memory as in ref.c; read/sync also report latched errors ------------------- */

static sym_status take_error(sym_cpu_backend *b) {
    if (b->err == SYM_OK) return SYM_OK;
    sym_status st = b->err;
    b->err = SYM_OK;
    return SYM_FAIL(st, "cpu backend: %s", b->err_msg);
}

static sym_status cpu_read(sym_backend *base, const sym_tensor *t, void *dst, size_t bytes) {
    SYM_TRY(take_error((sym_cpu_backend *)base));
    return sym_host_read(base, t, dst, bytes);
}

static sym_status cpu_sync(sym_backend *base) { return take_error((sym_cpu_backend *)base); }

/* ---- helpers --------------------------------------------------------------------------------- */

static int same_shape(const sym_tensor *a, const sym_tensor *c) {
    return a->n_rows == c->n_rows && a->n_cols == c->n_cols;
}

/* Rows per task so a task handles >= PAR_MIN_ELEMS elements; the number of tasks. */
static int64_t row_tasks(int64_t n_rows, int64_t n_cols, int64_t *rows_per_task) {
    int64_t r = (PAR_MIN_ELEMS + n_cols - 1) / n_cols;
    if (r < 1) r = 1;
    *rows_per_task = r;
    return (n_rows + r - 1) / r;
}

/* ---- embed ----------------------------------------------------------------------------------- */

typedef struct rows_job {
    sym_cpu_backend *b;
    float *out;
    const float *x, *x2;
    const void *w;
    sym_dtype wt;
    const int32_t *ids;
    int64_t n_rows, n_cols, rows_per_task;
    float eps;
} rows_job;

static void embed_task(void *ctx, int64_t task, int thread_idx) {
    (void)thread_idx;
    const rows_job *j = ctx;
    size_t row_bytes = (size_t)j->n_cols * sym_dtype_size(j->wt);
    for (int64_t t = task * j->rows_per_task; t < (task + 1) * j->rows_per_task && t < j->n_rows;
         t++)
        j->b->k->to_f32((const char *)j->w + (size_t)j->ids[t] * row_bytes, j->wt,
                        j->out + t * j->n_cols, j->n_cols);
}

static void cpu_embed(sym_backend *base, sym_tensor *out, const sym_tensor *table,
                      const int32_t *ids, int n_tok) {
    sym_cpu_backend *b = (sym_cpu_backend *)base;
    if (out->type != SYM_DT_F32 || out->n_cols != table->n_cols || n_tok < 0 ||
        out->n_rows < n_tok || (n_tok > 0 && !ids))
        SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG, "embed: %d tokens of %lld into (%lld x %lld)", n_tok,
                            (long long)table->n_cols, (long long)out->n_rows,
                            (long long)out->n_cols);
    for (int t = 0; t < n_tok; t++)
        if (ids[t] < 0 || ids[t] >= table->n_rows)
            SYM_CPU_FAIL_RETURN(b, SYM_ERR_RANGE, "embed: token id %d outside [0, %lld)", ids[t],
                                (long long)table->n_rows);
    rows_job j = {.b = b,
                  .out = out->data,
                  .w = table->data,
                  .wt = table->type,
                  .ids = ids,
                  .n_rows = n_tok,
                  .n_cols = table->n_cols};
    sym_threadpool_parallel_for(b->pool, row_tasks(n_tok, j.n_cols, &j.rows_per_task), embed_task,
                                &j);
}

/* ---- rmsnorm --------------------------------------------------------------------------------- */

static void rmsnorm_task(void *ctx, int64_t task, int thread_idx) {
    (void)thread_idx;
    const rows_job *j = ctx;
    const sym_cpu_kernels *k = j->b->k;
    for (int64_t t = task * j->rows_per_task; t < (task + 1) * j->rows_per_task && t < j->n_rows;
         t++) {
        const float *x = j->x + t * j->n_cols;
        float ss = k->sumsq(x, j->n_cols);
        float scale = 1.0f / sqrtf(ss / (float)j->n_cols + j->eps);
        if (j->w) {
            k->scale_mul(j->out + t * j->n_cols, x, scale, j->w, j->wt, j->n_cols);
        } else { /* a weight of ones */
            for (int64_t i = 0; i < j->n_cols; i++)
                j->out[t * j->n_cols + i] = x[i] * scale;
        }
    }
}

static void cpu_rmsnorm(sym_backend *base, sym_tensor *out, const sym_tensor *x,
                        const sym_tensor *w, float eps) {
    sym_cpu_backend *b = (sym_cpu_backend *)base;
    if (x->type != SYM_DT_F32 || out->type != SYM_DT_F32 || !same_shape(x, out) ||
        (w && w->n_cols * w->n_rows != x->n_cols))
        SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG, "rmsnorm: x (%lld x %lld), w of %lld",
                            (long long)x->n_rows, (long long)x->n_cols,
                            w ? (long long)(w->n_cols * w->n_rows) : 0ll);
    rows_job j = {.b = b,
                  .out = out->data,
                  .x = x->data,
                  .w = w ? w->data : NULL,
                  .wt = w ? w->type : SYM_DT_F32,
                  .n_rows = x->n_rows,
                  .n_cols = x->n_cols,
                  .eps = eps};
    sym_threadpool_parallel_for(b->pool, row_tasks(j.n_rows, j.n_cols, &j.rows_per_task),
                                rmsnorm_task, &j);
}

/* ---- rope ------------------------------------------------------------------------------------ */

typedef struct rope_job {
    sym_cpu_backend *b;
    float *x;
    int64_t n_tok, n_cols, rows_per_task;
    int n_head, head_dim, pos0, neox;
    float freq_scale;
} rope_job;

/* The same float expressions as ref.c (pos, angle, cosf/sinf), evaluated once per token and
 * pair instead of once per head. */
static void rope_task(void *ctx, int64_t task, int thread_idx) {
    const rope_job *j = ctx;
    int half = j->head_dim / 2;
    float *cs = j->b->scratch[thread_idx], *sn = cs + half;
    const float *freq = j->b->rope_freq;
    for (int64_t t = task * j->rows_per_task; t < (task + 1) * j->rows_per_task && t < j->n_tok;
         t++) {
        float pos = (float)(j->pos0 + t) * j->freq_scale;
        for (int i = 0; i < half; i++) {
            cs[i] = cosf(pos * freq[i]);
            sn[i] = sinf(pos * freq[i]);
        }
        float *row = j->x + t * j->n_cols;
        int step = j->neox ? 1 : 2, other = j->neox ? half : 1;
        for (int h = 0; h < j->n_head; h++) {
            float *hx = row + (int64_t)h * j->head_dim;
            for (int i = 0; i < half; i++) {
                float *p0 = hx + i * step, *p1 = p0 + other;
                float x0 = *p0, x1 = *p1;
                *p0 = x0 * cs[i] - x1 * sn[i];
                *p1 = x0 * sn[i] + x1 * cs[i];
            }
        }
    }
}

static void cpu_rope(sym_backend *base, sym_tensor *x, int n_head, int head_dim, int pos0,
                     float theta, float freq_scale, int neox) {
    sym_cpu_backend *b = (sym_cpu_backend *)base;
    if (x->type != SYM_DT_F32 || n_head <= 0 || head_dim <= 0 || head_dim % 2 ||
        x->n_cols != (int64_t)n_head * head_dim || pos0 < 0)
        SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG, "rope: x (%lld x %lld), %d heads of %d",
                            (long long)x->n_rows, (long long)x->n_cols, n_head, head_dim);
    int half = head_dim / 2;
    if (!sym_cpu_scratch_reserve(b, (size_t)head_dim)) return;
    if (b->rope_head_dim != head_dim || b->rope_theta != theta) {
        if (b->rope_cap < half) {
            float *f = sym_malloc((size_t)half * sizeof *f);
            if (!f) SYM_CPU_FAIL_RETURN(b, SYM_ERR_OOM, "rope: out of memory");
            sym_free(b->rope_freq);
            b->rope_freq = f;
            b->rope_cap = half;
        }
        for (int i = 0; i < half; i++)
            b->rope_freq[i] = powf(theta, -2.0f * (float)i / (float)head_dim);
        b->rope_head_dim = head_dim;
        b->rope_theta = theta;
    }
    rope_job j = {.b = b,
                  .x = x->data,
                  .n_tok = x->n_rows,
                  .n_cols = x->n_cols,
                  .n_head = n_head,
                  .head_dim = head_dim,
                  .pos0 = pos0,
                  .neox = neox,
                  .freq_scale = freq_scale};
    sym_threadpool_parallel_for(b->pool, row_tasks(j.n_tok, j.n_cols, &j.rows_per_task), rope_task,
                                &j);
}

/* ---- store_rows ------------------------------------------------------------------------------ */

static void store_task(void *ctx, int64_t task, int thread_idx) {
    (void)thread_idx;
    const rows_job *j = ctx;
    size_t esz = sym_dtype_size(j->wt);
    for (int64_t r = task * j->rows_per_task; r < (task + 1) * j->rows_per_task && r < j->n_rows;
         r++)
        j->b->k->from_f32(j->x + r * j->n_cols, (char *)j->out + (size_t)r * j->n_cols * esz, j->wt,
                          j->n_cols);
}

static void cpu_store_rows(sym_backend *base, sym_tensor *cache, int64_t row0,
                           const sym_tensor *src) {
    sym_cpu_backend *b = (sym_cpu_backend *)base;
    if (src->type != SYM_DT_F32 || src->n_cols != cache->n_cols || row0 < 0 ||
        row0 + src->n_rows > cache->n_rows)
        SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG,
                            "store_rows: %lld rows of %lld at %lld into (%lld x %lld)",
                            (long long)src->n_rows, (long long)src->n_cols, (long long)row0,
                            (long long)cache->n_rows, (long long)cache->n_cols);
    size_t off = (size_t)row0 * (size_t)cache->n_cols * sym_dtype_size(cache->type);
    rows_job j = {.b = b,
                  .out = (float *)((char *)cache->data + off),
                  .x = src->data,
                  .wt = cache->type,
                  .n_rows = src->n_rows,
                  .n_cols = src->n_cols};
    sym_threadpool_parallel_for(b->pool, row_tasks(j.n_rows, j.n_cols, &j.rows_per_task),
                                store_task, &j);
}

/* ---- elementwise and softmax ----------------------------------------------------------------- */

/* flat ranges: rows_per_task counts elements here (a multiple of 64) */
static void silu_task(void *ctx, int64_t task, int thread_idx) {
    (void)thread_idx;
    const rows_job *j = ctx;
    int64_t i0 = task * j->rows_per_task, n = j->n_rows - i0;
    if (n > j->rows_per_task) n = j->rows_per_task;
    j->b->k->silu_mul(j->out + i0, j->x + i0, j->x2 + i0, n);
}

static void add_task(void *ctx, int64_t task, int thread_idx) {
    (void)thread_idx;
    const rows_job *j = ctx;
    int64_t i0 = task * j->rows_per_task, n = j->n_rows - i0;
    if (n > j->rows_per_task) n = j->rows_per_task;
    j->b->k->add(j->out + i0, j->x + i0, j->x2 + i0, n);
}

static void elementwise(sym_cpu_backend *b, sym_parallel_fn fn, sym_tensor *out,
                        const sym_tensor *a, const sym_tensor *c, const char *name) {
    if (a->type != SYM_DT_F32 || c->type != SYM_DT_F32 || out->type != SYM_DT_F32 ||
        !same_shape(a, c) || !same_shape(a, out))
        SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG,
                            "%s: shapes (%lld x %lld), (%lld x %lld) -> "
                            "(%lld x %lld)",
                            name, (long long)a->n_rows, (long long)a->n_cols, (long long)c->n_rows,
                            (long long)c->n_cols, (long long)out->n_rows, (long long)out->n_cols);
    int64_t n = a->n_rows * a->n_cols;
    int64_t per = n / b->n_threads;
    per = per < PAR_MIN_ELEMS ? PAR_MIN_ELEMS : (per + 63) & ~(int64_t)63;
    rows_job j = {
        .b = b, .out = out->data, .x = a->data, .x2 = c->data, .n_rows = n, .rows_per_task = per};
    sym_threadpool_parallel_for(b->pool, (n + per - 1) / per, fn, &j);
}

static void cpu_silu_mul(sym_backend *base, sym_tensor *out, const sym_tensor *gate,
                         const sym_tensor *up) {
    elementwise((sym_cpu_backend *)base, silu_task, out, gate, up, "silu_mul");
}

static void cpu_add(sym_backend *base, sym_tensor *out, const sym_tensor *a, const sym_tensor *c) {
    elementwise((sym_cpu_backend *)base, add_task, out, a, c, "add");
}

static void softmax_task(void *ctx, int64_t task, int thread_idx) {
    (void)thread_idx;
    const rows_job *j = ctx;
    for (int64_t t = task * j->rows_per_task; t < (task + 1) * j->rows_per_task && t < j->n_rows;
         t++)
        j->b->k->softmax(j->out + t * j->n_cols, j->n_cols);
}

static void cpu_softmax(sym_backend *base, sym_tensor *x) {
    sym_cpu_backend *b = (sym_cpu_backend *)base;
    if (x->type != SYM_DT_F32) SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG, "softmax: x must be f32");
    rows_job j = {.b = b, .out = x->data, .n_rows = x->n_rows, .n_cols = x->n_cols};
    sym_threadpool_parallel_for(b->pool, row_tasks(j.n_rows, j.n_cols, &j.rows_per_task),
                                softmax_task, &j);
}

/* A few rows of n_embd per call (one expert's tokens): not worth a parallel_for. */
static void cpu_add_rows_scaled(sym_backend *base, sym_tensor *out, const sym_tensor *a,
                                const int32_t *rows, const float *scales) {
    sym_cpu_backend *b = (sym_cpu_backend *)base;
    if (a->type != SYM_DT_F32 || out->type != SYM_DT_F32 || a->n_cols != out->n_cols)
        SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG, "add_rows_scaled: (%lld x %lld) into (%lld x %lld)",
                            (long long)a->n_rows, (long long)a->n_cols, (long long)out->n_rows,
                            (long long)out->n_cols);
    for (int64_t i = 0; i < a->n_rows; i++)
        if (rows[i] < 0 || rows[i] >= out->n_rows || (i > 0 && rows[i] <= rows[i - 1]))
            SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG,
                                "add_rows_scaled: row %d (entry %lld) is out of range (%lld rows) "
                                "or not increasing",
                                rows[i], (long long)i, (long long)out->n_rows);
    int64_t n = a->n_cols;
    for (int64_t i = 0; i < a->n_rows; i++) {
        float *o = (float *)out->data + rows[i] * n, s = scales[i];
        const float *x = (const float *)a->data + i * n;
        for (int64_t c = 0; c < n; c++)
            o[c] += s * x[c];
    }
}

/* ---- create / destroy ------------------------------------------------------------------------ */

static void cpu_destroy(sym_backend *base) {
    sym_cpu_backend *b = (sym_cpu_backend *)base;
    if (!b) return;
    sym_threadpool_destroy(b->pool);
    if (b->scratch_raw)
        for (int i = 0; i < b->n_threads; i++)
            sym_free(b->scratch_raw[i]);
    sym_free(b->scratch_raw);
    sym_free(b->scratch);
    sym_free(b->rope_freq);
    sym_free(b);
}

static const sym_backend_ops k_cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = sym_host_alloc,
    .load = sym_host_load,
    .release = sym_host_release,
    .write = sym_host_write,
    .read = cpu_read,
    .sync = cpu_sync,
    .embed = cpu_embed,
    .rmsnorm = cpu_rmsnorm,
    .matmul = sym_cpu_matmul,
    .rope = cpu_rope,
    .store_rows = cpu_store_rows,
    .attention = sym_cpu_attention,
    .silu_mul = cpu_silu_mul,
    .add = cpu_add,
    .softmax = cpu_softmax,
    .set_cols = sym_host_set_cols,
    .add_rows_scaled = cpu_add_rows_scaled,
};

sym_status sym_cpu_backend_create_isa(int n_threads, sym_cpu_isa isa, sym_backend **out) {
    if (isa == SYM_CPU_ISA_AUTO) isa = sym_cpu_isa_best();
    SYM_CHECK((unsigned)isa < SYM_CPU_ISA_COUNT, SYM_ERR_ARG, "cpu backend: bad ISA %d", (int)isa);
    SYM_CHECK(sym_cpu_isa_supported(isa), SYM_ERR_UNSUPPORTED,
              "cpu backend: this CPU cannot run the %s kernels", sym_cpu_isa_name(isa));
    sym_status st = SYM_OK;
    sym_cpu_backend *b = sym_calloc(1, sizeof *b);
    if (!b) return SYM_FAIL(SYM_ERR_OOM, "cpu backend: out of memory");
    b->base.ops = &k_cpu_ops;
    b->isa = isa;
    b->k = kernels_for(isa);
    SYM_TRY_GOTO(sym_threadpool_create(n_threads, &b->pool));
    b->n_threads = sym_threadpool_size(b->pool);
    b->scratch = sym_calloc((size_t)b->n_threads, sizeof *b->scratch);
    b->scratch_raw = sym_calloc((size_t)b->n_threads, sizeof *b->scratch_raw);
    if (!b->scratch || !b->scratch_raw) SYM_FAIL_GOTO(SYM_ERR_OOM, "cpu backend: out of memory");
    /* the matmul panels and a decode-sized attention step, so the first tokens do not allocate */
    if (!sym_cpu_scratch_reserve(b, (size_t)b->k->nr * SYM_CPU_KC + 64 * 1024)) {
        b->err = SYM_OK;
        SYM_FAIL_GOTO(SYM_ERR_OOM, "cpu backend: out of memory for scratch");
    }
    *out = &b->base;
    return SYM_OK;
fail:
    cpu_destroy(&b->base);
    return st;
}

sym_status sym_cpu_backend_create(int n_threads, sym_backend **out) {
    return sym_cpu_backend_create_isa(n_threads, SYM_CPU_ISA_AUTO, out);
}

sym_cpu_isa sym_cpu_backend_isa(const sym_backend *b) { return ((const sym_cpu_backend *)b)->isa; }

int sym_cpu_backend_n_threads(const sym_backend *b) {
    return ((const sym_cpu_backend *)b)->n_threads;
}
