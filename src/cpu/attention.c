/* attention.c — causal GQA attention over the KV cache, flash-style (online softmax: no score
 * matrix), split over the thread pool.
 *
 * A task is (block of tokens, KV head, subgroup of that KV head's query heads): all its query
 * rows share the same K/V rows, so each block of SYM_CPU_ATTN_BLOCK cache positions is converted
 * to f32 once (keys transposed, so that scores come a vector of positions at a time; values
 * row-major, read in place from an f32 cache) and used by every query row of the task. Blocks and
 * subgroups shrink until there are a few tasks per thread (decode: one token, so the query heads
 * are split). Per-thread scratch (floats): q (n_q, head_dim) pre-scaled copy | acc (n_q, head_dim)
 * | m, l, lim (n_q) | s (BLOCK) | kt (head_dim, BLOCK) | vf (BLOCK, head_dim) Copying q first makes
 * out aliasing q harmless.
 */
#include <math.h>
#include <string.h>

#include "cpu/backend.h"

#define BLOCK SYM_CPU_ATTN_BLOCK
#define MAX_Q 64 /* query rows (tokens x heads) per task at most */

typedef struct attn_job {
    const sym_cpu_kernels *k;
    float **scratch;
    const float *q;
    const void *kc, *vc; /* cache data */
    sym_dtype kvt;
    float *out;
    int64_t n_tok, ld_q, ld_kv; /* row strides in elements */
    int n_head_kv, group, head_dim, pos0;
    float scale;
    int tok_per_task, heads_per_task, n_sub, n_tb;
} attn_job;

static size_t scratch_floats(int n_q, int head_dim) {
    return 2 * (size_t)n_q * (size_t)head_dim + 3 * (size_t)n_q + BLOCK +
           2 * (size_t)BLOCK * (size_t)head_dim;
}

static void attn_task(void *ctx, int64_t task, int thread_idx) {
    const attn_job *j = ctx;
    const sym_cpu_kernels *k = j->k;
    int hd = j->head_dim;
    int sub = (int)(task % j->n_sub);
    int kvh = (int)(task / j->n_sub % j->n_head_kv);
    int64_t tb = task / j->n_sub / j->n_head_kv;
    int64_t t0 = tb * j->tok_per_task;
    int nt = (int)(j->n_tok - t0 < j->tok_per_task ? j->n_tok - t0 : j->tok_per_task);
    int h0 = kvh * j->group + sub * j->heads_per_task;
    int h1 = h0 + j->heads_per_task < (kvh + 1) * j->group ? h0 + j->heads_per_task
                                                           : (kvh + 1) * j->group;
    int nh = h1 - h0, n_q = nt * nh;

    float *qb = j->scratch[thread_idx];
    float *acc = qb + (size_t)n_q * hd;
    float *m = acc + (size_t)n_q * hd;
    float *l = m + n_q;
    int *lim = (int *)(l + n_q);
    float *s = (float *)(lim + n_q);
    float *kt = s + BLOCK;
    float *vf = kt + (size_t)BLOCK * hd;

    for (int ti = 0; ti < nt; ti++) {
        for (int hi = 0; hi < nh; hi++) {
            int qi = ti * nh + hi;
            const float *qr = j->q + (t0 + ti) * j->ld_q + (int64_t)(h0 + hi) * hd;
            for (int d = 0; d < hd; d++)
                qb[(size_t)qi * hd + d] = qr[d] * j->scale;
            m[qi] = -INFINITY;
            l[qi] = 0.0f;
            lim[qi] = j->pos0 + (int)t0 + ti + 1; /* causal: positions 0 .. pos0 + t */
        }
    }
    memset(acc, 0, (size_t)n_q * hd * sizeof *acc);

    int n_pos = j->pos0 + (int)t0 + nt; /* what the last token of the block sees */
    size_t esz = sym_dtype_size(j->kvt);
    for (int p0 = 0; p0 < n_pos; p0 += BLOCK) {
        int np = n_pos - p0 < BLOCK ? n_pos - p0 : BLOCK;
        size_t off = ((size_t)p0 * (size_t)j->ld_kv + (size_t)kvh * hd) * esz;
        k->attn_kt((const char *)j->kc + off, j->kvt, j->ld_kv, np, hd, kt);
        const float *vr = vf;
        int64_t ld = hd;
        if (j->kvt == SYM_DT_F32) {
            vr = (const float *)((const char *)j->vc + off);
            ld = j->ld_kv;
        } else {
            for (int r = 0; r < np; r++)
                k->to_f32((const char *)j->vc + off + (size_t)r * (size_t)j->ld_kv * esz, j->kvt,
                          vf + (size_t)r * hd, hd);
        }
        k->attn_step(n_q, qb, lim, hd, p0, np, kt, vr, ld, m, l, acc, s);
    }

    for (int ti = 0; ti < nt; ti++) {
        for (int hi = 0; hi < nh; hi++) {
            int qi = ti * nh + hi;
            float *o = j->out + (t0 + ti) * j->ld_q + (int64_t)(h0 + hi) * hd;
            float inv = 1.0f / l[qi];
            for (int d = 0; d < hd; d++)
                o[d] = acc[(size_t)qi * hd + d] * inv;
        }
    }
}

void sym_cpu_attention(sym_backend *base, sym_tensor *out, const sym_tensor *q, const sym_tensor *k,
                       const sym_tensor *v, int n_head, int n_head_kv, int head_dim, int pos0,
                       float scale) {
    sym_cpu_backend *b = (sym_cpu_backend *)base;
    int ok = n_head > 0 && n_head_kv > 0 && head_dim > 0 && pos0 >= 0 && n_head % n_head_kv == 0 &&
             q->type == SYM_DT_F32 && out->type == SYM_DT_F32 &&
             q->n_cols == (int64_t)n_head * head_dim && out->n_cols == q->n_cols &&
             out->n_rows == q->n_rows && k->type == v->type &&
             k->n_cols == (int64_t)n_head_kv * head_dim && v->n_cols == k->n_cols &&
             k->n_rows >= pos0 + q->n_rows && v->n_rows >= pos0 + q->n_rows && q->data && k->data &&
             v->data && out->data;
    if (!ok)
        SYM_CPU_FAIL_RETURN(b, SYM_ERR_ARG,
                            "attention: q (%lld x %lld), cache (%lld x %lld), %d/%d heads "
                            "of %d, pos0 %d",
                            (long long)q->n_rows, (long long)q->n_cols, (long long)k->n_rows,
                            (long long)k->n_cols, n_head, n_head_kv, head_dim, pos0);
    attn_job j = {
        .k = b->k,
        .scratch = b->scratch,
        .q = q->data,
        .kc = k->data,
        .vc = v->data,
        .kvt = k->type,
        .out = out->data,
        .n_tok = q->n_rows,
        .ld_q = q->n_cols,
        .ld_kv = k->n_cols,
        .n_head_kv = n_head_kv,
        .group = n_head / n_head_kv,
        .head_dim = head_dim,
        .pos0 = pos0,
        .scale = scale,
    };
    /* start with whole query groups and as many tokens as fit MAX_Q rows, then halve tokens,
     * then heads, until there are >= 2 tasks per thread */
    int hpt = j.group < MAX_Q ? j.group : MAX_Q;
    int tpt = MAX_Q / hpt;
    if (tpt > j.n_tok) tpt = (int)j.n_tok;
    for (;;) {
        int64_t n_tasks = (j.n_tok + tpt - 1) / tpt * n_head_kv * ((j.group + hpt - 1) / hpt);
        if (n_tasks >= 2 * b->n_threads) break;
        if (tpt > 1)
            tpt = (tpt + 1) / 2;
        else if (hpt > 1)
            hpt = (hpt + 1) / 2;
        else
            break;
    }
    j.tok_per_task = tpt;
    j.heads_per_task = hpt;
    j.n_sub = (j.group + hpt - 1) / hpt;
    j.n_tb = (int)((j.n_tok + tpt - 1) / tpt);
    if (!sym_cpu_scratch_reserve(b, scratch_floats(tpt * hpt, head_dim))) return;
    sym_threadpool_parallel_for(b->pool, (int64_t)j.n_tb * n_head_kv * j.n_sub, attn_task, &j);
}
