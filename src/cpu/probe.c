#include "cpu/probe.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "base/threadpool.h"
#include "cpu/ops.h"

#define BW_BYTES (512ull << 20) /* well beyond any last-level cache */
#define BW_PASSES 5
#define FMA_ITERS 4000000

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- read bandwidth ------------------------------------------------------------------------- */

typedef struct bw_ctx {
    const char *buf;
    size_t slice;      /* bytes per task, a multiple of 256 */
    int64_t n_tasks;
    float sink[256];   /* per-thread results, so the loads cannot be optimized away */
    int isa;           /* 2: avx512, 1: avx2, 0: scalar */
} bw_ctx;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float read_avx512(const char *p, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 256) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps((const float *)(p + i)));
        a1 = _mm512_add_ps(a1, _mm512_load_ps((const float *)(p + i + 64)));
        a2 = _mm512_add_ps(a2, _mm512_load_ps((const float *)(p + i + 128)));
        a3 = _mm512_add_ps(a3, _mm512_load_ps((const float *)(p + i + 192)));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

__attribute__((target("avx2"))) static float read_avx2(const char *p, size_t n) {
    __m256 a[8];
    for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 256)
        for (int k = 0; k < 8; k++)
            a[k] = _mm256_add_ps(a[k], _mm256_load_ps((const float *)(p + i + 32 * k)));
    for (int k = 1; k < 8; k++) a[0] = _mm256_add_ps(a[0], a[k]);
    float t[8];
    _mm256_storeu_ps(t, a[0]);
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#endif

static float read_scalar(const char *p, size_t n) {
    uint64_t a[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t v;
            memcpy(&v, p + i + 8 * k, 8);
            a[k] += v;
        }
    return (float)(a[0] ^ a[1] ^ a[2] ^ a[3]);
}

static void bw_task(void *ctx, int64_t task, int thread_idx) {
    bw_ctx *c = ctx;
    const char *p = c->buf + (size_t)task * c->slice;
    float s;
#if defined(__x86_64__)
    if (c->isa == 2) s = read_avx512(p, c->slice);
    else if (c->isa == 1) s = read_avx2(p, c->slice);
    else
#endif
        s = read_scalar(p, c->slice);
    c->sink[thread_idx & 255] += s;
}

static void touch_task(void *ctx, int64_t task, int thread_idx) {
    bw_ctx *c = ctx;
    (void)thread_idx;
    /* first touch from the thread pool spreads pages over NUMA nodes like the reads will */
    memset((char *)c->buf + (size_t)task * c->slice, 1, c->slice);
}

static int best_isa(void) {
#if defined(__x86_64__)
    sym_cpu_isa isa = sym_cpu_isa_best();
    return isa == SYM_CPU_ISA_AVX512 ? 2 : isa == SYM_CPU_ISA_AVX2 ? 1 : 0;
#else
    return 0;
#endif
}

double sym_probe_read_bandwidth(int n_threads) {
    sym_threadpool *pool = NULL;
    if (sym_threadpool_create(n_threads, &pool) != SYM_OK) return 0;
    bw_ctx *c = aligned_alloc(64, sizeof *c);
    char *buf = aligned_alloc(4096, BW_BYTES);
    double best = 0;
    if (c && buf) {
        memset(c, 0, sizeof *c);
        c->buf = buf;
        c->n_tasks = (int64_t)sym_threadpool_size(pool) * 16;
        c->slice = (BW_BYTES / (size_t)c->n_tasks) & ~(size_t)255;
        c->isa = best_isa();
        sym_threadpool_parallel_for(pool, c->n_tasks, touch_task, c);
        for (int pass = 0; pass < BW_PASSES; pass++) {
            double t0 = now_s();
            sym_threadpool_parallel_for(pool, c->n_tasks, bw_task, c);
            double bw = (double)c->slice * (double)c->n_tasks / (now_s() - t0);
            if (bw > best) best = bw;
        }
    }
    free(buf);
    free(c);
    sym_threadpool_destroy(pool);
    return best;
}

/* ---- FMA peak -------------------------------------------------------------------------------- */

typedef struct fma_ctx {
    int isa;
    double lanes; /* f32 lanes per FMA */
    float sink[256];
} fma_ctx;

#define CHAINS 12 /* > latency x throughput of FMA units on current cores */

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static float fma_avx512(void) {
    __m512 a[CHAINS], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) a[k] = _mm512_set1_ps((float)k);
    for (int i = 0; i < FMA_ITERS; i++)
        for (int k = 0; k < CHAINS; k++) a[k] = _mm512_fmadd_ps(a[k], x, y);
    for (int k = 1; k < CHAINS; k++) a[0] = _mm512_add_ps(a[0], a[k]);
    return _mm512_reduce_add_ps(a[0]);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(void) {
    __m256 a[CHAINS], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) a[k] = _mm256_set1_ps((float)k);
    for (int i = 0; i < FMA_ITERS; i++)
        for (int k = 0; k < CHAINS; k++) a[k] = _mm256_fmadd_ps(a[k], x, y);
    for (int k = 1; k < CHAINS; k++) a[0] = _mm256_add_ps(a[0], a[k]);
    float t[8];
    _mm256_storeu_ps(t, a[0]);
    return t[0] + t[7];
}
#endif

static float fma_scalar(void) {
    float a[CHAINS];
    for (int k = 0; k < CHAINS; k++) a[k] = (float)k;
    for (int i = 0; i < FMA_ITERS / 16; i++)
        for (int k = 0; k < CHAINS; k++) a[k] = a[k] * 0.999999f + 1e-7f;
    return a[0] + a[CHAINS - 1];
}

static void fma_task(void *ctx, int64_t task, int thread_idx) {
    fma_ctx *c = ctx;
    (void)task;
    float s;
#if defined(__x86_64__)
    if (c->isa == 2) s = fma_avx512();
    else if (c->isa == 1) s = fma_avx2();
    else
#endif
        s = fma_scalar();
    c->sink[thread_idx & 255] += s;
}

double sym_probe_fma_peak(int n_threads) {
    sym_threadpool *pool = NULL;
    if (sym_threadpool_create(n_threads, &pool) != SYM_OK) return 0;
    fma_ctx c;
    memset(&c, 0, sizeof c);
    c.isa = best_isa();
    c.lanes = c.isa == 2 ? 16 : c.isa == 1 ? 8 : 1;
    double iters = c.isa ? FMA_ITERS : FMA_ITERS / 16, best = 0;
    int n = sym_threadpool_size(pool);
    for (int pass = 0; pass < 3; pass++) {
        double t0 = now_s();
        sym_threadpool_parallel_for(pool, n, fma_task, &c);
        double flops = 2.0 * c.lanes * CHAINS * iters * n / (now_s() - t0);
        if (flops > best) best = flops;
    }
    sym_threadpool_destroy(pool);
    return best;
}

/* ---- description ----------------------------------------------------------------------------- */

json_object *sym_probe_machine_json(void) {
    json_object *o = json_object_new_object();
    char host[256] = "?", cpu[256] = "?", line[512];
    gethostname(host, sizeof host - 1);
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *colon = strchr(line, ':');
            if (colon) {
                snprintf(cpu, sizeof cpu, "%s", colon + 2);
                cpu[strcspn(cpu, "\n")] = '\0';
            }
            break;
        }
    }
    if (f) fclose(f);
    json_object_object_add(o, "hostname", json_object_new_string(host));
    json_object_object_add(o, "cpu", json_object_new_string(cpu));
    json_object_object_add(o, "cores", json_object_new_int(sym_threadpool_cpu_count()));
    json_object_object_add(o, "isa", json_object_new_string(sym_cpu_isa_name(sym_cpu_isa_best())));
    return o;
}
