/* probe.h — measures the machine the engine runs on, for benchmarks and the placement plan:
 * RAM read bandwidth and f32 FMA peak with all threads (the ceilings of CPU decode and prefill),
 * and a description of the machine (host, CPU model, cores, SIMD level). Each probe takes well
 * under a second. */
#ifndef SYM_CPU_PROBE_H
#define SYM_CPU_PROBE_H

#include <json-c/json.h>

/* Best-of-several read bandwidth over a buffer far larger than the caches, in bytes/s, using
 * n_threads threads (<= 0: all online CPUs), the widest vector loads this CPU has and several
 * independent accumulators. 0 if the buffer cannot be allocated. */
double sym_probe_read_bandwidth(int n_threads);

/* Peak f32 fused multiply-add rate in FLOP/s (2 per FMA lane), independent chains on n_threads
 * threads (<= 0: all). */
double sym_probe_fma_peak(int n_threads);

/* The same measurements on a caller's pool: bandwidth over the caller's buffer (bytes a multiple
 * of 8 MiB is best; it is read in 8 MiB chunks handed out dynamically, so a thread slowed by
 * other load does not hold the rest back), one pass each. Benchmarks interleave these with what
 * they measure. */
typedef struct sym_threadpool sym_threadpool;
double sym_probe_read_bandwidth_on(sym_threadpool *pool, const void *buf, size_t bytes);
double sym_probe_fma_peak_on(sym_threadpool *pool);

/* {"hostname", "cpu", "cores", "isa"}; the caller owns the object (json_object_put). */
json_object *sym_probe_machine_json(void);

#endif
