/* tier.h — what the tier module's parts share: the tiers, where a pack's buffer sits in a tier's
 * memory, tensor views of its pieces, and the statistics kept per tier.
 *
 * A pack's buffer (plan->packs[i].buffer_bytes: its file ranges back to back, each at a 256-byte
 * aligned pack_offset) lives in a tier as one block. A sym_tier_place says where that block
 * starts: a host pointer (RAM, and DEVICE on host-memory backends such as the CPU backend) and/or
 * a backend buffer handle plus byte offset (DEVICE on Vulkan). A piece of the pack is then a
 * sym_tensor at place + piece.pack_offset, exactly what the backend's ops take.
 *
 * Everything here is pure (no state, no locks): callable from any thread.
 */
#ifndef SYM_TIER_TIER_H
#define SYM_TIER_TIER_H

#include <stdint.h>

#include "infer/ops.h"
#include "pack/pack.h"

/* Fastest first. A pack may be READY in several tiers at once (a RAM copy kept behind its DEVICE
 * copy); its tier is the fastest of them. DISK is the model file, where every pack always is. */
typedef enum sym_tier {
    SYM_TIER_DEVICE = 0, /* backend memory ("VRAM"): one or more large allocations */
    SYM_TIER_RAM,        /* the host arena (warm) */
    SYM_TIER_DISK,       /* only in the model file (cold) */
    SYM_TIER_UNLOADED,   /* unload() target: drop every copy (same residency as DISK) */
    SYM_TIER_COUNT
} sym_tier;

/* The tiers with memory budgets (DEVICE and RAM) are indexed 0 and 1. */
#define SYM_TIER_N_MEM 2

/* "device", "ram", "disk", "unloaded"; "?" for other values. */
const char *sym_tier_name(sym_tier t);

/* Where a pack's buffer starts in a tier's memory. data: host address (RAM; DEVICE on host-memory
 * backends), else NULL; buf + offset: the backend buffer handle and byte offset (DEVICE). */
typedef struct sym_tier_place {
    void *data;
    void *buf;
    uint64_t offset;
} sym_tier_place;

/* Piece piece_idx (0-based, in order of use within the pack) of pack pack_id placed at *place,
 * as a tensor (the weight's type and columns, the piece's rows). SYM_ERR_ARG for ids out of
 * range. The view borrows the tier's memory: valid while the pack stays pinned there. */
sym_status sym_tier_piece_view(const sym_pack_plan *plan, uint32_t pack_id,
                               const sym_tier_place *place, uint32_t piece_idx, sym_tensor *out);

/* Counters of one memory tier. Bytes are block bytes (power-of-two buddy blocks) unless named
 * otherwise; all counters start at 0 at create and only grow, except used/n_resident. */
typedef struct sym_tier_stats {
    uint64_t budget_bytes;     /* the hard limit given at create */
    uint64_t capacity_bytes;   /* what was allocated once at create (<= budget) */
    uint64_t staging_bytes;    /* RAM: I/O staging buffers and, from a pack store, the decoders'
                                  scratch (part of capacity; 0 for DEVICE) */
    uint64_t used_bytes;       /* blocks of packs READY or on their way, plus staging */
    uint64_t high_water_bytes; /* the most used_bytes ever (never above budget_bytes) */
    uint64_t n_resident;       /* packs READY in this tier */
    uint64_t hits;             /* a get (or, RAM: a DEVICE load's source lookup) found it READY */
    uint64_t misses;           /* ... had to bring it (or wait for a move already started) */
    uint64_t prefetch_hits;    /* hits on a pack a prefetch brought, first use after the move */
    uint64_t n_loads;          /* completed moves into this tier */
    uint64_t bytes_in;         /* RAM: pack bytes read from disk; DEVICE: bytes uploaded */
    uint64_t io_bytes;         /* RAM: bytes actually read (O_DIRECT reads aligned supersets;
                                  from a pack store the stored, compressed bytes) */
    uint64_t io_ns;            /* time spent in those reads / uploads (summed over workers; RAM:
                                  without decoding) */
    uint64_t decoded_bytes;    /* RAM, from a pack store: raw bytes decompressed */
    uint64_t decode_ns;        /* ... time spent checking and decompressing (summed over workers) */
    uint64_t evictions, evicted_bytes;
    uint64_t prefetches;         /* prefetch requests that started a move */
    uint64_t prefetch_dropped;   /* prefetch requests refused for lack of room the policy allows */
    uint64_t prefetch_cancelled; /* queued prefetches cancelled to make room for a get */
    uint64_t stall_ns;           /* time get() calls for this tier spent waiting */
    uint64_t errors;             /* failed reads / uploads */
    /* the part of hits, misses and bytes_in that is EXPERT packs (mixtures of experts) */
    uint64_t expert_hits, expert_misses, expert_bytes_in;
} sym_tier_stats;

#endif
