/* check.c — VK_SYMBIOTE_CHECK=1: a backend that runs every op on the real backend and again on
 * the reference backend, and reports the first op whose result differs beyond tolerance.
 *
 * Every tensor of the primary backend has a host shadow (weights borrow the caller's host data,
 * everything else is a host copy). After each op the primary's output is read back, compared with
 * the reference's result computed from the shadows, and then copied into the shadow: the
 * reference always starts from the primary's own inputs, so each op is judged on its own and the
 * first bad op is the one reported, not a later one that inherited its error.
 * Slow by design (a sync and a read-back per op): a debugging tool, not a mode to run in.
 */
#include "infer/check.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "cpu/ref.h"

typedef struct shadow_rec {
    const void *key;  /* primary data pointer (host backends) or buffer handle (devices) */
    uint64_t base;    /* byte offset of the allocation within key (devices), 0 on host */
    uint64_t bytes;
    void *host;       /* shadow data */
    int owned;        /* host was allocated here (not a borrowed weight) */
} shadow_rec;

typedef struct check_backend {
    sym_backend base;
    sym_backend *p;   /* primary, owned */
    sym_backend *ref; /* reference, owned */
    double tol;
    shadow_rec *recs;
    size_t n_recs, cap_recs;
    void *tmp;        /* read-back buffer */
    size_t tmp_cap;
    uint64_t n_ops;
    sym_status latched;
    char detail[512];
} check_backend;

static check_backend *cb(sym_backend *b) { return (check_backend *)b; }

static void latch(check_backend *c, sym_status st, const char *fmt, ...) SYM_PRINTF(3, 4);
static void latch(check_backend *c, sym_status st, const char *fmt, ...) {
    if (c->latched != SYM_OK) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof c->detail, fmt, ap);
    va_end(ap);
    c->latched = st;
    SYM_ERROR("%s", c->detail);
}

static const void *key_of(const sym_tensor *t, uint64_t *off) {
    if (t->buf && !t->data) {
        *off = t->offset;
        return t->buf;
    }
    *off = 0;
    return t->data;
}

/* The shadow of t (a view of a tensor allocated through this backend). */
static int shadow(check_backend *c, const sym_tensor *t, sym_tensor *out) {
    uint64_t off;
    const void *key = key_of(t, &off);
    for (size_t i = 0; i < c->n_recs; i++) {
        shadow_rec *r = &c->recs[i];
        if (t->buf && !t->data) {
            if (r->key != key || off < r->base || off + sym_tensor_bytes(t) > r->base + r->bytes)
                continue;
            *out = *t;
            out->buf = NULL;
            out->offset = 0;
            out->data = (char *)r->host + (off - r->base);
            return 1;
        }
        const char *p = key, *b0 = r->key;
        if (p < b0 || p + sym_tensor_bytes(t) > b0 + r->bytes) continue;
        *out = *t;
        out->data = (char *)r->host + (p - b0);
        return 1;
    }
    latch(c, SYM_ERR_INTERNAL, "check: a tensor was not allocated through the checked backend");
    return 0;
}

static sym_status add_rec(check_backend *c, const sym_tensor *t, void *host, int owned) {
    if (c->n_recs == c->cap_recs) {
        size_t cap = c->cap_recs ? c->cap_recs * 2 : 64;
        shadow_rec *r = sym_realloc(c->recs, cap * sizeof *r);
        if (!r) return SYM_FAIL(SYM_ERR_OOM, "check: out of memory");
        c->recs = r;
        c->cap_recs = cap;
    }
    uint64_t off;
    const void *key = key_of(t, &off);
    c->recs[c->n_recs++] = (shadow_rec){key, off, sym_tensor_bytes(t), host, owned};
    return SYM_OK;
}

static void drop_rec(check_backend *c, const sym_tensor *t) {
    uint64_t off;
    const void *key = key_of(t, &off);
    for (size_t i = 0; i < c->n_recs; i++) {
        if (c->recs[i].key != key || c->recs[i].base != off) continue;
        if (c->recs[i].owned) sym_free(c->recs[i].host);
        c->recs[i] = c->recs[--c->n_recs];
        return;
    }
}

/* ---- memory ---------------------------------------------------------------------------------- */

static sym_status chk_alloc(sym_backend *b, sym_tensor *t, sym_dtype type, int64_t n_cols,
                            int64_t n_rows) {
    check_backend *c = cb(b);
    SYM_TRY(c->p->ops->alloc(c->p, t, type, n_cols, n_rows));
    void *host = sym_calloc(1, sym_tensor_bytes(t));
    sym_status st = host ? add_rec(c, t, host, 1) : SYM_FAIL(SYM_ERR_OOM, "check: out of memory");
    if (st != SYM_OK) {
        sym_free(host);
        c->p->ops->release(c->p, t);
    }
    return st;
}

static sym_status chk_load(sym_backend *b, sym_tensor *t, const void *host, sym_dtype type,
                           int64_t n_cols, int64_t n_rows) {
    check_backend *c = cb(b);
    SYM_TRY(c->p->ops->load(c->p, t, host, type, n_cols, n_rows));
    sym_status st = add_rec(c, t, (void *)host, 0);
    if (st != SYM_OK) c->p->ops->release(c->p, t);
    return st;
}

static void chk_release(sym_backend *b, sym_tensor *t) {
    check_backend *c = cb(b);
    drop_rec(c, t);
    c->p->ops->release(c->p, t);
}

static sym_status chk_write(sym_backend *b, sym_tensor *t, const void *src, size_t bytes) {
    check_backend *c = cb(b);
    sym_tensor s;
    SYM_TRY(c->p->ops->write(c->p, t, src, bytes));
    if (shadow(c, t, &s)) memcpy(s.data, src, bytes);
    return SYM_OK;
}

static sym_status chk_sync(sym_backend *b) {
    check_backend *c = cb(b);
    if (c->latched != SYM_OK) return SYM_FAIL(c->latched, "%s", c->detail);
    return c->p->ops->sync(c->p);
}

static sym_status chk_read(sym_backend *b, const sym_tensor *t, void *dst, size_t bytes) {
    check_backend *c = cb(b);
    if (c->latched != SYM_OK) return SYM_FAIL(c->latched, "%s", c->detail);
    return c->p->ops->read(c->p, t, dst, bytes);
}

static uint64_t chk_peak(sym_backend *b) {
    check_backend *c = cb(b);
    return c->p->ops->peak_bytes ? c->p->ops->peak_bytes(c->p) : 0;
}

static uint64_t chk_held(sym_backend *b) {
    check_backend *c = cb(b);
    return c->p->ops->held_bytes ? c->p->ops->held_bytes(c->p) : 0;
}

/* ---- comparison ---------------------------------------------------------------------------- */

/* Reads the primary's out, compares it with the reference result in its shadow, then makes the
 * shadow equal to the primary's result. */
static void compare(check_backend *c, const char *op, const sym_tensor *out) {
    c->n_ops++;
    if (c->latched != SYM_OK) return;
    sym_tensor s;
    if (!shadow(c, out, &s)) return;
    size_t bytes = sym_tensor_bytes(out);
    if (bytes > c->tmp_cap) {
        void *p = sym_realloc(c->tmp, bytes);
        if (!p) {
            latch(c, SYM_ERR_OOM, "check: out of memory");
            return;
        }
        c->tmp = p;
        c->tmp_cap = bytes;
    }
    sym_status st = c->p->ops->read(c->p, out, c->tmp, bytes);
    if (st != SYM_OK) {
        latch(c, st, "check: %s (op %llu): %s", op, (unsigned long long)c->n_ops, sym_last_error());
        return;
    }
    sym_tensor got = s;
    got.data = c->tmp;
    double max_err = 0, max_ref = 0;
    int64_t worst_r = 0, worst_c = 0;
    for (int64_t r = 0; r < out->n_rows; r++)
        for (int64_t k = 0; k < out->n_cols; k++) {
            double a = sym_ref_get(&got, r, k), e = sym_ref_get(&s, r, k);
            double err = fabs(a - e);
            if (!(err <= max_err)) { /* NaN counts as the worst */
                max_err = isnan(err) ? INFINITY : err;
                worst_r = r, worst_c = k;
            }
            if (fabs(e) > max_ref) max_ref = fabs(e);
        }
    double rel = max_ref > 0 ? max_err / max_ref : max_err;
    if (!(rel <= c->tol)) {
        sym_tensor g1 = got, s1 = s;
        latch(c, SYM_ERR_INTERNAL,
              "check: op %llu (%s, %lld x %lld %s) differs from the reference: relative error "
              "%.3g > %.3g; worst at row %lld col %lld: %.6g vs %.6g",
              (unsigned long long)c->n_ops, op, (long long)out->n_rows, (long long)out->n_cols,
              sym_dtype_name(out->type), rel, c->tol, (long long)worst_r, (long long)worst_c,
              sym_ref_get(&g1, worst_r, worst_c), sym_ref_get(&s1, worst_r, worst_c));
        return;
    }
    memcpy(s.data, c->tmp, bytes);
}

/* ---- ops ------------------------------------------------------------------------------------- */

#define SHADOWS1(a) sym_tensor s_##a; if (!shadow(c, a, &s_##a)) return

static void chk_embed(sym_backend *b, sym_tensor *out, const sym_tensor *table, const int32_t *ids,
                      int n_tok) {
    check_backend *c = cb(b);
    c->p->ops->embed(c->p, out, table, ids, n_tok);
    SHADOWS1(out);
    SHADOWS1(table);
    c->ref->ops->embed(c->ref, &s_out, &s_table, ids, n_tok);
    compare(c, "embed", out);
}

static void chk_rmsnorm(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                        float eps) {
    check_backend *c = cb(b);
    c->p->ops->rmsnorm(c->p, out, x, w, eps);
    SHADOWS1(out);
    SHADOWS1(x);
    sym_tensor s_w;
    if (w && !shadow(c, w, &s_w)) return;
    c->ref->ops->rmsnorm(c->ref, &s_out, &s_x, w ? &s_w : NULL, eps);
    compare(c, "rmsnorm", out);
}

static void chk_matmul(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                       const sym_tensor *bias) {
    check_backend *c = cb(b);
    c->p->ops->matmul(c->p, out, x, w, bias);
    SHADOWS1(out);
    SHADOWS1(x);
    SHADOWS1(w);
    sym_tensor s_bias;
    if (bias && !shadow(c, bias, &s_bias)) return;
    c->ref->ops->matmul(c->ref, &s_out, &s_x, &s_w, bias ? &s_bias : NULL);
    compare(c, "matmul", out);
}

static void chk_rope(sym_backend *b, sym_tensor *x, int n_head, int head_dim, int pos0, float theta,
                     float freq_scale, int neox) {
    check_backend *c = cb(b);
    c->p->ops->rope(c->p, x, n_head, head_dim, pos0, theta, freq_scale, neox);
    SHADOWS1(x);
    c->ref->ops->rope(c->ref, &s_x, n_head, head_dim, pos0, theta, freq_scale, neox);
    compare(c, "rope", x);
}

static void chk_store_rows(sym_backend *b, sym_tensor *cache, int64_t row0, const sym_tensor *src) {
    check_backend *c = cb(b);
    c->p->ops->store_rows(c->p, cache, row0, src);
    SHADOWS1(cache);
    SHADOWS1(src);
    c->ref->ops->store_rows(c->ref, &s_cache, row0, &s_src);
    sym_tensor rows = sym_tensor_rows(cache, row0, src->n_rows);
    compare(c, "store_rows", &rows);
}

static void chk_attention(sym_backend *b, sym_tensor *out, const sym_tensor *q, const sym_tensor *k,
                          const sym_tensor *v, int n_head, int n_head_kv, int head_dim, int pos0,
                          float scale) {
    check_backend *c = cb(b);
    c->p->ops->attention(c->p, out, q, k, v, n_head, n_head_kv, head_dim, pos0, scale);
    SHADOWS1(out);
    SHADOWS1(q);
    SHADOWS1(k);
    SHADOWS1(v);
    c->ref->ops->attention(c->ref, &s_out, &s_q, &s_k, &s_v, n_head, n_head_kv, head_dim, pos0,
                           scale);
    compare(c, "attention", out);
}

static void chk_silu_mul(sym_backend *b, sym_tensor *out, const sym_tensor *gate,
                         const sym_tensor *up) {
    check_backend *c = cb(b);
    /* out may alias gate: the shadows still hold the inputs (they change only after compare) */
    c->p->ops->silu_mul(c->p, out, gate, up);
    SHADOWS1(out);
    SHADOWS1(gate);
    SHADOWS1(up);
    c->ref->ops->silu_mul(c->ref, &s_out, &s_gate, &s_up);
    compare(c, "silu_mul", out);
}

static void chk_add(sym_backend *b, sym_tensor *out, const sym_tensor *a, const sym_tensor *x) {
    check_backend *c = cb(b);
    c->p->ops->add(c->p, out, a, x);
    SHADOWS1(out);
    SHADOWS1(a);
    SHADOWS1(x);
    c->ref->ops->add(c->ref, &s_out, &s_a, &s_x);
    compare(c, "add", out);
}

static void chk_softmax(sym_backend *b, sym_tensor *x) {
    check_backend *c = cb(b);
    c->p->ops->softmax(c->p, x);
    SHADOWS1(x);
    c->ref->ops->softmax(c->ref, &s_x);
    compare(c, "softmax", x);
}

static void chk_set_cols(sym_backend *b, sym_tensor *out, int64_t col0, const sym_tensor *src,
                         int accumulate) {
    check_backend *c = cb(b);
    c->p->ops->set_cols(c->p, out, col0, src, accumulate);
    SHADOWS1(out);
    SHADOWS1(src);
    c->ref->ops->set_cols(c->ref, &s_out, col0, &s_src, accumulate);
    compare(c, "set_cols", out);
}

static void chk_add_rows_scaled(sym_backend *b, sym_tensor *out, const sym_tensor *a,
                                const int32_t *rows, const float *scales) {
    check_backend *c = cb(b);
    c->p->ops->add_rows_scaled(c->p, out, a, rows, scales);
    SHADOWS1(out);
    SHADOWS1(a);
    c->ref->ops->add_rows_scaled(c->ref, &s_out, &s_a, rows, scales);
    compare(c, "add_rows_scaled", out);
}

static void chk_destroy(sym_backend *b) {
    check_backend *c = cb(b);
    for (size_t i = 0; i < c->n_recs; i++)
        if (c->recs[i].owned) sym_free(c->recs[i].host);
    sym_free(c->recs);
    sym_free(c->tmp);
    if (c->ref) c->ref->ops->destroy(c->ref);
    if (c->p) c->p->ops->destroy(c->p);
    sym_free(c);
}

static const sym_backend_ops k_check_ops = {
    .name = "check",
    .destroy = chk_destroy,
    .alloc = chk_alloc,
    .load = chk_load,
    .release = chk_release,
    .write = chk_write,
    .read = chk_read,
    .sync = chk_sync,
    .embed = chk_embed,
    .rmsnorm = chk_rmsnorm,
    .matmul = chk_matmul,
    .rope = chk_rope,
    .store_rows = chk_store_rows,
    .attention = chk_attention,
    .silu_mul = chk_silu_mul,
    .add = chk_add,
    .softmax = chk_softmax,
    .peak_bytes = chk_peak,
    .set_cols = chk_set_cols,
    .held_bytes = chk_held,
    .add_rows_scaled = chk_add_rows_scaled,
};

sym_status sym_check_backend_create(sym_backend *primary, double tol, sym_backend **out) {
    check_backend *c = sym_calloc(1, sizeof *c);
    if (!c) {
        primary->ops->destroy(primary);
        return SYM_FAIL(SYM_ERR_OOM, "check: out of memory");
    }
    c->base.ops = &k_check_ops;
    c->p = primary;
    c->tol = tol > 0 ? tol : 1e-3;
    sym_status st = sym_ref_backend_create(&c->ref);
    if (st != SYM_OK) {
        chk_destroy(&c->base);
        return st;
    }
    *out = &c->base;
    return SYM_OK;
}

uint64_t sym_check_backend_n_ops(const sym_backend *b) {
    return ((const check_backend *)b)->n_ops;
}
