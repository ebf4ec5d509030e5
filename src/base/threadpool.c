/* threadpool.c — persistent workers, one job at a time.
 *
 * Protocol. The submitter writes the job (fn, ctx, n_tasks), resets the task counter, sets
 * n_pending to the number of workers and bumps `generation` (seq_cst, which also publishes the
 * job). Each worker sees every generation exactly once: it claims tasks from the shared counter
 * until they run out, then decrements n_pending. The submitter claims tasks too, then waits for
 * n_pending == 0, after which no worker touches the job any more and the next one may be written.
 *
 * Sleeping without lost wake-ups (Dekker-style, all seq_cst): a worker that has spun long enough
 * increments n_sleeping under the mutex and re-reads generation before waiting; the submitter
 * bumps generation and then reads n_sleeping, broadcasting under the mutex if it is non-zero.
 * Either the worker sees the new generation or the submitter sees the sleeper. The submitter's
 * own wait for n_pending uses the same pattern with caller_sleeping and the `done` condvar.
 */
#include "base/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"

/* How long an idle thread spins before sleeping. Decode issues ops every few tens of
 * microseconds, so workers stay awake through a token; an idle engine sleeps. */
#define SPIN_NS 200000u

typedef struct worker {
    sym_threadpool *pool;
    pthread_t thread;
    int idx;
} worker;

struct sym_threadpool {
    int n_threads;
    int n_started; /* workers actually running (for cleanup after a failed create) */
    worker *workers;
    pthread_mutex_t submit; /* serializes submitting threads */
    pthread_mutex_t mutex;  /* guards the sleep/wake handshakes */
    pthread_cond_t wake;    /* workers wait here for a new generation */
    pthread_cond_t done;    /* the submitter waits here for n_pending == 0 */

    /* the job: plain fields, published by the generation bump */
    sym_parallel_fn fn;
    void *ctx;
    int64_t n_tasks;

    /* hot atomics, each on its own cache line (padding rather than _Alignas: the struct comes
     * from sym_malloc, which does not promise 64-byte alignment) */
    char pad0[64];
    atomic_uint_fast64_t generation;
    char pad1[64];
    atomic_int_fast64_t next_task;
    char pad2[64];
    atomic_int n_pending;
    char pad3[64];
    atomic_int n_sleeping;
    atomic_int caller_sleeping;
    atomic_int stop;
    char pad4[64];
};

/* the pool whose task this thread is running (nesting detection) and the thread's index in it */
static _Thread_local sym_threadpool *tls_pool;
static _Thread_local int tls_thread_idx;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int sym_threadpool_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int sym_threadpool_size(const sym_threadpool *pool) { return pool->n_threads; }

/* Called every 128 pauses (a few microseconds) while spinning: yields the CPU, so that when
 * there are more runnable threads than cores (our workers included) the spinner does not hold up
 * the thread it waits for, and reports whether the spin has lasted SPIN_NS. */
static int spin_expired(uint64_t *t0) {
    uint64_t t = now_ns();
    if (!*t0) {
        *t0 = t;
        return 0;
    }
    sched_yield();
    return t - *t0 > SPIN_NS;
}

static void run_tasks(sym_threadpool *p, int thread_idx) {
    sym_parallel_fn fn = p->fn;
    void *ctx = p->ctx;
    int64_t n = p->n_tasks;
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&p->next_task, 1, memory_order_relaxed);
        if (i >= n) break;
        fn(ctx, i, thread_idx);
    }
}

/* Spins, then sleeps, until generation differs from seen; returns the new generation. */
static uint64_t wait_generation(sym_threadpool *p, uint64_t seen) {
    uint64_t g, t0 = 0;
    for (unsigned i = 1;; i++) {
        g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
        if ((i & 127) == 0 && spin_expired(&t0)) break;
    }
    pthread_mutex_lock(&p->mutex);
    atomic_fetch_add(&p->n_sleeping, 1);
    while ((g = atomic_load(&p->generation)) == seen)
        pthread_cond_wait(&p->wake, &p->mutex);
    atomic_fetch_sub(&p->n_sleeping, 1);
    pthread_mutex_unlock(&p->mutex);
    return g;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    sym_threadpool *p = w->pool;
    tls_pool = p;
    tls_thread_idx = w->idx;
    uint64_t seen = 0;
    for (;;) {
        seen = wait_generation(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        run_tasks(p, w->idx);
        if (atomic_fetch_sub(&p->n_pending, 1) == 1 && atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mutex);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mutex);
        }
    }
    return NULL;
}

/* Publishes a new generation and wakes sleeping workers. */
static void publish(sym_threadpool *p) {
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
}

static void wait_workers(sym_threadpool *p) {
    uint64_t t0 = 0;
    for (unsigned i = 1; atomic_load_explicit(&p->n_pending, memory_order_acquire) != 0; i++) {
        cpu_relax();
        if ((i & 127) == 0 && spin_expired(&t0)) break;
    }
    if (atomic_load(&p->n_pending) == 0) return;
    pthread_mutex_lock(&p->mutex);
    atomic_store(&p->caller_sleeping, 1);
    while (atomic_load(&p->n_pending) != 0)
        pthread_cond_wait(&p->done, &p->mutex);
    atomic_store(&p->caller_sleeping, 0);
    pthread_mutex_unlock(&p->mutex);
}

void sym_threadpool_parallel_for(sym_threadpool *pool, int64_t n_tasks, sym_parallel_fn fn,
                                 void *ctx) {
    if (n_tasks <= 0) return;
    if (tls_pool == pool) { /* nested: inline, on this thread, in order */
        for (int64_t i = 0; i < n_tasks; i++)
            fn(ctx, i, tls_thread_idx);
        return;
    }
    pthread_mutex_lock(&pool->submit);
    sym_threadpool *outer_pool = tls_pool;
    int outer_idx = tls_thread_idx;
    tls_pool = pool;
    tls_thread_idx = 0;
    if (n_tasks == 1 || pool->n_threads == 1) {
        for (int64_t i = 0; i < n_tasks; i++)
            fn(ctx, i, 0);
    } else {
        pool->fn = fn;
        pool->ctx = ctx;
        pool->n_tasks = n_tasks;
        atomic_store_explicit(&pool->next_task, 0, memory_order_relaxed);
        atomic_store_explicit(&pool->n_pending, pool->n_threads - 1, memory_order_relaxed);
        publish(pool);
        run_tasks(pool, 0);
        wait_workers(pool);
    }
    tls_pool = outer_pool;
    tls_thread_idx = outer_idx;
    pthread_mutex_unlock(&pool->submit);
}

static void stop_workers(sym_threadpool *p) {
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    publish(p);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->workers[i].thread, NULL);
}

sym_status sym_threadpool_create(int n_threads, sym_threadpool **out) {
    if (n_threads <= 0) n_threads = sym_threadpool_cpu_count();
    SYM_CHECK(n_threads <= 4096, SYM_ERR_ARG, "thread pool: %d threads is too many", n_threads);
    sym_threadpool *p = sym_calloc(1, sizeof *p);
    if (!p) return SYM_FAIL(SYM_ERR_OOM, "thread pool: out of memory");
    p->n_threads = n_threads;
    p->workers = sym_calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) {
        sym_free(p);
        return SYM_FAIL(SYM_ERR_OOM, "thread pool: out of memory");
    }
    pthread_mutex_init(&p->submit, NULL);
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->next_task, 0);
    atomic_init(&p->n_pending, 0);
    atomic_init(&p->n_sleeping, 0);
    atomic_init(&p->caller_sleeping, 0);
    atomic_init(&p->stop, 0);
    for (int i = 0; i < n_threads - 1; i++) {
        worker *w = &p->workers[i];
        w->pool = p;
        w->idx = i + 1;
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            stop_workers(p);
            sym_threadpool_destroy(p);
            return SYM_FAIL(SYM_ERR_INTERNAL, "thread pool: cannot start thread %d of %d: %s",
                            i + 1, n_threads, strerror(rc));
        }
        p->n_started++;
    }
    *out = p;
    return SYM_OK;
}

void sym_threadpool_destroy(sym_threadpool *pool) {
    if (!pool) return;
    if (!atomic_load(&pool->stop)) stop_workers(pool);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mutex);
    pthread_mutex_destroy(&pool->submit);
    sym_free(pool->workers);
    sym_free(pool);
}
