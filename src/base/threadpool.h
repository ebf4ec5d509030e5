/* threadpool.h — a persistent pool of worker threads for data-parallel loops.
 *
 * Threads are created once by sym_threadpool_create and live until sym_threadpool_destroy; a
 * parallel_for only publishes a job (one atomic generation bump) and the calling thread works on
 * it alongside the workers. Idle workers spin for a short while (so the ~10 back-to-back ops of a
 * decoded layer are dispatched in well under a microsecond) and then sleep on a condition
 * variable, so an idle engine burns no CPU.
 *
 * Threads: one job at a time. Calls from different threads are serialized (a mutex); a call made
 * from inside a task of the same pool (nesting) runs all its tasks inline, in order, on the
 * calling thread with that thread's thread_idx, and never deadlocks.
 */
#ifndef SYM_BASE_THREADPOOL_H
#define SYM_BASE_THREADPOOL_H

#include <stdint.h>

#include "base/status.h"

typedef struct sym_threadpool sym_threadpool;

/* A task: task_idx in [0, n_tasks); thread_idx in [0, sym_threadpool_size) names the thread
 * running it (0 = the caller of parallel_for), so tasks may use per-thread scratch. */
typedef void (*sym_parallel_fn)(void *ctx, int64_t task_idx, int thread_idx);

/* Creates a pool of n_threads threads in all, the caller included (n_threads - 1 workers);
 * n_threads <= 0 means one per online CPU. Fails with SYM_ERR_OOM or SYM_ERR_INTERNAL (a thread
 * could not be started). The caller owns *out. */
sym_status sym_threadpool_create(int n_threads, sym_threadpool **out);
/* Stops and joins the workers; NULL is fine. Must not be called from inside a task. */
void sym_threadpool_destroy(sym_threadpool *pool);

int sym_threadpool_size(const sym_threadpool *pool);
/* Number of online CPUs (at least 1). */
int sym_threadpool_cpu_count(void);

/* Runs fn(ctx, i, thread_idx) once for every i in [0, n_tasks) and returns when all have
 * finished; their writes are visible to the caller afterwards. Tasks are handed out dynamically
 * (an atomic counter), so uneven tasks balance; make each task worth a few microseconds. */
void sym_threadpool_parallel_for(sym_threadpool *pool, int64_t n_tasks, sym_parallel_fn fn,
                                 void *ctx);

#endif
