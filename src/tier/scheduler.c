/* scheduler.c — two indexed binary heaps (READ, UPLOAD) under one mutex, I/O workers with a
 * staging buffer each, an optional upload worker, and engine-thread uploads. */
#include "tier/scheduler.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"

typedef enum { SLOT_IDLE = 0, SLOT_QUEUED, SLOT_RUNNING } slot_state;

/* One (pack, kind): the job while queued or running. */
typedef struct slot {
    sym_sched_job job;
    uint64_t seq;      /* submission order: FIFO among equal keys */
    uint32_t heap_pos; /* index in the heap while QUEUED */
    uint8_t state;
} slot;

typedef struct heap {
    uint32_t *ids; /* pack ids ordered on (key, seq) of their slot */
    uint32_t n;
} heap;

typedef struct worker {
    sym_scheduler *s;
    sym_sched_kind kind;
    int idx; /* READ workers: which staging buffer */
} worker;

struct sym_scheduler {
    sym_scheduler_options o;
    uint32_t n_packs;
    pthread_mutex_t mu;
    pthread_cond_t work[SYM_SCHED_KIND_COUNT];
    slot *slots[SYM_SCHED_KIND_COUNT]; /* n_packs each */
    heap heaps[SYM_SCHED_KIND_COUNT];
    uint32_t running[SYM_SCHED_KIND_COUNT];
    uint64_t seq;
    bool stop;
    pthread_t *threads;
    worker *workers;
    int n_threads; /* started */
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* ---- heap ------------------------------------------------------------------------------------ */

static bool before(const slot *sl, uint32_t a, uint32_t b) {
    const slot *x = &sl[a], *y = &sl[b];
    return x->job.key < y->job.key || (x->job.key == y->job.key && x->seq < y->seq);
}

static void heap_set(heap *h, slot *sl, uint32_t pos, uint32_t id) {
    h->ids[pos] = id;
    sl[id].heap_pos = pos;
}

static void sift_up(heap *h, slot *sl, uint32_t pos) {
    uint32_t id = h->ids[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!before(sl, id, h->ids[parent])) break;
        heap_set(h, sl, pos, h->ids[parent]);
        pos = parent;
    }
    heap_set(h, sl, pos, id);
}

static void sift_down(heap *h, slot *sl, uint32_t pos) {
    uint32_t id = h->ids[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(sl, h->ids[c + 1], h->ids[c])) c++;
        if (!before(sl, h->ids[c], id)) break;
        heap_set(h, sl, pos, h->ids[c]);
        pos = c;
    }
    heap_set(h, sl, pos, id);
}

static void heap_push(heap *h, slot *sl, uint32_t id) {
    h->n++;
    heap_set(h, sl, h->n - 1, id);
    sift_up(h, sl, h->n - 1);
}

static void heap_remove(heap *h, slot *sl, uint32_t pos) {
    uint32_t last = h->ids[--h->n];
    if (pos == h->n) return;
    heap_set(h, sl, pos, last);
    sift_up(h, sl, pos);
    sift_down(h, sl, sl[last].heap_pos);
}

/* ---- running a job -----------------------------------------------------------------------------
 */

static sym_status default_upload(void *user, sym_backend *b, sym_tensor *dst, const void *src,
                                 size_t bytes) {
    (void)user;
    return b->ops->write(b, dst, src, bytes);
}

static sym_status run_upload(sym_scheduler *s, const sym_sched_job *job) {
    const sym_pack_plan *p = s->o.plan;
    const sym_pack *k = &p->packs[job->pack_id];
    const sym_pack_piece *pcs = sym_pack_pieces(p, k);
    sym_upload_fn up = s->o.upload ? s->o.upload : default_upload;
    if (s->o.upload && k->buffer_bytes % 2 == 0) {
        /* the pack's buffer has the same layout in both tiers: one copy (one round trip) */
        sym_tensor dst = {.type = SYM_DT_F16, .n_cols = (int64_t)(k->buffer_bytes / 2),
                          .n_rows = 1, .data = job->device.data, .buf = job->device.buf,
                          .offset = job->device.offset};
        sym_status st = up(s->o.upload_user, s->o.backend, &dst, job->host, (size_t)k->buffer_bytes);
        if (st != SYM_OK) sym_error_prefix("tier: pack %u: uploading", job->pack_id);
        return st;
    }
    for (uint32_t i = 0; i < k->n_pieces; i++) {
        sym_tensor dst;
        SYM_TRY(sym_tier_piece_view(p, job->pack_id, &job->device, i, &dst));
        sym_status st = up(s->o.upload_user, s->o.backend, &dst,
                           (const char *)job->host + pcs[i].pack_offset, (size_t)pcs[i].n_bytes);
        if (st != SYM_OK) {
            sym_error_prefix("tier: pack %u: uploading '%s' rows %lld..%lld", job->pack_id,
                             p->weights[pcs[i].weight_idx].name, (long long)pcs[i].row0,
                             (long long)(pcs[i].row0 + pcs[i].n_rows));
            return st;
        }
    }
    return SYM_OK;
}

/* Runs the job taken from the queue (state RUNNING), then marks the slot idle and reports. */
static void run_and_report(sym_scheduler *s, sym_sched_job job, int staging_idx) {
    sym_pack_io_counts counts = {0, 0, 0};
    uint64_t t0 = now_ns();
    sym_status st;
    sym_clear_error();
    if (job.kind == SYM_SCHED_READ)
        st = sym_pack_io_read(s->o.io, staging_idx, job.pack_id, job.host,
                              s->o.staging ? s->o.staging[staging_idx] : NULL, s->o.staging_bytes,
                              &counts);
    else
        st = run_upload(s, &job);
    uint64_t ns = now_ns() - t0;
    pthread_mutex_lock(&s->mu);
    s->slots[job.kind][job.pack_id].state = SLOT_IDLE;
    s->running[job.kind]--;
    pthread_mutex_unlock(&s->mu);
    s->o.done(s->o.done_user, &job, st, st == SYM_OK ? "" : sym_last_error(), &counts, ns);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    sym_scheduler *s = w->s;
    heap *h = &s->heaps[w->kind];
    slot *sl = s->slots[w->kind];
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && h->n == 0)
            pthread_cond_wait(&s->work[w->kind], &s->mu);
        if (s->stop) break;
        uint32_t id = h->ids[0];
        heap_remove(h, sl, 0);
        sl[id].state = SLOT_RUNNING;
        s->running[w->kind]++;
        sym_sched_job job = sl[id].job;
        pthread_mutex_unlock(&s->mu);
        run_and_report(s, job, w->idx);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void stop_and_join(sym_scheduler *s) {
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    for (int k = 0; k < SYM_SCHED_KIND_COUNT; k++)
        pthread_cond_broadcast(&s->work[k]);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    s->n_threads = 0;
}

sym_status sym_scheduler_create(const sym_scheduler_options *o, sym_scheduler **out) {
    *out = NULL;
    SYM_CHECK(o && o->plan && o->io && o->done && o->n_io_threads >= 1 && o->n_io_threads <= 64,
              SYM_ERR_ARG, "scheduler: bad options (1..64 I/O threads, a plan, a reader, done)");
    SYM_CHECK(!o->upload_thread || o->backend, SYM_ERR_ARG,
              "scheduler: an upload thread needs a backend");
    sym_scheduler *s = sym_calloc(1, sizeof *s);
    if (!s) return SYM_FAIL(SYM_ERR_OOM, "scheduler: out of memory");
    s->o = *o;
    s->n_packs = o->plan->n_packs;
    pthread_mutex_init(&s->mu, NULL);
    for (int k = 0; k < SYM_SCHED_KIND_COUNT; k++)
        pthread_cond_init(&s->work[k], NULL);
    int n_threads = o->n_io_threads + (o->upload_thread ? 1 : 0);
    size_t n = s->n_packs ? s->n_packs : 1;
    for (int k = 0; k < SYM_SCHED_KIND_COUNT; k++) {
        s->slots[k] = sym_calloc(n, sizeof *s->slots[k]);
        s->heaps[k].ids = sym_calloc(n, sizeof *s->heaps[k].ids);
    }
    s->threads = sym_calloc((size_t)n_threads, sizeof *s->threads);
    s->workers = sym_calloc((size_t)n_threads, sizeof *s->workers);
    if (!s->slots[0] || !s->slots[1] || !s->heaps[0].ids || !s->heaps[1].ids || !s->threads ||
        !s->workers) {
        sym_scheduler_destroy(s);
        return SYM_FAIL(SYM_ERR_OOM, "scheduler: out of memory");
    }
    for (int i = 0; i < n_threads; i++) {
        worker *w = &s->workers[i];
        *w = (worker){.s = s,
                      .kind = i < o->n_io_threads ? SYM_SCHED_READ : SYM_SCHED_UPLOAD,
                      .idx = i < o->n_io_threads ? i : 0};
        if (pthread_create(&s->threads[i], NULL, worker_main, w) != 0) {
            sym_scheduler_destroy(s);
            return SYM_FAIL(SYM_ERR_INTERNAL, "scheduler: cannot start worker thread %d", i);
        }
        s->n_threads = i + 1;
    }
    *out = s;
    return SYM_OK;
}

void sym_scheduler_destroy(sym_scheduler *s) {
    if (!s) return;
    stop_and_join(s);
    for (int k = 0; k < SYM_SCHED_KIND_COUNT; k++) {
        sym_free(s->slots[k]);
        sym_free(s->heaps[k].ids);
        pthread_cond_destroy(&s->work[k]);
    }
    pthread_mutex_destroy(&s->mu);
    sym_free(s->threads);
    sym_free(s->workers);
    sym_free(s);
}

/* ---- queue operations ------------------------------------------------------------------------ */

sym_status sym_scheduler_submit(sym_scheduler *s, const sym_sched_job *job) {
    SYM_CHECK(job->pack_id < s->n_packs && (unsigned)job->kind < SYM_SCHED_KIND_COUNT, SYM_ERR_ARG,
              "scheduler: bad job (pack %u, kind %d)", job->pack_id, (int)job->kind);
    SYM_CHECK(job->kind == SYM_SCHED_READ || s->o.backend, SYM_ERR_ARG,
              "scheduler: upload without a backend");
    pthread_mutex_lock(&s->mu);
    slot *sl = &s->slots[job->kind][job->pack_id];
    if (s->stop || sl->state != SLOT_IDLE) {
        bool stopping = s->stop;
        pthread_mutex_unlock(&s->mu);
        return SYM_FAIL(SYM_ERR_ARG, "scheduler: pack %u: %s", job->pack_id,
                        stopping ? "shutting down" : "a job of that kind is already queued");
    }
    sl->job = *job;
    sl->seq = s->seq++;
    sl->state = SLOT_QUEUED;
    heap_push(&s->heaps[job->kind], s->slots[job->kind], job->pack_id);
    pthread_cond_signal(&s->work[job->kind]);
    pthread_mutex_unlock(&s->mu);
    return SYM_OK;
}

bool sym_scheduler_cancel(sym_scheduler *s, uint32_t pack_id, sym_sched_kind kind) {
    if (pack_id >= s->n_packs || (unsigned)kind >= SYM_SCHED_KIND_COUNT) return false;
    pthread_mutex_lock(&s->mu);
    slot *sl = &s->slots[kind][pack_id];
    bool queued = sl->state == SLOT_QUEUED;
    if (queued) {
        heap_remove(&s->heaps[kind], s->slots[kind], sl->heap_pos);
        sl->state = SLOT_IDLE;
    }
    pthread_mutex_unlock(&s->mu);
    return queued;
}

void sym_scheduler_reprioritize(sym_scheduler *s, uint32_t pack_id, sym_sched_kind kind,
                                uint64_t key) {
    if (pack_id >= s->n_packs || (unsigned)kind >= SYM_SCHED_KIND_COUNT) return;
    pthread_mutex_lock(&s->mu);
    slot *sl = &s->slots[kind][pack_id];
    if (sl->state == SLOT_QUEUED && key < sl->job.key) {
        sl->job.key = key;
        sift_up(&s->heaps[kind], s->slots[kind], sl->heap_pos);
    }
    pthread_mutex_unlock(&s->mu);
}

bool sym_scheduler_queued(sym_scheduler *s, uint32_t pack_id, sym_sched_kind kind) {
    if (pack_id >= s->n_packs || (unsigned)kind >= SYM_SCHED_KIND_COUNT) return false;
    pthread_mutex_lock(&s->mu);
    bool q = s->slots[kind][pack_id].state == SLOT_QUEUED;
    pthread_mutex_unlock(&s->mu);
    return q;
}

int sym_scheduler_run_uploads(sym_scheduler *s, uint32_t pack_id, int max_jobs) {
    int ran = 0;
    heap *h = &s->heaps[SYM_SCHED_UPLOAD];
    slot *sl = s->slots[SYM_SCHED_UPLOAD];
    while (pack_id != UINT32_MAX ? ran == 0 : ran < max_jobs) {
        pthread_mutex_lock(&s->mu);
        uint32_t id = pack_id;
        if (id == UINT32_MAX && h->n > 0) id = h->ids[0];
        if (id >= s->n_packs || sl[id].state != SLOT_QUEUED) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        heap_remove(h, sl, sl[id].heap_pos);
        sl[id].state = SLOT_RUNNING;
        s->running[SYM_SCHED_UPLOAD]++;
        sym_sched_job job = sl[id].job;
        pthread_mutex_unlock(&s->mu);
        run_and_report(s, job, 0);
        ran++;
    }
    return ran;
}

void sym_scheduler_depth(sym_scheduler *s, sym_sched_kind kind, uint32_t *queued,
                         uint32_t *running) {
    pthread_mutex_lock(&s->mu);
    *queued = s->heaps[kind].n;
    *running = s->running[kind];
    pthread_mutex_unlock(&s->mu);
}
