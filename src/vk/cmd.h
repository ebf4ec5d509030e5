/* cmd.h — recording and submitting work: one command buffer collects every dispatch, copy and
 * fill until sym_vk_cmd_flush (called by read/sync), so a token or a layer is one batch; with
 * submit_every, finished stretches of a batch are submitted (not waited for) while the rest is
 * recorded, from a ring of command buffers; the first after 4 dispatches, each next one after
 * twice as many, up to submit_every. Waits poll their fence before they block (cmd.c SPIN_US).
 * Dependent commands are separated by pipeline barriers, found by tracking the byte ranges each
 * command reads and writes since the last barrier (independent dispatches, e.g. the Q, K and V
 * projections, run without one). Descriptors are pushed (VK_KHR_push_descriptor) or taken from
 * per-batch pools reset at flush. Host data travels through a staging ring reset at flush (a
 * full ring flushes early). With profiling, each dispatch is timed with timestamps and serialized.
 * Engine thread only.
 */
#ifndef SYM_VK_CMD_H
#define SYM_VK_CMD_H

#include "vk/buffer.h"
#include "vk/pipeline.h"

typedef struct sym_vk_cmd sym_vk_cmd;

typedef struct sym_vk_cmd_options {
    uint64_t staging_bytes; /* upload ring size (0: 64 MiB) */
    int push_descriptors;   /* 1: vkCmdPushDescriptorSetKHR (device must have it enabled) */
    int profiling;          /* 1: timestamps around every dispatch */
    int submit_every;       /* > 0: submit (without waiting) after this many dispatches, so the
                             * GPU starts on a batch while the rest is recorded; 0: one
                             * submission per batch (always so with profiling) */
} sym_vk_cmd_options;

/* One bound storage buffer of a dispatch: the window [offset, offset + range) is what the
 * descriptor covers (offset aligned to minStorageBufferOffsetAlignment); [lo, hi) are the bytes
 * the command actually touches, for hazard tracking. */
typedef struct sym_vk_arg {
    const sym_vk_buffer *buf;
    uint64_t offset, range;
    uint64_t lo, hi;
    int write;
} sym_vk_arg;

typedef struct sym_vk_profile_entry {
    const char *name;    /* kernel name (static) */
    uint64_t n_dispatch; /* timed dispatches */
    double gpu_ms;       /* summed GPU time */
    double bytes;        /* nominal bytes moved (each input read once, output written once) */
    double flops;        /* nominal floating-point operations */
} sym_vk_profile_entry;

typedef struct sym_vk_cmd_stats {
    uint64_t n_submits, n_dispatches, n_barriers, n_early_flushes;
    uint64_t bytes_uploaded, bytes_downloaded;
    uint64_t n_batches; /* flushes that had work */
    double record_ms;   /* host time from a batch's first command to its last submission */
    double wait_ms;     /* host time from the last submission until the batch completed */
} sym_vk_cmd_stats;

sym_status sym_vk_cmd_create(sym_vk_device *d, const sym_vk_cmd_options *o, sym_vk_cmd **out);
/* Submits what is pending, waits, frees buffers whose release was deferred, destroys. */
void sym_vk_cmd_destroy(sym_vk_cmd *c);

/* Records a dispatch of p with args[p->n_bindings] and push (p->push_bytes). bytes/flops feed
 * the profile. SYM_ERR_VULKAN on failure (also after the device was lost). */
sym_status sym_vk_cmd_dispatch(sym_vk_cmd *c, const sym_vk_pipeline *p, const sym_vk_arg *args,
                               const void *push, uint32_t gx, uint32_t gy, uint32_t gz,
                               double bytes, double flops);
/* Records a zero fill of the whole buffer. */
sym_status sym_vk_cmd_zero(sym_vk_cmd *c, sym_vk_buffer *b);
/* Copies host bytes into b at off: staged now (src may be reused on return), copied in order
 * with the recorded work. May flush when the ring is full. */
sym_status sym_vk_cmd_upload(sym_vk_cmd *c, sym_vk_buffer *b, uint64_t off, const void *src,
                             uint64_t bytes);
/* Places small host data (ids, tables) in the staging ring and describes it as a read-only
 * argument for the next dispatches of this batch. bytes must fit the ring. */
sym_status sym_vk_cmd_stage(sym_vk_cmd *c, const void *src, uint64_t bytes, sym_vk_arg *out);
/* Waits for everything recorded so far and copies bytes at off of b to dst. */
sym_status sym_vk_cmd_download(sym_vk_cmd *c, const sym_vk_buffer *b, uint64_t off, void *dst,
                               uint64_t bytes);
/* Submits the recorded work and waits for it. No-op if nothing is recorded. */
sym_status sym_vk_cmd_flush(sym_vk_cmd *c);
/* Submits what is recorded (without waiting) and returns a mark for all work so far (0 if none
 * is pending). *st: the submission's status. */
uint64_t sym_vk_cmd_mark(sym_vk_cmd *c, sym_status *st);
/* 1 once every submission up to mark has finished (waiting for them if wait), 0 while one runs.
 * A failure (device lost) also returns 1 with *st set. */
int sym_vk_cmd_mark_done(sym_vk_cmd *c, uint64_t mark, int wait, sym_status *st);
/* From now on every submission waits for sem (a timeline semaphore) to reach *value (read at
 * submission; 0: no wait): the transfer queue's uploads (vk/xfer.h). sem NULL: no waits. */
void sym_vk_cmd_set_wait(sym_vk_cmd *c, VkSemaphore sem, const _Atomic uint64_t *value);
/* 1 if nothing is recorded and nothing submitted is still to be waited for (after a flush, or
 * before the first command): no command buffer refers to a pipeline. */
int sym_vk_cmd_idle(const sym_vk_cmd *c);
/* Destroys b once the work recorded so far has completed (now if there is none). */
void sym_vk_cmd_release(sym_vk_cmd *c, sym_vk_buffer *b);

/* Turns per-dispatch timestamps on or off (after flushing what is pending).
 * SYM_ERR_UNSUPPORTED if the queue has no timestamps. */
sym_status sym_vk_cmd_set_profiling(sym_vk_cmd *c, int on);
/* How long a wait polls its fence before it blocks (cmd.c SPIN_US); $SYM_VK_SPIN_US, when
 * set, wins. */
void sym_vk_cmd_set_spin(sym_vk_cmd *c, double us);
/* Per-kernel GPU time since the last reset, kernels with dispatches only; returns the count
 * written (at most cap). Empty without profiling. */
int sym_vk_cmd_profile(const sym_vk_cmd *c, sym_vk_profile_entry *out, int cap);
void sym_vk_cmd_profile_reset(sym_vk_cmd *c);
void sym_vk_cmd_get_stats(const sym_vk_cmd *c, sym_vk_cmd_stats *out);

#endif
