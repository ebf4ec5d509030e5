/* probe.c — device read bandwidth and f16 matrix rate with the backend's kernels (probe.h). */
#include "vk/probe.h"

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
    for (size_t i = 0; i < (size_t)m * (size_t)k; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        xf[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    SYM_TRY_GOTO(bb->ops->alloc(bb, &g.x, SYM_DT_F32, k, m));
    SYM_TRY_GOTO(bb->ops->write(bb, &g.x, host, (size_t)m * (size_t)k * 4));
    uint16_t *wh = host;
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        wh[i] = sym_f32_to_f16((float)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.1f);
    }
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
