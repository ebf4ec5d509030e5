/* matmul.c — out (n_tok, n_out) = x (n_tok, n_in) . W^T (+ bias), split over the thread pool.
 *
 * Decode (n_tok <= SYM_CPU_GEMV_MAX_TOK): memory bound. Tasks are contiguous ranges of output
 * rows; each streams its weight rows once, converting in registers, for all tokens at once.
 * Task k covers chunk k / n_threads of region k % n_threads, so a thread that keeps pace takes
 * consecutive chunks of one region and its weight stream continues where it left off (the
 * prefetchers keep running), while the atomic task counter still balances uneven threads.
 * Prefill (more tokens): compute bound. Tasks are (nr-wide output panel, block of tokens). For each
 * panel and k-chunk of SYM_CPU_KC inputs the task converts the weight tile to an f32 panel once
 * (per-thread scratch, L1/L2 resident) and runs the mr x nr register-blocked micro-kernel over
 * every token of its block, accumulating into out across k-chunks.
 */
#include "cpu/backend.h"

#define GEMM_TOK_BLOCK 256 /* tokens per task at most: bounds the x traffic per packed panel */

typedef struct mm_job {
    const sym_cpu_kernels *k;
    float **scratch;
    const float *x;
    const void *w;
    sym_dtype wt;
    const float *bias;
    float *out;
    int64_t n_tok, n_in, n_out;
    int64_t rows_per_task;    /* gemv: output rows per task (multiple of 4) */
    int64_t n_regions, n_per; /* gemv: regions (one per thread) of n_per tasks */
    int64_t n_panels;         /* gemm: tasks along n_out */
    int64_t tok_per_task;     /* gemm: tokens per task */
} mm_job;

static void gemv_task(void *ctx, int64_t task, int thread_idx) {
    (void)thread_idx;
    const mm_job *j = ctx;
    int64_t chunk = task % j->n_regions * j->n_per + task / j->n_regions;
    int64_t o0 = chunk * j->rows_per_task;
    if (o0 >= j->n_out) return;
    int64_t o1 = o0 + j->rows_per_task < j->n_out ? o0 + j->rows_per_task : j->n_out;
    j->k->gemv((int)j->n_tok, j->x, j->n_in, j->w, j->wt, j->n_in, o0, o1, j->bias, j->out,
               j->n_out);
}

static void gemm_task(void *ctx, int64_t task, int thread_idx) {
    const mm_job *j = ctx;
    const sym_cpu_kernels *k = j->k;
    float *panel = j->scratch[thread_idx];
    int64_t nr = k->nr;
    int64_t o0 = task % j->n_panels * nr, tb = task / j->n_panels;
    int64_t t0 = tb * j->tok_per_task;
    int64_t nt = j->n_tok - t0 < j->tok_per_task ? j->n_tok - t0 : j->tok_per_task;
    const float *x = j->x + t0 * j->n_in;
    float *out = j->out + t0 * j->n_out;
    int n_rows = (int)(j->n_out - o0 < nr ? j->n_out - o0 : nr);
    for (int64_t k0 = 0; k0 < j->n_in; k0 += SYM_CPU_KC) {
        int64_t kc = j->n_in - k0 < SYM_CPU_KC ? j->n_in - k0 : SYM_CPU_KC;
        k->pack(j->w, j->wt, j->n_in, o0, n_rows, k0, kc, panel);
        k->gemm_panel(nt, x + k0, j->n_in, panel, kc, out + o0, j->n_out, n_rows, k0 > 0,
                      j->bias ? j->bias + o0 : NULL);
    }
}

void sym_cpu_matmul(sym_backend *base, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                    const sym_tensor *bias) {
    sym_cpu_backend *b = (sym_cpu_backend *)base;
    if (x->type != SYM_DT_F32 || out->type != SYM_DT_F32 || x->n_cols != w->n_cols ||
        out->n_cols != w->n_rows || out->n_rows != x->n_rows || !x->data || !w->data || !out->data)
        SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG,
                            "matmul: x (%lld x %lld) . W (%lld x %lld) into (%lld x %lld)",
                            (long long)x->n_rows, (long long)x->n_cols, (long long)w->n_rows,
                            (long long)w->n_cols, (long long)out->n_rows, (long long)out->n_cols);
    if (bias && (bias->type != SYM_DT_F32 || bias->n_cols * bias->n_rows != w->n_rows))
        SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG, "matmul: bias must be f32 with %lld values",
                            (long long)w->n_rows);
    mm_job j = {
        .k = b->k,
        .scratch = b->scratch,
        .x = x->data,
        .w = w->data,
        .wt = w->type,
        .bias = bias ? bias->data : NULL,
        .out = out->data,
        .n_tok = x->n_rows,
        .n_in = x->n_cols,
        .n_out = w->n_rows,
    };
    int64_t nth = b->n_threads;
    if (j.n_tok <= SYM_CPU_GEMV_MAX_TOK) {
        /* ~32 tasks per thread balance a noisy machine (with the region mapping, small tasks
         * do not restart the streams); at least 16 rows per task */
        int64_t rows = (j.n_out + nth * 32 - 1) / (nth * 32);
        rows = rows < 16 ? 16 : (rows + 3) & ~(int64_t)3;
        j.rows_per_task = rows;
        int64_t n_tasks = (j.n_out + rows - 1) / rows;
        j.n_regions = n_tasks < nth ? n_tasks : nth;
        j.n_per = (n_tasks + j.n_regions - 1) / j.n_regions;
        sym_threadpool_parallel_for(b->pool, j.n_regions * j.n_per, gemv_task, &j);
        return;
    }
    if (!sym_cpu_scratch_reserve(b, (size_t)b->k->nr * SYM_CPU_KC)) return;
    int64_t n_panels = (j.n_out + b->k->nr - 1) / b->k->nr;
    int64_t tok = j.n_tok < GEMM_TOK_BLOCK ? j.n_tok : GEMM_TOK_BLOCK;
    int64_t mr2 = 2 * (int64_t)b->k->mr;
    /* few outputs for many threads (e.g. the K/V projections): split the tokens too */
    while (n_panels * ((j.n_tok + tok - 1) / tok) < 4 * nth && tok > mr2)
        tok = (tok / 2 + b->k->mr - 1) / b->k->mr * b->k->mr;
    int64_t n_tb = (j.n_tok + tok - 1) / tok;
    j.tok_per_task = tok; /* one panel x tok tokens is 2 * nr * tok * n_in FLOP: ~10-100 us */
    j.n_panels = n_panels;
    sym_threadpool_parallel_for(b->pool, n_panels * n_tb, gemm_task, &j);
}
