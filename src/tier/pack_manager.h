/* pack_manager.h — the pack manager: where each pack of a plan lives (DEVICE, RAM, DISK), moving
 * packs between tiers under hard memory budgets.
 *
 * Memory, all taken once at create and never exceeded (high-water marks are kept and tested):
 *   DEVICE  device_budget_bytes in backend allocations of at most device_max_alloc_bytes each
 *           (4 GiB is the usual Vulkan limit on NVIDIA; on the CPU backend they are host memory),
 *           each sub-allocated with a sym_fractal (buddy) allocator: a pack takes one
 *           power-of-two block of its buffer_bytes.
 *   RAM     ram_budget_bytes = one host arena (sub-allocated with a sym_fractal) plus one staging
 *           buffer per I/O thread when a file is read with O_DIRECT. The arena comes from an
 *           injectable allocator so the Vulkan side can supply pinned host-visible memory later.
 *           Reads bypass the page cache (O_DIRECT, or pread + DONTNEED; see pack_io.h), so the
 *           RAM budget is what the process really uses.
 * A budget below the minimum working set fails create with SYM_ERR_BUDGET giving the bytes and GB
 * needed: DEVICE the largest pack's block; RAM the largest pack's block plus the staging.
 *
 * States per pack and tier: ABSENT -> LOADING (a block is reserved; a READ or UPLOAD job is queued
 * or running) -> READY -> ABSENT (evicted or unloaded). A DEVICE load reads the pack into RAM
 * first if it is not there (RAM is the staging for uploads) and keeps that RAM copy afterwards,
 * as a cache, until RAM needs the room. Pins: a handle from get() pins the pack in that tier; an
 * upload pins the RAM copy it reads. A pinned or moving pack is never evicted.
 *
 * Eviction: when a tier needs room, the policy (evict.h; Belady's rule by default) picks among
 * the READY unpinned packs of that tier. The schedule cursor it measures from is moved by get():
 * to the first use of the pack at or after the cursor, so walking plan->schedule in order keeps
 * the cursor exact (also with tied embeddings, whose packs are used twice per token).
 *
 * Never waiting forever: a get that finds no room first evicts, then cancels queued prefetches,
 * then waits only while some move in that tier is in flight (it will finish and free or unpin its
 * block). When everything left is pinned by handles it fails with SYM_ERR_BUDGET naming how much
 * is pinned. A prefetch never waits: without room the policy allows it returns SYM_ERR_BUDGET and
 * moves nothing.
 *
 * Threads: every function may be called from any thread (one mutex inside), except that uploads
 * call the backend, whose ops belong to one thread. With upload_thread false (the default) the
 * thread that created the manager (the engine's, owning the backend) runs the uploads: inside
 * its get() calls when they wait, and in poll(); get(p, DEVICE) from another thread fails with
 * SYM_ERR_ARG, prefetch(p, DEVICE) from any thread only queues the upload, and another thread's
 * get that waits for room held by a queued upload waits for the owner's next get or poll. With
 * upload_thread true (a backend whose write may run concurrently with its other calls: host
 * memory, a Vulkan transfer queue with its own lock) a worker uploads and any thread may get.
 * destroy must not race with other calls.
 *
 * Ownership: the plan, the backend and the file paths are borrowed and must outlive the manager
 * (paths are copied). Handles borrow the tier's memory until released.
 */
#ifndef SYM_TIER_PACK_MANAGER_H
#define SYM_TIER_PACK_MANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tier/evict.h"
#include "tier/pack_io.h"
#include "tier/scheduler.h"
#include "tier/tier.h"

/* The arena and staging allocator: bytes of host memory aligned to SYM_PACK_IO_ALIGN, or NULL.
 * Default: anonymous mmap with MAP_POPULATE, so the whole budget is committed at create and no
 * page fault lands on the streaming path (first-touch faults cost about 40% of the streaming
 * rate in bench_tier_io). The Vulkan side will pass pinned host-visible memory here. */
typedef struct sym_tier_host_mem {
    void *(*alloc)(void *user, size_t bytes);
    void (*free)(void *user, void *ptr, size_t bytes);
    void *user;
} sym_tier_host_mem;

typedef struct sym_pack_manager_options {
    uint64_t device_budget_bytes;    /* 0: no DEVICE tier (device may then be NULL) */
    uint64_t device_max_alloc_bytes; /* largest single backend allocation; 0: no limit */
    uint64_t ram_budget_bytes;       /* arena + staging; > 0 */
    int n_io_threads;                /* default 2 */
    size_t staging_bytes;            /* per I/O thread, multiple of 4 KiB; default 4 MiB */
    sym_io_mode io_mode;             /* default AUTO: O_DIRECT where the filesystem allows */
    bool upload_thread;              /* see Threads above; default false */
    sym_evict_policy policy;         /* default (fn NULL): Belady */
    sym_tier_host_mem host_mem;      /* default (alloc NULL): mmap */
    sym_upload_fn upload;            /* default NULL: backend write (the transfer-queue seam) */
    void *upload_user;
    sym_pread_fn pread_fn; /* default NULL: pread (fault injection in tests) */
    void *pread_user;
    /* A pack store to stream from (pack/store.h; borrowed, outlives the manager), or NULL: the
     * plan's ranges are read from the model files. With a store the plan must be
     * sym_store_plan(store) and the paths are not used: the DISK tier is the store's file, each
     * pack's stored bytes are read (O_DIRECT where allowed) into an I/O thread's staging buffer,
     * checked and decompressed into the pack's RAM block by that thread. Staging is then the
     * largest stored pack rounded up to 4 KiB per I/O thread (staging_bytes is ignored), plus
     * the decoders' scratch; both count in ram_budget_bytes. */
    const sym_store *store;
} sym_pack_manager_options;

/* Zeroes o and sets the defaults above (budgets stay 0: the caller must set ram_budget_bytes). */
void sym_pack_manager_options_init(sym_pack_manager_options *o);

typedef struct sym_pack_manager sym_pack_manager;

/* A pinned pack: valid from a successful get until release. place says where its buffer starts
 * in the tier's memory; sym_pack_manager_view makes tensors of its pieces. */
typedef struct sym_pack_handle {
    uint32_t pack_id;
    sym_tier tier; /* DEVICE or RAM */
    sym_tier_place place;
} sym_pack_handle;

/* Allocates the budgets (backend allocations, arena, staging), opens the files (paths[file_idx],
 * as in plan->ranges; or the store's file, o->store) and starts the workers. SYM_ERR_BUDGET if a
 * budget cannot hold the minimum working set (the detail gives bytes and GB needed); SYM_ERR_ARG
 * for bad options; SYM_ERR_OOM (or the backend's status) when an allocation fails; file errors
 * as pack_io.h. On failure nothing is left allocated. Caller owns *out. */
sym_status sym_pack_manager_create(const sym_pack_plan *plan, const char *const *paths, int n_files,
                                   sym_backend *device, const sym_pack_manager_options *o,
                                   sym_pack_manager **out);
/* Stops the workers (running reads finish, queued ones are dropped), then frees everything.
 * Outstanding handles become invalid. NULL is fine. */
void sym_pack_manager_destroy(sym_pack_manager *pm);

/* Brings pack_id to tier (DEVICE or RAM), waiting for it, pins it there and fills *h. Moves the
 * schedule cursor to this use. Errors: SYM_ERR_ARG (bad id or tier, no DEVICE tier),
 * SYM_ERR_BUDGET (no room: everything else in the tier is pinned), SYM_ERR_IO naming the pack
 * and file (the read failed), SYM_ERR_CHECKSUM / SYM_ERR_FORMAT naming the pack (from a store:
 * a damaged pack), or the upload's error. */
sym_status sym_pack_manager_get(sym_pack_manager *pm, uint32_t pack_id, sym_tier tier,
                                sym_pack_handle *h);
/* Unpins; *h is cleared. SYM_ERR_ARG if h does not hold a pin. */
sym_status sym_pack_manager_release(sym_pack_manager *pm, sym_pack_handle *h);
/* A tensor view of piece piece_idx (0-based within the pack) of a pinned pack. */
sym_status sym_pack_manager_view(const sym_pack_manager *pm, const sym_pack_handle *h,
                                 uint32_t piece_idx, sym_tensor *out);

/* Starts moving pack_id to tier in the background, ordered by how soon the schedule needs it.
 * SYM_OK if it is there, on its way, or now queued; SYM_ERR_BUDGET (nothing done) if the tier
 * has no room that the policy lets it take; SYM_ERR_ARG for bad arguments. Never waits. */
sym_status sym_pack_manager_prefetch(sym_pack_manager *pm, uint32_t pack_id, sym_tier tier);
/* Prefetches the packs of the next n_uses schedule entries after the cursor, nearest first,
 * stopping at the first that gets no room. Returns how many are there or on their way. */
uint32_t sym_pack_manager_prefetch_ahead(sym_pack_manager *pm, sym_tier tier, uint32_t n_uses);

/* Evicts unpinned READY packs (policy order) until the tier has at least free_bytes free,
 * cancelling queued prefetches and waiting for moves in flight (then evicting what they
 * brought). SYM_ERR_BUDGET if pinned packs hold the rest. Waits like get(): from the owner thread
 * when uploads run there. */
sym_status sym_pack_manager_evict_until(sym_pack_manager *pm, sym_tier tier, uint64_t free_bytes);
/* Drops pack_id from tier (DEVICE or RAM; DISK or UNLOADED: from both). A queued move is
 * cancelled; a running one finishes and its result is discarded. SYM_ERR_ARG if it is pinned. */
sym_status sym_pack_manager_unload(sym_pack_manager *pm, uint32_t pack_id, sym_tier tier);

/* Engine-thread uploads: runs the queued uploads (of prefetches) now. Returns how many ran.
 * Does nothing (0) with upload_thread or on a thread other than the owner. Call it between ops
 * so that prefetched DEVICE packs are ready before their get. */
int sym_pack_manager_poll(sym_pack_manager *pm);

/* The fastest tier where pack_id is READY (DISK if none). */
sym_tier sym_pack_manager_tier_of(sym_pack_manager *pm, uint32_t pack_id);
/* Sets the cursor to schedule entry use_idx (e.g. at the start of a token); get() also moves it. */
void sym_pack_manager_set_position(sym_pack_manager *pm, uint32_t use_idx);
void sym_pack_manager_stats(sym_pack_manager *pm, sym_tier tier, sym_tier_stats *out);
/* How the model files are read (pack_io.h): whether file_idx uses O_DIRECT, and why not. */
bool sym_pack_manager_direct_io(const sym_pack_manager *pm, int file_idx);
const char *sym_pack_manager_io_note(const sym_pack_manager *pm, int file_idx);

/* Re-checks every invariant under the lock (blocks match states, pins, budgets, the fractal
 * allocators). SYM_ERR_INTERNAL naming the first violation. For tests. */
sym_status sym_pack_manager_check(sym_pack_manager *pm);

#endif
