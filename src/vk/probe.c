/* probe.c — device read bandwidth and f16 matrix rate with the backend's kernels (probe.h). */
#include "vk/probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/half.h"
#include "vk/ops_impl.h"

#define WARM_S   0.2
#define N_TIMED  5
#define PER_SYNC 8 /* dispatches (or products) per timed batch */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The next value of a xorshift stream, uniform in [-1, 1). */
static double next_signed(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return (double)(*s >> 11) / 4503599627370496.0 - 1.0; /* 2^52: [0, 2) - 1 */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef sym_status (*work_fn)(sym_vkb *b, void *ctx);

/* Runs work until WARM_S has passed, then N_TIMED batches of PER_SYNC; per-batch seconds,
 * sorted, in t[]. */
static sym_status time_work(sym_vkb *b, work_fn fn, void *ctx, double *t) {
    double t0 = now_s();
    do {
        SYM_TRY(fn(b, ctx));
        SYM_TRY(b->base.ops->sync(&b->base));
    } while (now_s() - t0 < WARM_S);
    for (int i = 0; i < N_TIMED; i++) {
        double s = now_s();
        for (int j = 0; j < PER_SYNC; j++)
            SYM_TRY(fn(b, ctx));
        SYM_TRY(b->base.ops->sync(&b->base));
        t[i] = (now_s() - s) / PER_SYNC;
    }
    qsort(t, N_TIMED, sizeof *t, cmp_double);
    return SYM_OK;
}

typedef struct read_ctx {
    sym_vk_buffer *src, *sink;
    uint64_t n16;
} read_ctx;

static sym_status read_once(sym_vkb *b, void *ctx) {
    read_ctx *r = ctx;
    sym_vk_spec spec = sym_vkb_spec(b, 256, SYM_DT_F32);
    const sym_vk_pipeline *p;
    SYM_TRY(sym_vk_pipeline_get(b->pipes, SYM_VK_K_PROBE_READ, SYM_VK_VAR_DEFAULT, &spec, &p));
    sym_vk_arg a[2] = {
        {.buf = r->src, .offset = 0, .range = r->n16 * 16, .lo = 0, .hi = r->n16 * 16},
        {.buf = r->sink, .offset = 0, .range = 64, .lo = 0, .hi = 4, .write = 1}};
    sym_vk_push_probe pc = {.n16 = (uint32_t)r->n16, .src_off = 0, .magic = 0x5eed1e55u};
    return sym_vk_cmd_dispatch(b->cmd, p, a, &pc, 8192, 1, 1, (double)r->n16 * 16, 0);
}

typedef struct gemm_ctx {
    sym_tensor x, w, out;
} gemm_ctx;

static sym_status gemm_once(sym_vkb *b, void *ctx) {
    gemm_ctx *g = ctx;
    b->base.ops->matmul(&b->base, &g->out, &g->x, &g->w, NULL);
    return SYM_OK; /* errors are latched and returned by the sync */
}

sym_status sym_vk_probe_device(sym_backend *bb, sym_vk_probe *out) {
    SYM_CHECK(sym_vk_backend_is(bb), SYM_ERR_ARG, "probe: not a Vulkan backend");
    sym_vkb *b = sym_vkb_of(bb);
    memset(out, 0, sizeof *out);
    sym_status st = SYM_OK;
    read_ctx r = {0};
    gemm_ctx g = {0};
    void *host = NULL;
    double t[N_TIMED];

    /* read bandwidth: 1 GiB (less where one binding or allocation cannot hold it) */
    uint64_t bytes = 1ull << 30;
    if (bytes > b->max_range - b->align) bytes = (b->max_range - b->align) / 16 * 16;
    if (bytes > b->dev->caps.max_memory_allocation_size)
        bytes = b->dev->caps.max_memory_allocation_size / 16 * 16;
    if (bytes > (uint64_t)UINT32_MAX * 16) bytes = (uint64_t)UINT32_MAX * 16;
    r.n16 = bytes / 16;
    SYM_TRY_GOTO(sym_vk_buffer_create(b->dev, bytes, SYM_VK_MEM_DEVICE, &r.src));
    SYM_TRY_GOTO(sym_vk_buffer_create(b->dev, 64, SYM_VK_MEM_DEVICE, &r.sink));
    SYM_TRY_GOTO(sym_vk_cmd_zero(b->cmd, r.sink));
    SYM_TRY_GOTO(sym_vk_cmd_zero(b->cmd, r.src)); /* the probe's speed does not depend on data */
    SYM_TRY_GOTO(time_work(b, read_once, &r, t));
    out->read_bytes = bytes;
    out->read_gb_s = (double)bytes / t[N_TIMED / 2] * 1e-9;
    out->read_min_gb_s = (double)bytes / t[N_TIMED - 1] * 1e-9;
    out->read_max_gb_s = (double)bytes / t[0] * 1e-9;
    sym_vk_cmd_release(b->cmd, r.src);
    sym_vk_cmd_release(b->cmd, r.sink);
    r.src = r.sink = NULL;

    /* f16 matrix rate: a 2048-token prefill product against 8192 x 4096 f16 weights, on random
     * data (zeros can run faster) */
    int m = 2048, n = 8192, k = 4096;
    if (b->dev->caps.type == VK_PHYSICAL_DEVICE_TYPE_CPU)
        m = 256, n = 1024, k = 1024; /* lavapipe */
    size_t host_bytes = (size_t)m * (size_t)k * 4;
    if (host_bytes < (size_t)n * (size_t)k * 2) host_bytes = (size_t)n * (size_t)k * 2;
    host = sym_malloc(host_bytes);
    if (!host) SYM_FAIL_GOTO(SYM_ERR_OOM, "probe: out of memory");
    uint64_t s = 0x2545f4914f6cdd1dull;
    float *xf = host;
    for (size_t i = 0; i < (size_t)m * (size_t)k; i++)
        xf[i] = (float)next_signed(&s);
    SYM_TRY_GOTO(bb->ops->alloc(bb, &g.x, SYM_DT_F32, k, m));
    SYM_TRY_GOTO(bb->ops->write(bb, &g.x, host, (size_t)m * (size_t)k * 4));
    uint16_t *wh = host;
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++)
        wh[i] = sym_f32_to_f16((float)next_signed(&s) * 0.05f);
    SYM_TRY_GOTO(bb->ops->load(bb, &g.w, host, SYM_DT_F16, k, n));
    SYM_TRY_GOTO(bb->ops->alloc(bb, &g.out, SYM_DT_F32, n, m));
    SYM_TRY_GOTO(time_work(b, gemm_once, &g, t));
    double flop = 2.0 * m * (double)n * k;
    out->f16_tflop_s = flop / t[N_TIMED / 2] * 1e-12;
    out->f16_min_tflop_s = flop / t[N_TIMED - 1] * 1e-12;
    out->f16_max_tflop_s = flop / t[0] * 1e-12;
    out->gemm_m = m, out->gemm_n = n, out->gemm_k = k;
    out->coopmat = b->coopmat;
fail:
    sym_free(host);
    if (r.src) sym_vk_cmd_release(b->cmd, r.src);
    if (r.sink) sym_vk_cmd_release(b->cmd, r.sink);
    if (g.x.buf) bb->ops->release(bb, &g.x);
    if (g.w.buf) bb->ops->release(bb, &g.w);
    if (g.out.buf) bb->ops->release(bb, &g.out);
    return st;
}

/* ---- dependent products: grid barriers against pipeline barriers ------------------------------
 */

/* A chain's data, on the host and on the device (chain_open / chain_close). */
typedef struct chain_bufs {
    uint16_t *wh;          /* n_mat n x n f16 matrices */
    float *xh;             /* x[0] random, x[1..n_mat] NaN (poison): what each check starts from */
    double *ref;           /* the host's f64 chain, ref[0..n_mat] */
    sym_vk_buffer *w, *x;  /* the matrices (uploaded), x[0..n_mat] */
    sym_vk_buffer *sync;   /* counters (zeroed) */
} chain_bufs;

typedef struct chain_ctx {
    chain_bufs cb;
    const sym_vk_pipeline *p;
    uint32_t n, n_mat, groups, base, claim_base, rb;
    int persist;
} chain_ctx;

static sym_status chain_once(sym_vkb *b, void *ctx) {
    chain_ctx *c = ctx;
    uint64_t wbytes = (uint64_t)c->n * c->n * 2 * c->n_mat, xbytes = (uint64_t)c->n * 4;
    uint32_t steps = c->persist ? 1 : c->n_mat;
    for (uint32_t s = 0; s < steps; s++) {
        uint32_t ph0 = c->persist ? 0 : s, ph1 = c->persist ? c->n_mat : s + 1;
        sym_vk_arg a[3] = {
            {.buf = c->cb.w, .offset = 0, .range = wbytes, .lo = 0, .hi = wbytes},
            {.buf = c->cb.x,
             .offset = 0,
             .range = xbytes * (c->n_mat + 1),
             .lo = xbytes * ph0,
             .hi = xbytes * (ph1 + 1),
             .write = 1},
            {.buf = c->cb.sync, .offset = 0, .range = 64, .lo = 0, .hi = 8, .write = 1}};
        sym_vk_push_probe_chain pc = {
            .n = c->n, .ph0 = ph0, .ph1 = ph1, .base = c->base, .claim_base = c->claim_base};
        c->base += (ph1 - ph0 - 1) * c->groups;
        c->claim_base += (ph1 - ph0) * ((c->n + c->rb - 1) / c->rb + c->groups);
        SYM_TRY(sym_vk_cmd_dispatch(b->cmd, c->p, a, &pc, c->groups, 1, 1,
                                    (double)wbytes / c->n_mat * (ph1 - ph0), 0));
    }
    return SYM_OK;
}

/* The worst vector's max |x - ref| / max |ref| over the chain's outputs. */
static double chain_err(const float *x, const double *ref, uint32_t n, uint32_t n_mat) {
    double worst = 0;
    for (uint32_t k = 1; k <= n_mat; k++) {
        double md = 0, mr = 0;
        for (uint32_t i = 0; i < n; i++) {
            double d = fabs((double)x[(size_t)k * n + i] - ref[(size_t)k * n + i]);
            if (!(d <= md)) md = d; /* NaN counts as the worst */
            if (fabs(ref[(size_t)k * n + i]) > mr) mr = fabs(ref[(size_t)k * n + i]);
        }
        double e = mr > 0 ? md / mr : md;
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

static void chain_close(sym_vkb *b, chain_bufs *cb) {
    sym_free(cb->wh);
    sym_free(cb->xh);
    sym_free(cb->ref);
    if (cb->w) sym_vk_cmd_release(b->cmd, cb->w);
    if (cb->x) sym_vk_cmd_release(b->cmd, cb->x);
    if (cb->sync) sym_vk_cmd_release(b->cmd, cb->sync);
    memset(cb, 0, sizeof *cb);
}

/* The chain's data: n_mat uniform n x n f16 matrices of variance 1/n (the vectors keep their
 * size along the chain), x[0] random, the host's f64 chain; on the device the matrices
 * uploaded, room for x[0..n_mat] and sync_bytes of zeroed counters. chain_close undoes it, also
 * after a failure. */
static sym_status chain_open(sym_vkb *b, int n, int n_mat, uint64_t sync_bytes, chain_bufs *cb) {
    memset(cb, 0, sizeof *cb);
    size_t nw = (size_t)n * (size_t)n * (size_t)n_mat, nx = (size_t)n * (size_t)(n_mat + 1);
    uint16_t *wh = cb->wh = sym_malloc(nw * sizeof *wh);
    float *xh = cb->xh = sym_malloc(nx * sizeof *xh);
    double *ref = cb->ref = sym_malloc(nx * sizeof *ref);
    if (!wh || !xh || !ref)
        return SYM_FAIL(SYM_ERR_OOM, "probe: out of memory for a chain of %d x %d^2", n_mat, n);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    float amp = sqrtf(3.0f / (float)n);
    for (size_t i = 0; i < nw; i++)
        wh[i] = sym_f32_to_f16((float)next_signed(&s) * amp);
    for (size_t i = 0; i < nx; i++) {
        xh[i] = i < (size_t)n ? (float)next_signed(&s) : NAN;
        ref[i] = xh[i];
    }
    for (int k = 0; k < n_mat; k++)
        for (int r = 0; r < n; r++) {
            const uint16_t *row = wh + ((size_t)k * n + (size_t)r) * (size_t)n;
            double acc = 0;
            for (int i = 0; i < n; i++)
                acc += (double)sym_f16_to_f32(row[i]) * ref[(size_t)k * n + i];
            ref[(size_t)(k + 1) * n + r] = acc;
        }
    SYM_TRY(sym_vk_buffer_create(b->dev, nw * 2, SYM_VK_MEM_DEVICE, &cb->w));
    SYM_TRY(sym_vk_buffer_create(b->dev, nx * 4, SYM_VK_MEM_DEVICE, &cb->x));
    SYM_TRY(sym_vk_buffer_create(b->dev, sync_bytes, SYM_VK_MEM_DEVICE, &cb->sync));
    SYM_TRY(sym_vk_cmd_zero(b->cmd, cb->sync));
    return sym_vk_cmd_upload(b->cmd, cb->w, 0, wh, nw * 2);
}

/* Runs fn once from fresh x (x[1..n_mat] poisoned with NaN) and sets *err to the worst
 * vector's error against the host's chain (chain_err). */
static sym_status chain_check(sym_vkb *b, chain_bufs *cb, int n, int n_mat, work_fn fn, void *ctx,
                              double *err) {
    size_t nx = (size_t)n * (size_t)(n_mat + 1);
    SYM_TRY(sym_vk_cmd_upload(b->cmd, cb->x, 0, cb->xh, nx * 4));
    SYM_TRY(fn(b, ctx));
    SYM_TRY(sym_vk_cmd_download(b->cmd, cb->x, 0, cb->xh, nx * 4));
    *err = chain_err(cb->xh, cb->ref, (uint32_t)n, (uint32_t)n_mat);
    for (size_t i = (size_t)n; i < nx; i++) /* back to x[0] and the poison for the next check */
        cb->xh[i] = NAN;
    for (size_t i = 0; i < (size_t)n; i++)
        cb->xh[i] = (float)cb->ref[i];
    return SYM_OK;
}

sym_status sym_vk_probe_chain(sym_backend *bb, int n, int n_mat, int n_groups, int wg, int rb,
                              int mode, sym_vk_chain_probe *out) {
    SYM_CHECK(sym_vk_backend_is(bb), SYM_ERR_ARG, "probe: not a Vulkan backend");
    sym_vkb *b = sym_vkb_of(bb);
    uint32_t sgs = b->dev->caps.subgroup_size;
    SYM_CHECK(b->dev->caps.vulkan_memory_model, SYM_ERR_UNSUPPORTED,
              "probe_chain: %s has no vulkanMemoryModel (grid barriers need it)",
              b->dev->caps.name);
    SYM_CHECK(b->use_sg && n >= 8 && n % 8 == 0 && n_mat >= 1 && wg >= 32 && sgs > 0 &&
                  wg % (int)sgs == 0 && rb >= 1 && rb <= 16,
              SYM_ERR_ARG, "probe_chain: n %d, %d products, %d invocations, %d rows per step", n,
              n_mat, wg, rb);
    uint64_t wbytes = (uint64_t)n * (uint64_t)n * 2 * (uint64_t)n_mat;
    SYM_CHECK(wbytes + 16 <= b->max_range && wbytes / 16 < UINT32_MAX, SYM_ERR_ARG,
              "probe_chain: %llu bytes of weights exceed one binding", (unsigned long long)wbytes);
    int sms = (int)b->dev->caps.sm_count;
    if (n_groups <= 0) n_groups = sms ? sms : 1;
    SYM_CHECK(n_groups <= (sms ? 4 * sms : 1) && (mode & 3) <= 2 && mode >= 0 && mode < 8,
              SYM_ERR_ARG,
              "probe_chain: %d workgroups (at most %d can be resident for a grid barrier here), "
              "mode %d",
              n_groups, sms ? 4 * sms : 1, mode);
    memset(out, 0, sizeof *out);
    out->n = n, out->n_mat = n_mat, out->n_groups = n_groups, out->wg = wg, out->rb = rb,
    out->mode = mode;
    sym_status st = SYM_OK;
    chain_ctx c = {.n = (uint32_t)n,
                   .n_mat = (uint32_t)n_mat,
                   .groups = (uint32_t)n_groups,
                   .rb = (uint32_t)rb};
    SYM_TRY_GOTO(chain_open(b, n, n_mat, 64, &c.cb));
    sym_vk_spec spec = sym_vkb_spec(b, (uint32_t)wg, SYM_DT_F16);
    spec.v[4] = (uint32_t)rb;
    spec.v[5] = (uint32_t)((n / 8 + wg - 1) / wg);
    spec.v[6] = (uint32_t)(mode >= 4);
    spec.v[7] = (uint32_t)(mode & 3);
    spec.v[8] = sgs;
    SYM_TRY_GOTO(
        sym_vk_pipeline_get(b->pipes, SYM_VK_K_PROBE_CHAIN, SYM_VK_VAR_DEFAULT, &spec, &c.p));
    double t[N_TIMED];
    for (int persist = 1; persist >= 0; persist--) {
        c.persist = persist;
        double err;
        SYM_TRY_GOTO(chain_check(b, &c.cb, n, n_mat, chain_once, &c, &err));
        SYM_TRY_GOTO(time_work(b, chain_once, &c, t));
        double sec = t[N_TIMED / 2];
        if (persist) {
            out->persist_err = err;
            out->persist_us = sec / n_mat * 1e6;
            out->persist_gb_s = (double)wbytes / sec * 1e-9;
        } else {
            out->split_err = err;
            out->split_us = sec / n_mat * 1e6;
            out->split_gb_s = (double)wbytes / sec * 1e-9;
        }
    }
fail:
    chain_close(b, &c.cb);
    return st;
}

/* ---- dependent products, one dispatch each: barriers against in-shader waits ---------------- */

typedef struct dchain_ctx {
    chain_bufs cb;
    const sym_vk_pipeline *p;
    uint32_t n, n_mat, groups, base;
    int mode; /* sym_vk_dchain_probe's */
} dchain_ctx;

#define DCHAIN_MODES 6
#define DCHAIN_SLOT  (32 * 32 + 32) /* uints of counters per dispatch (probe_dchain.comp) */

static sym_status dchain_once(sym_vkb *b, void *ctx) {
    dchain_ctx *c = ctx;
    uint64_t wbytes = (uint64_t)c->n * c->n * 2 * c->n_mat, xbytes = (uint64_t)c->n * 4;
    if (c->mode >= 4) SYM_TRY(sym_vk_cmd_zero(b->cmd, c->cb.sync)); /* per-dispatch counters */
    for (uint32_t s = 0; s < c->n_mat; s++) {
        /* The first dispatch declares a write of all of x, so that a pipeline barrier orders it
         * after the chain before; so do all of them in mode 0. The others declare their reads
         * only (the hazard tracker then puts no barrier between them): in modes 2 to 5 the
         * shader waits for the dispatch before, in mode 1 nothing does (the lower bound). */
        int fenced = s == 0 || c->mode == 0;
        sym_vk_arg a[3] = {{.buf = c->cb.w, .offset = 0, .range = wbytes, .lo = 0, .hi = wbytes},
                           {.buf = c->cb.x,
                            .offset = 0,
                            .range = xbytes * (c->n_mat + 1),
                            .lo = fenced ? 0 : xbytes * s,
                            .hi = fenced ? xbytes * (c->n_mat + 1) : xbytes * (s + 1),
                            .write = fenced},
                           {.buf = c->cb.sync,
                            .offset = 0,
                            .range = c->cb.sync->size,
                            .lo = 0,
                            .hi = 4,
                            .write = fenced}};
        sym_vk_push_probe_dchain pc = {.n = c->n, .ph = s, .target = c->base + s * c->groups};
        SYM_TRY(sym_vk_cmd_dispatch(b->cmd, c->p, a, &pc, c->groups, 1, 1,
                                    (double)wbytes / c->n_mat, 0));
    }
    if (c->mode == 2 || c->mode == 3) c->base += c->n_mat * c->groups; /* one arrival each */
    return SYM_OK;
}

sym_status sym_vk_probe_dchain(sym_backend *bb, int n, int n_mat, int wg, int rb, int backoff,
                               sym_vk_dchain_probe *out) {
    SYM_CHECK(sym_vk_backend_is(bb), SYM_ERR_ARG, "probe: not a Vulkan backend");
    sym_vkb *b = sym_vkb_of(bb);
    uint32_t sgs = b->dev->caps.subgroup_size;
    SYM_CHECK(b->dev->caps.vulkan_memory_model && b->use_sg, SYM_ERR_UNSUPPORTED,
              "probe_dchain: %s has no vulkanMemoryModel or no subgroups", b->dev->caps.name);
    SYM_CHECK(n >= 8 && n % 8 == 0 && n_mat >= 1 && wg >= 32 && sgs > 0 && wg % (int)sgs == 0 &&
                  rb >= 1 && rb <= 8 && (n / 8 + wg - 1) / wg * rb <= 32 && backoff >= 0,
              SYM_ERR_ARG,
              "probe_dchain: n %d, %d products, %d invocations, %d rows per workgroup (at most "
              "32 uvec4 of weights per invocation)",
              n, n_mat, wg, rb);
    uint64_t wbytes = (uint64_t)n * (uint64_t)n * 2 * (uint64_t)n_mat;
    SYM_CHECK(wbytes + 16 <= b->max_range && wbytes / 16 < UINT32_MAX, SYM_ERR_ARG,
              "probe_dchain: %llu bytes of weights exceed one binding", (unsigned long long)wbytes);
    memset(out, 0, sizeof *out);
    out->n = n, out->n_mat = n_mat, out->wg = wg, out->rb = rb, out->backoff = backoff;
    sym_status st = SYM_OK;
    dchain_ctx c = {
        .n = (uint32_t)n, .n_mat = (uint32_t)n_mat, .groups = (uint32_t)((n + rb - 1) / rb)};
    SYM_TRY_GOTO(chain_open(b, n, n_mat, (uint64_t)n_mat * DCHAIN_SLOT * 4, &c.cb));
    double t[N_TIMED];
    for (int mode = 0; mode < DCHAIN_MODES; mode++) {
        sym_vk_spec spec = sym_vkb_spec(b, (uint32_t)wg, SYM_DT_F16);
        spec.v[4] = (uint32_t)rb;
        spec.v[5] = (uint32_t)((n / 8 + wg - 1) / wg);
        spec.v[6] = (uint32_t)(mode < 2 ? 0 : mode - 1);
        spec.v[7] = (uint32_t)backoff;
        spec.v[8] = sgs;
        SYM_TRY_GOTO(
            sym_vk_pipeline_get(b->pipes, SYM_VK_K_PROBE_DCHAIN, SYM_VK_VAR_DEFAULT, &spec, &c.p));
        c.mode = mode;
        double err;
        SYM_TRY_GOTO(chain_check(b, &c.cb, n, n_mat, dchain_once, &c, &err));
        out->err[mode] = mode == 1 ? 0 : err; /* (mode 1's results are wrong by design) */
        SYM_TRY_GOTO(time_work(b, dchain_once, &c, t));
        out->us[mode] = t[N_TIMED / 2] / n_mat * 1e6;
        out->gb_s[mode] = (double)wbytes / t[N_TIMED / 2] * 1e-9;
    }
fail:
    chain_close(b, &c.cb);
    return st;
}
