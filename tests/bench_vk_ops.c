/* bench_vk_ops — microbenchmarks of the Vulkan kernels at real sizes, timed with GPU timestamps
 * (profiling mode: each dispatch serialized and timed). Not a ctest: run by hand or on the GPU
 * machine. Every measured product is spot-checked against a double-precision host computation
 * of 64 random outputs. Prints a table; --json FILE also writes one JSON object per line.
 *
 *   bench_vk_ops [--json FILE] [--quick] [--gemm] [--act16] [--shapes [--f16]]
 *   --gemm: only the GEMM rows; --act16: GEMMs with f16 activations (the default of the engine;
 *   without it f32 activations, hi + lo); --shapes: only the GEMMs of a 512-token llama2-7b
 *   prefill (and the fused Q/K/V and gate/up shapes), f16 and bf16 weights, the activation split
 *   and the tensor-core product timed apart (--f16: f16 weights only)
 *
 * Measures: matrix-vector bandwidth (f16 over workgroup sizes and rows per workgroup, f32, bf16;
 * 4 matrices in rotation so the L2 cache does not help), GEMM rate (cooperative-matrix vs
 * shared-memory kernel), attention decode bandwidth and prefill rate, and the cost of a
 * dependent dispatch. Every timed section follows 200 ms of the same work on the GPU (clocks
 * drop within milliseconds of idling: a cold H100 ran at 345 MHz) and lasts >= 100 ms.
 */
#include <time.h>

#include "base/half.h"
#include "test_util.h"
#include "vk/ops.h"

static FILE *g_json;
static int g_quick, g_gemm_only, g_act16, g_shapes, g_f16_only;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Runs op(b, ctx) back to back for 200 ms (warm-up), then resets the profile and runs it for at
 * least min_ms more; returns how many timed calls were made. */
static int hot_run(sym_backend *b, void (*op)(sym_backend *, void *), void *ctx, double min_ms) {
    for (int phase = 0; phase < 2; phase++) {
        double t0 = now_ms(), limit = phase ? min_ms : 200;
        int reps = 0;
        if (phase) sym_vk_backend_profile_reset(b);
        while (now_ms() - t0 < limit) {
            for (int i = 0; i < 8; i++)
                op(b, ctx);
            reps += 8;
            if (b->ops->sync(b) != SYM_OK) {
                fprintf(stderr, "sync: %s\n", sym_last_error());
                return 0;
            }
        }
        if (phase) return reps;
    }
    return 0;
}

static int g_tile[4], g_warps[2];

static int g_split, g_nosg; /* mv kernel shape; 1: the no-subgroup matvec */

static sym_backend *make(int wg, int nr, int coop, int fp16) {
    sym_vk_options o;
    sym_vk_options_init(&o);
    memcpy(o.coop_tile, g_tile, sizeof g_tile);
    memcpy(o.coop_warps, g_warps, sizeof g_warps);
    o.mv_split = g_split;
    o.use_subgroups = !g_nosg;
    o.workgroup_size = wg;
    o.matvec_rows = nr;
    o.use_coopmat = coop;
    o.use_fp16_math = fp16;
    o.f32_gemm_act = !fp16 && !g_act16; /* f32 activations (hi + lo) unless measuring fp16 math
                                         * or --act16 */
    o.profiling = 1;
    o.pipeline_cache_dir = "";
    sym_backend *b = NULL;
    sym_status st = sym_vk_backend_create(&o, &b);
    if (st != SYM_OK) {
        fprintf(stderr, "backend: %s: %s\n", sym_status_name(st), sym_last_error());
        return NULL;
    }
    return b;
}

/* Random host data of a dtype, values in [-1, 1). */
static void *rand_data(test_rng *r, sym_dtype t, size_t n) {
    void *p = malloc(n * sym_dtype_size(t));
    for (size_t i = 0; i < n; i++) {
        float v = test_rng_f32(r);
        if (t == SYM_DT_F32)
            ((float *)p)[i] = v;
        else if (t == SYM_DT_F16)
            ((uint16_t *)p)[i] = sym_f32_to_f16(v);
        else
            ((uint16_t *)p)[i] = sym_f32_to_bf16(v);
    }
    return p;
}

static double elem(const void *p, sym_dtype t, size_t i) {
    if (t == SYM_DT_F32) return ((const float *)p)[i];
    if (t == SYM_DT_F16) return sym_f16_to_f32(((const uint16_t *)p)[i]);
    return sym_bf16_to_f32(((const uint16_t *)p)[i]);
}

/* Max relative error of 64 random outputs of out = x W^T against a double computation. */
static double spot_check(sym_backend *b, const sym_tensor *out, const float *x, const void *w,
                         sym_dtype wt, int T, int K, int N, test_rng *r) {
    float *got = malloc((size_t)T * N * sizeof *got);
    if (b->ops->read(b, out, got, (size_t)T * N * 4) != SYM_OK) {
        fprintf(stderr, "read: %s\n", sym_last_error());
        free(got);
        return INFINITY;
    }
    double worst = 0;
    for (int s = 0; s < 64; s++) {
        int t = (int)test_rng_below(r, (uint64_t)T), o = (int)test_rng_below(r, (uint64_t)N);
        double ref = 0, mag = 0;
        for (int k = 0; k < K; k++) {
            double p = (double)x[(size_t)t * K + k] * elem(w, wt, (size_t)o * K + k);
            ref += p;
            mag += fabs(p);
        }
        double e = fabs(got[(size_t)t * N + o] - ref) / (mag > 0 ? mag : 1);
        if (!(e <= worst)) worst = e; /* NaN propagates */
    }
    free(got);
    return worst;
}

/* GPU ms and counts of the named kernels since the last profile reset. */
static double prof_ms(sym_backend *b, const char *const *names, int n_names, uint64_t *count,
                      double *bytes, double *flops) {
    sym_vk_profile_entry e[SYM_VK_K_COUNT];
    int n = sym_vk_backend_profile(b, e, SYM_VK_K_COUNT);
    double ms = 0;
    *count = 0;
    *bytes = *flops = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n_names; j++)
            if (!strcmp(e[i].name, names[j])) {
                ms += e[i].gpu_ms;
                if (j == 0) *count = e[i].n_dispatch;
                *bytes += e[i].bytes;
                *flops += e[i].flops;
            }
    return ms;
}

static void report(const char *what, const char *variant, double us, double gbs, double tflops,
                   double err) {
    printf("%-34s %-22s %10.2f us %9.1f GB/s %8.2f TFLOP/s  err %.1e\n", what, variant, us, gbs,
           tflops, err);
    if (g_json)
        fprintf(g_json,
                "{\"bench\":\"%s\",\"variant\":\"%s\",\"us\":%.3f,\"gb_s\":%.2f,"
                "\"tflop_s\":%.3f,\"max_rel_err\":%.3g}\n",
                what, variant, us, gbs, tflops, err);
    fflush(stdout);
}

typedef struct mm_ctx {
    sym_tensor *w, *x, *out;
    int n_mats, next;
} mm_ctx;

static void mm_op(sym_backend *b, void *p) {
    mm_ctx *c = p;
    int m = c->next++ % c->n_mats;
    b->ops->matmul(b, &c->out[m], c->x, &c->w[m], NULL);
}

/* Host data reused by every variant: one weight matrix per dtype, one activation block. */
static void *g_host_w[SYM_DT_COUNT];
static float *g_host_x;

static void bench_matmul(sym_backend *b, const char *kind, const char *variant, sym_dtype wt, int T,
                         int K, int N, int n_mats, test_rng *r) {
    sym_tensor w[4], x, out[4];
    for (int m = 0; m < n_mats; m++)
        if (b->ops->load(b, &w[m], g_host_w[wt], wt, K, N) != SYM_OK ||
            b->ops->alloc(b, &out[m], SYM_DT_F32, N, T) != SYM_OK) {
            fprintf(stderr, "alloc: %s\n", sym_last_error());
            exit(1);
        }
    b->ops->load(b, &x, g_host_x, SYM_DT_F32, K, T);
    mm_ctx c = {w, &x, out, n_mats, 0};
    int reps = hot_run(b, mm_op, &c, 150);
    const char *names[] = {"matvec", "mv", "matmul_coop", "matmul", "gemm_split"};
    uint64_t n;
    double bytes, flops, ms = prof_ms(b, names, 5, &n, &bytes, &flops);
    double err = reps ? spot_check(b, &out[0], g_host_x, g_host_w[wt], wt, T, K, N, r) : INFINITY;
    char what[64];
    snprintf(what, sizeof what, "%s %s T=%d %dx%d", kind, sym_dtype_name(wt), T, N, K);
    double us = reps ? ms * 1e3 / reps : 0;
    report(what, variant, us, ms > 0 ? bytes / (ms * 1e6) : 0,
           us > 0 ? 2.0 * T * (double)N * K / (us * 1e6) : 0, err);
    if (g_shapes && reps) { /* the split and the product apart */
        double b2, f2, split = prof_ms(b, names + 4, 1, &n, &b2, &f2) * 1e3 / reps;
        char v2[64];
        snprintf(v2, sizeof v2, "%s: product", variant);
        report(what, v2, us - split, 0, 2.0 * T * (double)N * K / ((us - split) * 1e6), err);
        snprintf(v2, sizeof v2, "%s: split", variant);
        report(what, v2, split, split > 0 ? b2 / reps / (split * 1e3) : 0, 0, err);
    }
    for (int m = 0; m < n_mats; m++) {
        b->ops->release(b, &w[m]);
        b->ops->release(b, &out[m]);
    }
    b->ops->release(b, &x);
    (void)n;
}

typedef struct attn_ctx {
    sym_tensor *q, *k, *v, *out;
    int H, HKV, D, pos0;
} attn_ctx;

static void attn_op(sym_backend *b, void *p) {
    attn_ctx *c = p;
    b->ops->attention(b, c->out, c->q, c->k, c->v, c->H, c->HKV, c->D, c->pos0,
                      1.0f / sqrtf((float)c->D));
}

static void bench_attention(sym_backend *b, int T, int H, int HKV, int D, int n_ctx, int pos0,
                            test_rng *r) {
    sym_tensor q, k, v, out;
    void *hk = rand_data(r, SYM_DT_F16, (size_t)n_ctx * HKV * D);
    float *hq = rand_data(r, SYM_DT_F32, (size_t)T * H * D);
    b->ops->load(b, &k, hk, SYM_DT_F16, HKV * D, n_ctx);
    b->ops->load(b, &v, hk, SYM_DT_F16, HKV * D, n_ctx);
    b->ops->load(b, &q, hq, SYM_DT_F32, H * D, T);
    b->ops->alloc(b, &out, SYM_DT_F32, H * D, T);
    attn_ctx c = {&q, &k, &v, &out, H, HKV, D, pos0};
    int reps = hot_run(b, attn_op, &c, 150);
    const char *names[] = {T <= 4 ? "attn_decode" : "attn_prefill", "attn_combine",
                           "attn_decode_sg"};
    uint64_t n;
    double bytes, flops, ms = prof_ms(b, names, 3, &n, &bytes, &flops);
    char what[80];
    snprintf(what, sizeof what, "attention f16 T=%d H=%d/%d D=%d pos=%d", T, H, HKV, D, pos0 + T);
    report(what, T <= 4 ? "decode+combine" : "prefill", reps ? ms * 1e3 / reps : 0,
           ms > 0 ? bytes / (ms * 1e6) : 0, ms > 0 ? flops / (ms * 1e9) : 0, reps ? 0 : INFINITY);
    b->ops->release(b, &q);
    b->ops->release(b, &k);
    b->ops->release(b, &v);
    b->ops->release(b, &out);
    free(hk);
    free(hq);
    (void)n;
}

/* Wall time per dispatch of a chain of dependent small adds (no profiling: real barriers). */
static void bench_dispatch_cost(test_rng *r) {
    sym_vk_options o;
    sym_vk_options_init(&o);
    o.pipeline_cache_dir = "";
    sym_backend *b;
    if (sym_vk_backend_create(&o, &b) != SYM_OK) return;
    float *h = rand_data(r, SYM_DT_F32, 4096);
    sym_tensor x, y;
    b->ops->load(b, &x, h, SYM_DT_F32, 4096, 1);
    b->ops->load(b, &y, h, SYM_DT_F32, 4096, 1);
    int n = 2000;
    double t_end = now_ms() + 200, t0 = 0, t1 = 0;
    for (int pass = 0; pass < 1000 && t1 < t_end + 100; pass++) { /* 200 ms warm, then time */
        t0 = now_ms();
        for (int i = 0; i < n; i++)
            b->ops->add(b, &x, &x, &y);
        b->ops->sync(b);
        t1 = now_ms();
    }
    report("dependent dispatch (add 4096)", "wall, 1 submit", (t1 - t0) * 1e3 / n, 0, 0, 0);
    b->ops->release(b, &x);
    b->ops->release(b, &y);
    b->ops->destroy(b);
    free(h);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json") && i + 1 < argc)
            g_json = fopen(argv[++i], "w");
        else if (!strcmp(argv[i], "--quick"))
            g_quick = 1;
        else if (!strcmp(argv[i], "--gemm"))
            g_gemm_only = 1;
        else if (!strcmp(argv[i], "--act16"))
            g_act16 = 1;
        else if (!strcmp(argv[i], "--shapes"))
            g_shapes = 1;
        else if (!strcmp(argv[i], "--f16"))
            g_f16_only = 1;
    }
    test_rng r = test_rng_init("bench_vk_ops");
    sym_backend *b = make(0, 0, 1, 0);
    if (!b) return TEST_SKIP;
    const sym_vk_caps *c = sym_vk_backend_caps(b);
    printf("device: %s (%s %s), subgroup %u, shared %u, coopmat NV %s, storage range %llu\n",
           c->name, c->driver_name, c->driver_info, c->subgroup_size, c->max_shared_bytes,
           sym_vk_backend_uses_coopmat(b) ? "used" : "no",
           (unsigned long long)c->max_storage_buffer_range);
    int coop = sym_vk_backend_uses_coopmat(b);
    b->ops->destroy(b);

    int big = !g_quick;
    int K1 = big ? 4096 : 512, N1 = big ? 14336 : 1024, T = big ? 512 : 64;
    if (g_shapes) { /* K x N of llama2-7b's products; Q/K/V and gate/up also as one matrix */
        static const int shapes[][2] = {{4096, 4096}, {4096, 11008}, {11008, 4096},
                                        {4096, 12288}, {4096, 22016}, {4096, 14336}};
        size_t most = 0;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            if ((size_t)shapes[i][0] * shapes[i][1] > most) most = (size_t)shapes[i][0] * shapes[i][1];
        for (int t = 0; t < SYM_DT_COUNT; t++)
            g_host_w[t] = rand_data(&r, (sym_dtype)t, most);
        g_host_x = rand_data(&r, SYM_DT_F32, (size_t)T * 11008);
        b = make(0, 0, 1, 0);
        for (size_t i = 0; b && i < sizeof shapes / sizeof shapes[0]; i++) {
            if (g_f16_only) {
                bench_matmul(b, "gemm", "default", SYM_DT_F16, T, shapes[i][0], shapes[i][1], 1, &r);
                continue;
            }
            bench_matmul(b, "gemm", "default", SYM_DT_F16, T, shapes[i][0], shapes[i][1], 1, &r);
            bench_matmul(b, "gemm", "default", SYM_DT_BF16, T, shapes[i][0], shapes[i][1], 1, &r);
        }
        if (b) b->ops->destroy(b);
        goto done;
    }
    for (int t = 0; t < SYM_DT_COUNT; t++)
        g_host_w[t] = rand_data(&r, (sym_dtype)t, (size_t)K1 * N1);
    g_host_x = rand_data(&r, SYM_DT_F32, (size_t)T * K1);

    /* matrix-vector shapes: workgroup, rows per group, subgroups per group (0: the matvec kernel
     * of devices without subgroup arithmetic) */
    static const int mvs[][3] = {{128, 1, 0}, {128, 1, 4}, {128, 2, 4}, {256, 1, 8}, {256, 2, 8},
                                 {256, 1, 4}, {128, 1, 2}, {128, 1, 1}, {64, 1, 2},  {512, 1, 16}};
    for (size_t i = 0; i < sizeof mvs / sizeof mvs[0] && !g_gemm_only; i++) {
        g_nosg = mvs[i][2] == 0;
        g_split = mvs[i][2];
        sym_backend *v = make(mvs[i][0], mvs[i][1], 1, 0);
        if (!v) continue;
        char name[48];
        if (g_nosg)
            snprintf(name, sizeof name, "matvec wg %d", mvs[i][0]);
        else
            snprintf(name, sizeof name, "mv wg %d r%d ks%d", mvs[i][0], mvs[i][1], mvs[i][2]);
        bench_matmul(v, "matvec", name, SYM_DT_F16, 1, K1, N1, 4, &r);
        bench_matmul(v, "matvec", name, SYM_DT_F16, 1, N1, K1, 4, &r);
        v->ops->destroy(v);
    }
    g_nosg = g_split = 0;
    b = make(0, 0, 1, 0);
    bench_matmul(b, "matvec", "default", SYM_DT_BF16, 1, K1, N1, 4, &r);
    bench_matmul(b, "matvec", "default", SYM_DT_F32, 1, K1, N1, 4, &r);
    bench_matmul(b, "matvec", "default", SYM_DT_F16, 4, K1, N1, 4, &r);
    const char *gv = coop ? (g_act16 ? "coopmat (f16 activations)" : "coopmat (hi+lo split)")
                          : "shared memory";
    bench_matmul(b, "gemm", gv, SYM_DT_F16, T, K1, N1, 1, &r);
    bench_matmul(b, "gemm", gv, SYM_DT_BF16, T, K1, N1, 1, &r);
    if (coop) { /* cooperative-matrix tile shapes: SM SN PAD BK8 */
        /* SM SN PAD BK8, subgroups WM x WN */
        static const int tiles[][6] = {{2, 2, 1, 4, 2, 4}, {2, 2, 1, 4, 2, 2}, {2, 4, 1, 4, 2, 2},
                                       {2, 2, 1, 4, 4, 2}, {4, 2, 1, 4, 2, 2}, {2, 4, 1, 4, 2, 4},
                                       {4, 2, 1, 4, 2, 4}, {2, 2, 1, 8, 2, 4}, {2, 2, 0, 4, 2, 4},
                                       {4, 4, 1, 4, 2, 2}, {2, 2, 1, 4, 4, 4}, {1, 2, 1, 4, 4, 2},
                                       /* shapes that fit 48 KiB only without the lo tile */
                                       {2, 4, 1, 8, 4, 2}, {2, 4, 1, 4, 4, 2}, {2, 4, 1, 6, 2, 4},
                                       {4, 4, 1, 4, 2, 4}, {4, 2, 1, 8, 2, 4}, {2, 4, 0, 8, 4, 2},
                                       /* 16 subgroups */
                                       {2, 2, 1, 8, 4, 4}, {4, 2, 1, 4, 4, 4}, {2, 2, 1, 6, 4, 4}};
        for (int t = 0; t < (int)(sizeof tiles / sizeof tiles[0]); t++) {
            memcpy(g_tile, tiles[t], sizeof g_tile);
            memcpy(g_warps, tiles[t] + 4, sizeof g_warps);
            sym_backend *v = make(0, 0, 1, 0);
            if (!v) continue;
            char name[40];
            snprintf(name, sizeof name, "coop %d %d %d %d / %dx%d", tiles[t][0], tiles[t][1],
                     tiles[t][2], tiles[t][3], tiles[t][4], tiles[t][5]);
            bench_matmul(v, "gemm", name, SYM_DT_F16, T, K1, N1, 1, &r);
            v->ops->destroy(v);
        }
        memset(g_tile, 0, sizeof g_tile);
        memset(g_warps, 0, sizeof g_warps);
    }
    if (g_gemm_only) {
        b->ops->destroy(b);
        goto done;
    }
    bench_attention(b, 1, 32, 8, 128, big ? 8192 : 1024, big ? 8191 : 1023, &r);
    bench_attention(b, 1, 32, 32, 128, 640, 639, &r); /* llama2-7b at the benchmark's end */
    bench_attention(b, 1, 32, 4, 64, 640, 639, &r);   /* tinyllama-1.1b */
    bench_attention(b, T, 32, 8, 128, T, 0, &r);
    b->ops->destroy(b);
    if ((b = make(0, 0, 1, 1)) != NULL) {
        if (coop) bench_matmul(b, "gemm", "coopmat, fp16 math (hi)", SYM_DT_F16, T, K1, N1, 1, &r);
        bench_matmul(b, "matvec", "fp16 math", SYM_DT_F16, 1, K1, N1, 4, &r);
        b->ops->destroy(b);
    }
    if ((b = make(0, 0, 0, 0)) != NULL) {
        bench_matmul(b, "gemm", "shared memory", SYM_DT_F16, T, K1, N1, 1, &r);
        bench_matmul(b, "gemm", "shared memory", SYM_DT_F32, T, K1, N1, 1, &r);
        b->ops->destroy(b);
    }
    bench_dispatch_cost(&r);
done:
    for (int t = 0; t < SYM_DT_COUNT; t++)
        free(g_host_w[t]);
    free(g_host_x);
    sym_vk_shutdown();
    if (g_json) fclose(g_json);
    return 0;
}
