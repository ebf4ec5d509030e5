/* ops.h — the fast CPU backend: the sym_backend_ops of infer/ops.h on host memory, with a
 * persistent thread pool and SIMD kernels chosen at run time (AVX-512, AVX2+FMA+F16C, or
 * portable C). Results match the reference backend (cpu/ref.c) within the tolerances stated in
 * tests/test_cpu_ops.c. See docs/CPU.md.
 *
 * Threads: like every backend, one engine thread calls it; the backend's own workers only run
 * inside its ops. Ops are synchronous; errors found in an op (bad shapes, out-of-range token ids,
 * scratch that could not grow) are latched and returned by the next read() or sync(), and the op
 * leaves its output untouched.
 */
#ifndef SYM_CPU_OPS_H
#define SYM_CPU_OPS_H

#include "infer/ops.h"

typedef enum sym_cpu_isa {
    SYM_CPU_ISA_AUTO = 0, /* the best this CPU supports */
    SYM_CPU_ISA_GENERIC,  /* portable C */
    SYM_CPU_ISA_AVX2,     /* x86-64 with AVX2, FMA, F16C */
    SYM_CPU_ISA_AVX512,   /* x86-64 with AVX-512 F/BW/VL/DQ (plus the AVX2 set) */
    SYM_CPU_ISA_COUNT
} sym_cpu_isa;

/* Creates the CPU backend with n_threads threads in all, the calling thread included (<= 0:
 * one per online CPU) and the best ISA of this CPU. The caller owns *out (b->ops->destroy(b)).
 * Fails with SYM_ERR_OOM, or SYM_ERR_INTERNAL if a thread cannot be started. */
sym_status sym_cpu_backend_create(int n_threads, sym_backend **out);
/* Same with a chosen ISA (tests and benchmarks); SYM_ERR_UNSUPPORTED if this CPU lacks it. */
sym_status sym_cpu_backend_create_isa(int n_threads, sym_cpu_isa isa, sym_backend **out);

/* The best ISA this CPU supports (never AUTO), and whether isa can run here. */
sym_cpu_isa sym_cpu_isa_best(void);
int sym_cpu_isa_supported(sym_cpu_isa isa);
const char *sym_cpu_isa_name(sym_cpu_isa isa); /* "auto", "generic", "avx2", "avx512" */

/* The ISA and thread count a CPU backend runs with (b must come from sym_cpu_backend_create*). */
sym_cpu_isa sym_cpu_backend_isa(const sym_backend *b);
int sym_cpu_backend_n_threads(const sym_backend *b);

#endif
