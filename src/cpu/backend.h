/* backend.h — the CPU backend's state, shared by ops.c (memory, small ops), matmul.c and
 * attention.c. Internal to src/cpu. */
#ifndef SYM_CPU_BACKEND_H
#define SYM_CPU_BACKEND_H

#include "base/threadpool.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"

/* matmul: k-chunk of the packed weight panels (panel = nr x SYM_CPU_KC floats per thread) */
#define SYM_CPU_KC 1024

typedef struct sym_cpu_backend {
    sym_backend base;
    sym_threadpool *pool;
    int n_threads;
    sym_cpu_isa isa;
    const sym_cpu_kernels *k;

    /* the first error of an op since the last read()/sync() */
    sym_status err;
    char err_msg[200];

    /* per-thread scratch, 64-byte aligned, grown (rarely, on the engine thread) to the largest
     * request seen; scratch_raw holds what sym_malloc returned */
    float **scratch;
    void **scratch_raw;
    size_t scratch_floats;

    /* rope: freq[i] = theta^(-2i/head_dim), kept for the last (theta, head_dim) */
    float *rope_freq;
    int rope_cap, rope_head_dim;
    float rope_theta;
} sym_cpu_backend;

/* Latches the first error (status + detail) for the next read()/sync(); returns 0. */
int sym_cpu_fail(sym_cpu_backend *b, sym_status st, const char *fmt, ...) SYM_PRINTF(3, 4);
#define SYM_CPU_FAIL_RETURN(b, ...)                                                                \
    do {                                                                                           \
        sym_cpu_fail((b), __VA_ARGS__);                                                            \
        return;                                                                                    \
    } while (0)
/* Makes every thread's scratch at least n floats; latches SYM_ERR_OOM and returns 0 on failure. */
int sym_cpu_scratch_reserve(sym_cpu_backend *b, size_t n);

void sym_cpu_matmul(sym_backend *b, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                    const sym_tensor *bias);
void sym_cpu_attention(sym_backend *b, sym_tensor *out, const sym_tensor *q, const sym_tensor *k,
                       const sym_tensor *v, int n_head, int n_head_kv, int head_dim, int pos0,
                       float scale);

#endif
