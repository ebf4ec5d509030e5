/* Thread pool: every index runs exactly once with a valid thread_idx, over many rounds of random
 * sizes; rounds separated by sleeps (so workers go through the condvar path); nested calls run
 * inline on the calling thread; concurrent submitters are serialized. Run under TSan as well. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "base/threadpool.h"
#include "test_util.h"

#define MAX_TASKS 5000

typedef struct job {
    atomic_int hits[MAX_TASKS];
    int plain[MAX_TASKS]; /* written without atomics: visibility after parallel_for returns */
    int n_threads;
    atomic_int bad_thread;
    sym_threadpool *pool;
    atomic_int nested_bad;
} job;

static void count_task(void *ctx, int64_t i, int thread_idx) {
    job *j = ctx;
    atomic_fetch_add_explicit(&j->hits[i], 1, memory_order_relaxed);
    j->plain[i] = (int)i * 3 + 1;
    if (thread_idx < 0 || thread_idx >= j->n_threads) atomic_store(&j->bad_thread, 1);
}

typedef struct nest_ctx {
    int outer_thread;
    int seen[8];
    int order_ok;
    int next;
} nest_ctx;

static void inner_task(void *ctx, int64_t i, int thread_idx) {
    nest_ctx *n = ctx;
    if (thread_idx != n->outer_thread || i != n->next) n->order_ok = 0;
    n->seen[i]++;
    n->next++;
}

static void nested_task(void *ctx, int64_t i, int thread_idx) {
    job *j = ctx;
    nest_ctx n = {.outer_thread = thread_idx, .order_ok = 1};
    sym_threadpool_parallel_for(j->pool, 8, inner_task, &n);
    int ok = n.order_ok;
    for (int k = 0; k < 8; k++)
        ok &= n.seen[k] == 1;
    if (!ok) atomic_store(&j->nested_bad, 1);
    atomic_fetch_add_explicit(&j->hits[i], 1, memory_order_relaxed);
}

static int check_round(job *j, int64_t n, const char *what) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        int h = atomic_load(&j->hits[i]);
        if (h != 1 || j->plain[i] != (int)i * 3 + 1) {
            if (bad++ < 3) CHECK(0, "%s: task %lld ran %d times", what, (long long)i, h);
        }
    }
    for (int64_t i = n; i < MAX_TASKS; i++)
        if (atomic_load(&j->hits[i]) != 0 && bad++ < 3)
            CHECK(0, "%s: task %lld beyond n ran", what, (long long)i);
    return bad;
}

static void reset(job *j) {
    for (int i = 0; i < MAX_TASKS; i++) {
        atomic_store(&j->hits[i], 0);
        j->plain[i] = 0;
    }
}

typedef struct submitter {
    sym_threadpool *pool;
    int n_threads;
    int rounds;
    int failures;
    uint64_t seed;
} submitter;

static void *submit_main(void *arg) {
    submitter *s = arg;
    job *j = calloc(1, sizeof *j); /* each submitting thread its own job */
    if (!j) {
        s->failures++;
        return NULL;
    }
    j->n_threads = s->n_threads;
    test_rng r = {s->seed};
    for (int k = 0; k < s->rounds; k++) {
        int64_t n = (int64_t)test_rng_below(&r, 300);
        reset(j);
        sym_threadpool_parallel_for(s->pool, n, count_task, j);
        for (int64_t i = 0; i < n; i++)
            if (atomic_load(&j->hits[i]) != 1) s->failures++;
    }
    free(j);
    return NULL;
}

int main(void) {
    test_rng r = test_rng_init("test_threadpool");
    static job j;
    sym_threadpool_destroy(NULL);
    CHECK(sym_threadpool_cpu_count() >= 1, "cpu count");

    const int sizes[] = {1, 2, 3, 8};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int nt = sizes[si];
        sym_threadpool *pool = NULL;
        CHECK_OK(sym_threadpool_create(nt, &pool));
        if (!pool) continue;
        CHECK(sym_threadpool_size(pool) == nt, "size %d", sym_threadpool_size(pool));
        j.n_threads = nt;
        j.pool = pool;
        atomic_store(&j.bad_thread, 0);
        char what[64];
        /* many back-to-back rounds (the spinning path) of awkward sizes */
        for (int round = 0; round < 3000; round++) {
            int64_t n;
            switch (round % 6) {
            case 0:
                n = 0;
                break;
            case 1:
                n = 1;
                break;
            case 2:
                n = nt;
                break;
            case 3:
                n = nt + 1;
                break;
            default:
                n = (int64_t)test_rng_below(&r, round % 50 == 4 ? MAX_TASKS : 97);
                break;
            }
            reset(&j);
            sym_threadpool_parallel_for(pool, n, count_task, &j);
            snprintf(what, sizeof what, "threads %d round %d n %lld", nt, round, (long long)n);
            if (check_round(&j, n, what)) break;
        }
        /* rounds after idle gaps longer than the spin (the sleeping path) */
        for (int round = 0; round < 6; round++) {
            usleep(round % 2 ? 300 : 3000);
            int64_t n = 1 + (int64_t)test_rng_below(&r, 200);
            reset(&j);
            sym_threadpool_parallel_for(pool, n, count_task, &j);
            snprintf(what, sizeof what, "threads %d after sleep, round %d", nt, round);
            check_round(&j, n, what);
        }
        CHECK(!atomic_load(&j.bad_thread), "thread_idx out of range with %d threads", nt);
        /* nested calls run inline on the calling thread */
        atomic_store(&j.nested_bad, 0);
        reset(&j);
        sym_threadpool_parallel_for(pool, 37, nested_task, &j);
        for (int i = 0; i < 37; i++)
            CHECK(atomic_load(&j.hits[i]) == 1, "nested outer task %d", i);
        CHECK(!atomic_load(&j.nested_bad), "nested call was not inline/in order (%d threads)", nt);
        /* concurrent submitters are serialized */
        submitter subs[3];
        pthread_t th[3];
        for (int k = 0; k < 3; k++) {
            subs[k] = (submitter){pool, nt, 300, 0, test_rng_u64(&r)};
            pthread_create(&th[k], NULL, submit_main, &subs[k]);
        }
        for (int k = 0; k < 3; k++) {
            pthread_join(th[k], NULL);
            CHECK(subs[k].failures == 0, "submitter %d: %d wrong counts", k, subs[k].failures);
        }
        sym_threadpool_destroy(pool);
    }
    /* a pool created and destroyed right away, and one that sleeps before destroy */
    for (int k = 0; k < 2; k++) {
        sym_threadpool *pool = NULL;
        CHECK_OK(sym_threadpool_create(3, &pool));
        if (k) usleep(2000);
        sym_threadpool_destroy(pool);
    }
    return test_finish("test_threadpool");
}
