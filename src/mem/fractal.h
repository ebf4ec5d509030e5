/* fractal.h — the fractal (buddy) sub-allocator over byte offsets [0, size). It knows nothing of
 * Vulkan: the pack manager puts one over each large device memory block (and over pinned host
 * staging), and copies data itself when a defragmentation plan says so.
 *
 * Blocks are min_block << k bytes ("order k"). A size that is not a power-of-two multiple of
 * min_block is managed as a set of power-of-two roots laid out largest first (13 units: roots of
 * 8, 4 and 1 at units 0, 8, 12); bytes past the last whole min_block are not used. Laid out that
 * way every block starts at a multiple of its own size, anywhere in [0, size).
 *
 *   alloc: the request (at least min_block, at least its alignment) is rounded up to a power of
 *          two; the smallest free block that holds it is split by halves. O(log n): one bit scan
 *          over the per-order non-empty mask, then at most one split per order.
 *   free:  the block merges with its buddy while the buddy is free, up to its root. O(log n).
 *   Bookkeeping is a node per block (free or used), a hash from offset to node and a doubly
 *   linked free list per order; memory is O(blocks), not O(size). Nodes and hash grow by
 *   doubling (amortized O(1)); once the high-water mark of blocks is reached nothing allocates.
 *
 * Alignment: a block of 2^k units is naturally aligned to its size, so any power-of-two
 * alignment up to the (rounded) request size is free; a larger alignment rounds the block up to
 * the alignment (at most align bytes of internal fragmentation, reported in the statistics).
 *
 * Allocations are named by their offset (unique among live blocks) and carry a caller tag (a pack
 * id, say) that defragmentation plans repeat, so the caller can update its references either way.
 *
 * Errors: SYM_ERR_ARG for invalid arguments (size 0, alignment not a power of two, freeing an
 * offset that is not a live allocation); SYM_ERR_BUDGET when no free block fits now (the detail
 * gives the request and the largest free block) or never can (request above the largest root);
 * SYM_ERR_OOM when the host bookkeeping cannot grow. A failed call leaves the allocator unchanged.
 *
 * Threads: none inside; an allocator belongs to one owner (the pack manager serializes calls).
 * All functions may be called concurrently on *different* allocators.
 */
#ifndef SYM_MEM_FRACTAL_H
#define SYM_MEM_FRACTAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct sym_fractal sym_fractal;

#define SYM_FRACTAL_DEFAULT_MIN_BLOCK 256u

/* Manages [0, size_bytes) in blocks of at least min_block_bytes (a power of two; 0 picks
 * SYM_FRACTAL_DEFAULT_MIN_BLOCK). SYM_ERR_ARG if min_block is not a power of two or size_bytes is
 * smaller than one min_block (nothing to manage). Caller owns *out (sym_fractal_destroy). */
sym_status sym_fractal_create(uint64_t size_bytes, uint64_t min_block_bytes, sym_fractal **out);
void sym_fractal_destroy(sym_fractal *f);

/* Allocates at least size_bytes at an offset that is a multiple of align_bytes (0 or a power of
 * two; 0 means no requirement). *offset_out gets the offset; tag is kept with the block. */
sym_status sym_fractal_alloc(sym_fractal *f, uint64_t size_bytes, uint64_t align_bytes,
                             uint64_t tag, uint64_t *offset_out);
/* Frees the allocation starting at offset. SYM_ERR_ARG if no live allocation starts there. */
sym_status sym_fractal_free(sym_fractal *f, uint64_t offset);

/* One live allocation. */
typedef struct sym_fractal_block {
    uint64_t offset;
    uint64_t block_bytes;     /* the power-of-two block it occupies */
    uint64_t requested_bytes; /* what alloc was asked for (<= block_bytes) */
    uint64_t tag;
} sym_fractal_block;

/* Fills *out for the live allocation starting at offset; false if there is none. O(1). */
bool sym_fractal_lookup(const sym_fractal *f, uint64_t offset, sym_fractal_block *out);

typedef struct sym_fractal_stats {
    uint64_t size_bytes;     /* as created */
    uint64_t capacity_bytes; /* managed: size rounded down to a multiple of min_block */
    uint64_t min_block_bytes;
    uint64_t max_block_bytes;    /* the largest root: no request above it can ever succeed */
    uint64_t used_bytes;         /* sum of the blocks of live allocations */
    uint64_t requested_bytes;    /* sum of their requested sizes (used - requested: rounding) */
    uint64_t free_bytes;         /* capacity - used */
    uint64_t largest_free_bytes; /* the largest free block (0 if none) */
    uint64_t n_allocs;           /* live allocations */
    uint64_t n_free_blocks;
    uint32_t n_roots;
    double fragmentation; /* 1 - largest_free / free (0 when nothing is free) */
} sym_fractal_stats;

/* O(number of orders). */
void sym_fractal_stats_get(const sym_fractal *f, sym_fractal_stats *out);

/* ---- defragmentation ------------------------------------------------------------------------ */

/* Copy requested_bytes from src_offset to dst_offset; the allocation tagged tag now starts at
 * dst_offset. Source and destination never overlap. */
typedef struct sym_fractal_move {
    uint64_t src_offset, dst_offset;
    uint64_t requested_bytes; /* the bytes that must be copied */
    uint64_t block_bytes;
    uint64_t tag;
} sym_fractal_move;

typedef struct sym_fractal_plan {
    sym_fractal_move *moves; /* owned; sym_fractal_plan_free */
    size_t n_moves;
    uint64_t bytes_moved; /* sum of requested_bytes over the moves */
} sym_fractal_plan;

/* Rearranges the live allocations so that free space is maximally coalesced: afterwards there
 * is at most one free block per order, i.e. the free blocks are exactly the binary digits of
 * free_bytes / min_block, and the largest free block is the largest power of two <= free_bytes.
 * The allocator's state already reflects the moves when this returns; the caller must then
 * perform them IN ORDER (a move's destination may be the source of an earlier move, so a copy
 * must complete before a later one that writes over its source starts; moves with no such
 * dependency may run concurrently). Every destination is free space at the time of its move, so
 * executing in order loses no data. An allocation may move more than once (the plan lists each
 * hop from its then-current offset). On failure (SYM_ERR_OOM) the allocator is unchanged and
 * *plan is empty. The plan is not minimal in bytes moved (live data is compacted downwards order
 * by order; an allocation moves at most once per order). Cost: O(blocks * orders) plus a scan of
 * an order's free list per round, and a copy of the bookkeeping. */
sym_status sym_fractal_defragment(sym_fractal *f, sym_fractal_plan *plan);
void sym_fractal_plan_free(sym_fractal_plan *plan);

/* Checks every internal invariant (blocks tile the capacity exactly, each block aligned to its
 * size, the hash, free lists, per-order counts and totals agree, no two free buddies left
 * unmerged). SYM_ERR_INTERNAL with the first violation. O(blocks). For tests and debugging. */
sym_status sym_fractal_check(const sym_fractal *f);

#endif
