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

#define BW_BYTES (1ull << 30) /* far beyond any last-level cache */
#define BW_CHUNK (8u << 20)
#define BW_PASSES 5
#define FMA_ITERS 1000000    /* ~4 ms per thread */
#define CHAINS 12            /* > FMA latency x throughput on current x86 cores */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int best_wide(void) {
#if defined(__x86_64__)
    sym_cpu_isa isa = sym_cpu_isa_best();
    return isa == SYM_CPU_ISA_AVX512 ? 2 : isa == SYM_CPU_ISA_AVX2 ? 1 : 0;
#else
    return 0;
#endif
}

/* ---- read bandwidth ------------------------------------------------------------------------- */

typedef struct bw_job {
    const char *p;
    int wide;           /* 2: 512-bit loads, 1: 256-bit, 0: 64-bit */
    double sink[256];   /* per-thread results, so the loads cannot be optimized away */
} bw_job;

#if defined(__x86_64__)
/* eight independent accumulators keep enough loads in flight */
__attribute__((target("avx512f"))) static double read_512(const char *p, size_t bytes) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i + 512 <= bytes; i += 512) {
        const float *f = (const float *)(p + i);
        a0 = _mm512_add_ps(a0, _mm512_load_ps(f));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(f + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(f + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(f + 48));
        a4 = _mm512_add_ps(a4, _mm512_load_ps(f + 64));
        a5 = _mm512_add_ps(a5, _mm512_load_ps(f + 80));
        a6 = _mm512_add_ps(a6, _mm512_load_ps(f + 96));
        a7 = _mm512_add_ps(a7, _mm512_load_ps(f + 112));
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    return (double)_mm512_reduce_add_ps(s);
}

__attribute__((target("avx2"))) static double read_256(const char *p, size_t bytes) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i + 256 <= bytes; i += 256) {
        const float *f = (const float *)(p + i);
        a0 = _mm256_add_ps(a0, _mm256_load_ps(f));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(f + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(f + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(f + 24));
        a4 = _mm256_add_ps(a4, _mm256_load_ps(f + 32));
        a5 = _mm256_add_ps(a5, _mm256_load_ps(f + 40));
        a6 = _mm256_add_ps(a6, _mm256_load_ps(f + 48));
        a7 = _mm256_add_ps(a7, _mm256_load_ps(f + 56));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    float f[8];
    _mm256_storeu_ps(f, s);
    return (double)(f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7]);
}
#endif

static double read_scalar(const char *p, size_t bytes) {
    uint64_t a[4] = {0, 0, 0, 0};
    for (size_t i = 0; i + 32 <= bytes; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t v;
            memcpy(&v, p + i + 8 * k, 8);
            a[k] += v;
        }
    return (double)(a[0] ^ a[1] ^ a[2] ^ a[3]);
}

static void bw_task(void *ctx, int64_t task, int thread_idx) {
    bw_job *j = ctx;
    const char *p = j->p + (size_t)task * BW_CHUNK;
    double s;
#if defined(__x86_64__)
    if (j->wide == 2) s = read_512(p, BW_CHUNK);
    else if (j->wide == 1) s = read_256(p, BW_CHUNK);
    else
#endif
        s = read_scalar(p, BW_CHUNK);
    j->sink[thread_idx & 255] += s;
}

double sym_probe_read_bandwidth_on(sym_threadpool *pool, const void *buf, size_t bytes) {
    bw_job *j = aligned_alloc(64, sizeof *j);
    if (!j) return 0;
    memset(j, 0, sizeof *j);
    j->p = buf;
    j->wide = best_wide();
    int64_t n = (int64_t)(bytes / BW_CHUNK);
    double t0 = now_s();
    sym_threadpool_parallel_for(pool, n, bw_task, j);
    double bw = (double)n * BW_CHUNK / (now_s() - t0);
    free(j);
    return bw;
}

static void touch_task(void *ctx, int64_t task, int thread_idx) {
    (void)thread_idx;
    /* first touch from the pool spreads pages over NUMA nodes like the reads will */
    memset((char *)ctx + (size_t)task * BW_CHUNK, 1, BW_CHUNK);
}

double sym_probe_read_bandwidth(int n_threads) {
    sym_threadpool *pool = NULL;
    if (sym_threadpool_create(n_threads, &pool) != SYM_OK) return 0;
    char *buf = aligned_alloc(4096, BW_BYTES);
    double best = 0;
    if (buf) {
        sym_threadpool_parallel_for(pool, BW_BYTES / BW_CHUNK, touch_task, buf);
        for (int pass = 0; pass < BW_PASSES; pass++) {
            double bw = sym_probe_read_bandwidth_on(pool, buf, BW_BYTES);
            if (bw > best) best = bw;
        }
    }
    free(buf);
    sym_threadpool_destroy(pool);
    return best;
}

/* ---- FMA peak -------------------------------------------------------------------------------- */

typedef struct fma_job {
    int wide;
    double sink[256];
} fma_job;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double fma_512(void) {
    __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f), a[CHAINS];
    for (int k = 0; k < CHAINS; k++) a[k] = _mm512_set1_ps((float)k);
    for (int i = 0; i < FMA_ITERS; i++)
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++) a[k] = _mm512_fmadd_ps(a[k], b, c);
    __m512 s = a[0];
    for (int k = 1; k < CHAINS; k++) s = _mm512_add_ps(s, a[k]);
    return (double)_mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static double fma_256(void) {
    __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f), a[CHAINS];
    for (int k = 0; k < CHAINS; k++) a[k] = _mm256_set1_ps((float)k);
    for (int i = 0; i < FMA_ITERS; i++)
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++) a[k] = _mm256_fmadd_ps(a[k], b, c);
    __m256 s = a[0];
    for (int k = 1; k < CHAINS; k++) s = _mm256_add_ps(s, a[k]);
    float f[8];
    _mm256_storeu_ps(f, s);
    return (double)f[0];
}
#endif

static double fma_scalar(void) {
    float a[CHAINS];
    for (int k = 0; k < CHAINS; k++) a[k] = (float)k;
    for (int i = 0; i < FMA_ITERS; i++)
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++) a[k] = a[k] * 0.999999f + 1e-7f;
    return (double)(a[0] + a[CHAINS - 1]);
}

static void fma_task(void *ctx, int64_t task, int thread_idx) {
    fma_job *j = ctx;
    (void)task;
    double s;
#if defined(__x86_64__)
    if (j->wide == 2) s = fma_512();
    else if (j->wide == 1) s = fma_256();
    else
#endif
        s = fma_scalar();
    j->sink[thread_idx & 255] += s;
}

double sym_probe_fma_peak_on(sym_threadpool *pool) {
    fma_job j;
    memset(&j, 0, sizeof j);
    j.wide = best_wide();
    int n = sym_threadpool_size(pool);
    double lanes = j.wide == 2 ? 16 : j.wide == 1 ? 8 : 1;
    double t0 = now_s();
    sym_threadpool_parallel_for(pool, n, fma_task, &j);
    return 2.0 * lanes * CHAINS * (double)FMA_ITERS * n / (now_s() - t0);
}

double sym_probe_fma_peak(int n_threads) {
    sym_threadpool *pool = NULL;
    if (sym_threadpool_create(n_threads, &pool) != SYM_OK) return 0;
    double best = 0;
    for (int pass = 0; pass < 4; pass++) {
        double f = sym_probe_fma_peak_on(pool);
        if (f > best) best = f;
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
