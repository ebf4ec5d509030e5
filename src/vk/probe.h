/* probe.h — what this device can do, measured with the backend's own kernels: device-memory
 * read bandwidth (probe_read over a 1 GiB buffer, 16-byte loads) and the f16 matrix rate of the
 * backend's matmul (f32 activations times f16 weights: the path prefill takes). Each figure
 * follows at least 200 ms of the same work (clocks ramp up from idle) and is the median of 5
 * timed batches. Engine thread only; takes about a second. */
#ifndef SYM_VK_PROBE_H
#define SYM_VK_PROBE_H

#include "vk/ops.h"

typedef struct sym_vk_probe {
    double read_gb_s; /* median; decimal GB (1e9 bytes) per second */
    double read_min_gb_s, read_max_gb_s;
    uint64_t read_bytes; /* per dispatch */
    double f16_tflop_s;  /* median; 2 m n k per product */
    double f16_min_tflop_s, f16_max_tflop_s;
    int gemm_m, gemm_n, gemm_k;
    int coopmat; /* the product ran on the cooperative-matrix path */
} sym_vk_probe;

/* b must be a Vulkan backend with no work pending that the caller still needs to read.
 * SYM_ERR_BUDGET/SYM_ERR_VULKAN if the buffers cannot be had (then nothing is measured). */
sym_status sym_vk_probe_device(sym_backend *b, sym_vk_probe *out);

/* A chain of n_mat dependent n x n f16 matrix-vector products (probe_chain.comp), timed two
 * ways: one persistent dispatch whose phases are separated by grid barriers, and one dispatch
 * per product separated by pipeline barriers. n_groups workgroups of wg invocations (0: one per
 * multiprocessor, one in all where the count is unknown), rb rows per step. Both results are
 * checked against a host f64 chain (max_rel_err: the worst vector's max |diff| / max |ref|).
 * mode: 0 acquire polls, 1 relaxed polls, 2 relaxed polls with backoff (shaders/grid_sync.glsl);
 * + 4: rows claimed rb at a time from a counter instead of a fixed block per workgroup. */
typedef struct sym_vk_chain_probe {
    int n, n_mat, n_groups, wg, rb, mode;
    double persist_gb_s, split_gb_s; /* median; weight bytes per second */
    double persist_us, split_us;     /* median time per product */
    double persist_err, split_err;
} sym_vk_chain_probe;

sym_status sym_vk_probe_chain(sym_backend *b, int n, int n_mat, int n_groups, int wg, int rb,
                              int mode, sym_vk_chain_probe *out);

/* A chain of n_mat dependent n x n f16 matrix-vector products, one dispatch each
 * (probe_dchain.comp: ceil(n / rb) workgroups of wg invocations, rb rows each), timed six ways
 * (mode): 0 a pipeline barrier between dispatches; 1 no barrier and no wait (the lower bound;
 * its results are wrong and not checked); 2 no barrier, each workgroup waits in the shader for
 * the dispatch before (one arrivals counter), then loads; 3 no barrier, each workgroup loads its
 * rows of W first, then waits, then reads x; 4 and 5 as 2 and 3 with the arrivals spread over 32
 * counters per dispatch whose last arrivers count on a top counter, the only one polled. backoff:
 * shared-memory atomics between two polls. Modes other than 1 are checked against a host f64
 * chain. Each chain starts after a pipeline barrier. SYM_ERR_UNSUPPORTED without
 * vulkanMemoryModel or subgroups. */
typedef struct sym_vk_dchain_probe {
    int n, n_mat, wg, rb, backoff;
    double us[6];   /* median time per product, by mode */
    double gb_s[6]; /* weight bytes per second */
    double err[6];  /* max_rel_err as above; 0 for mode 1 (not checked) */
} sym_vk_dchain_probe;

sym_status sym_vk_probe_dchain(sym_backend *b, int n, int n_mat, int wg, int rb, int backoff,
                               sym_vk_dchain_probe *out);

#endif
