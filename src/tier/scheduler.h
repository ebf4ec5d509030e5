/* scheduler.h — the pack scheduler: background I/O workers that fill RAM from disk and an upload
 * step that copies RAM to the device, driven by priority queues.
 *
 * Jobs are named by (pack, kind); at most one job per (pack, kind) is queued or running.
 *   READ    sym_pack_io_read of the pack into job.host (its block in the RAM arena). Run by
 *           n_io_threads workers, each with its own staging buffer (given by the owner: the
 *           staging memory is part of the RAM budget).
 *   UPLOAD  the pack's pieces from job.host (its RAM copy) to job.device (its block in device
 *           memory), one copy call per piece with the piece's own type (a backend may look at
 *           what it is given: Vulkan's bf16 range scan). The copy is the seam for the GPU
 *           integration: by default the backend's write(); a Vulkan transfer queue later.
 *           Run by one upload worker when upload_thread is set (only valid when the copy may
 *           run concurrently with the engine's backend calls: host-memory backends, a transfer
 *           queue with its own submission lock), else on the engine thread inside
 *           sym_scheduler_run_uploads.
 * Each queue is a binary heap on job.key: the absolute schedule index of the use the job serves
 * (0: a blocking get, served before any prefetch), FIFO among equal keys.
 *
 * Completion: done(user, job, status, detail, ...) is called once per job that started, on the
 * thread that ran it, with no scheduler lock held (it may call submit/cancel/reprioritize). A job
 * removed by cancel, or still queued at destroy, never runs and gets no callback.
 *
 * Threads: submit, cancel, reprioritize and queued may be called from any thread, including from
 * done. run_uploads only from the thread that owns the backend (the engine's), never from done.
 * destroy from the owner once no other thread calls in; it waits for running jobs (their
 * callbacks run) and joins the workers.
 */
#ifndef SYM_TIER_SCHEDULER_H
#define SYM_TIER_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "tier/pack_io.h"
#include "tier/tier.h"

typedef enum sym_sched_kind {
    SYM_SCHED_READ = 0,
    SYM_SCHED_UPLOAD,
    SYM_SCHED_KIND_COUNT
} sym_sched_kind;

typedef struct sym_sched_job {
    uint32_t pack_id;
    sym_sched_kind kind;
    uint64_t key;          /* smaller first: absolute schedule index of the use it serves */
    void *host;            /* READ: destination; UPLOAD: source (the pack's buffer in RAM) */
    sym_tier_place device; /* UPLOAD: where the pack's buffer starts in device memory */
} sym_sched_job;

/* Copies bytes from host src into dst (a piece's view of device memory). The default calls the
 * backend's write(). */
typedef sym_status (*sym_upload_fn)(void *user, sym_backend *b, sym_tensor *dst, const void *src,
                                    size_t bytes);

/* status SYM_OK or the job's failure with detail (one line naming pack and file); counts: what
 * the reads did (READ: bytes read, bytes decompressed and the time it took; zeros for UPLOAD);
 * ns: time the job ran. */
typedef void (*sym_sched_done_fn)(void *user, const sym_sched_job *job, sym_status status,
                                  const char *detail, const sym_pack_io_counts *counts,
                                  uint64_t ns);

typedef struct sym_scheduler_options {
    const sym_pack_plan *plan; /* borrowed; outlives the scheduler */
    const sym_pack_io *io;     /* borrowed; outlives the scheduler */
    int n_io_threads;          /* >= 1 */
    void *const *staging;      /* n_io_threads buffers (SYM_PACK_IO_ALIGN-aligned), or NULL when
                                  no file is read with O_DIRECT and no store is read; borrowed.
                                  I/O thread i reads through staging[i] and decoder slot i */
    size_t staging_bytes;      /* each; a multiple of SYM_PACK_IO_ALIGN */
    sym_backend *backend;      /* the device (NULL: no UPLOAD jobs) */
    sym_upload_fn upload;      /* NULL: backend->ops->write */
    void *upload_user;
    bool upload_thread; /* run UPLOAD jobs on a worker (see above) */
    sym_sched_done_fn done;
    void *done_user;
} sym_scheduler_options;

typedef struct sym_scheduler sym_scheduler;

/* Starts the workers. SYM_ERR_ARG, SYM_ERR_OOM, SYM_ERR_INTERNAL (a thread could not start; the
 * ones started are joined). Caller owns *out. */
sym_status sym_scheduler_create(const sym_scheduler_options *o, sym_scheduler **out);
void sym_scheduler_destroy(sym_scheduler *s);

/* Queues a job. SYM_ERR_ARG if a job of that (pack, kind) is already queued or running, for an
 * UPLOAD without a backend, or after destroy began. Never allocates. */
sym_status sym_scheduler_submit(sym_scheduler *s, const sym_sched_job *job);
/* Removes a queued job: true if it was queued (it will never run); false if it is running (its
 * callback will come) or absent. */
bool sym_scheduler_cancel(sym_scheduler *s, uint32_t pack_id, sym_sched_kind kind);
/* Lowers a queued job's key to key (no effect if it is not queued or already earlier). */
void sym_scheduler_reprioritize(sym_scheduler *s, uint32_t pack_id, sym_sched_kind kind,
                                uint64_t key);
/* Whether that job is queued (not yet running). */
bool sym_scheduler_queued(sym_scheduler *s, uint32_t pack_id, sym_sched_kind kind);

/* Engine-thread uploads (upload_thread false): runs queued UPLOAD jobs on the calling thread,
 * earliest key first — only pack_id's if pack_id != UINT32_MAX, else up to max_jobs of them.
 * Returns how many ran. Call without holding locks the done callback takes. */
int sym_scheduler_run_uploads(sym_scheduler *s, uint32_t pack_id, int max_jobs);

/* Jobs queued and running now, per kind (for tests and statistics). */
void sym_scheduler_depth(sym_scheduler *s, sym_sched_kind kind, uint32_t *queued,
                         uint32_t *running);

#endif
