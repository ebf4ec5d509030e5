/* fractal.c — the buddy allocator of fractal.h.
 *
 * State: nodes[] holds one node per block (free or used) plus spare nodes on a list; slots[] is
 * an open-addressing hash (linear probing, backward-shift deletion) from a block's first unit to
 * its node; free_head[k] is a doubly linked list of the free blocks of order k, nonempty has bit
 * k set when that list is not empty. Offsets are kept in units of min_block. */
#include "mem/fractal.h"

#include <string.h>

#include "base/alloc.h"

#define NIL        UINT32_MAX
#define MAX_ORDERS 64

typedef struct node {
    uint64_t unit;       /* first unit of the block */
    uint64_t tag;        /* used blocks: the caller's tag */
    uint64_t req_bytes;  /* used blocks: the requested size */
    uint32_t prev, next; /* free blocks: links in free_head[order]; spare nodes: next spare */
    uint8_t order;
    uint8_t used;
    uint8_t live; /* a block (in the hash), not a spare node */
} node;

struct sym_fractal {
    uint64_t size_bytes;
    uint64_t n_units;   /* capacity in min_block units */
    uint32_t shift;     /* log2(min_block) */
    uint32_t max_order; /* order of the largest root */
    node *nodes;
    uint32_t n_nodes, cap_nodes; /* high-water mark and allocated */
    uint32_t spare;
    uint32_t *slots;
    uint64_t n_slots; /* power of two, at least twice the nodes in use */
    uint32_t free_head[MAX_ORDERS];
    uint64_t free_count[MAX_ORDERS];
    uint64_t nonempty;
    uint64_t used_units, requested_bytes, n_allocs, n_blocks;
};

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t pow2(uint32_t k) { return (uint64_t)1 << k; }
static inline bool is_pow2(uint64_t x) { return x && !(x & (x - 1)); }
static inline uint32_t floor_log2(uint64_t x) { return 63u - (uint32_t)__builtin_clzll(x); }
static inline uint32_t ceil_log2(uint64_t x) { return x <= 1 ? 0 : floor_log2(x - 1) + 1; }

/* ---- the hash: unit -> node ------------------------------------------------------------------ */

static inline uint64_t home(const sym_fractal *f, uint64_t unit) {
    return mix64(unit) & (f->n_slots - 1);
}

static uint64_t find_slot(const sym_fractal *f, uint64_t unit) {
    uint64_t mask = f->n_slots - 1;
    for (uint64_t i = home(f, unit);; i = (i + 1) & mask)
        if (f->slots[i] == NIL || f->nodes[f->slots[i]].unit == unit) return i;
}

static uint32_t lookup(const sym_fractal *f, uint64_t unit) { return f->slots[find_slot(f, unit)]; }

static void hash_insert(sym_fractal *f, uint32_t idx) {
    uint64_t s = find_slot(f, f->nodes[idx].unit);
    SYM_ASSERT(f->slots[s] == NIL);
    f->slots[s] = idx;
}

static void hash_delete(sym_fractal *f, uint32_t idx) {
    uint64_t mask = f->n_slots - 1, i = find_slot(f, f->nodes[idx].unit);
    SYM_ASSERT(f->slots[i] == idx);
    f->slots[i] = NIL;
    /* backward shift: pull later entries of the probe run into the hole when their home slot
     * does not lie cyclically in (hole, j] */
    for (uint64_t j = (i + 1) & mask; f->slots[j] != NIL; j = (j + 1) & mask) {
        uint64_t h = home(f, f->nodes[f->slots[j]].unit);
        bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
        if (stays) continue;
        f->slots[i] = f->slots[j];
        f->slots[j] = NIL;
        i = j;
    }
}

/* ---- growth ---------------------------------------------------------------------------------- */

static sym_status rehash(sym_fractal *f, uint64_t n_slots) {
    uint32_t *s = sym_malloc((size_t)n_slots * sizeof *s);
    if (!s)
        return SYM_FAIL(SYM_ERR_OOM, "fractal: out of memory for a %llu-slot hash",
                        (unsigned long long)n_slots);
    memset(s, 0xff, (size_t)n_slots * sizeof *s);
    sym_free(f->slots);
    f->slots = s;
    f->n_slots = n_slots;
    for (uint32_t i = 0; i < f->n_nodes; i++)
        if (f->nodes[i].live) hash_insert(f, i);
    return SYM_OK;
}

/* Makes room for `extra` more blocks without allocating again (so the caller can mutate after
 * this succeeds and never fail half-way). */
static sym_status reserve(sym_fractal *f, uint64_t extra) {
    uint64_t want = f->n_blocks + extra;
    if (want > UINT32_MAX / 4)
        return SYM_FAIL(SYM_ERR_OOM, "fractal: more than %u blocks", UINT32_MAX / 4);
    uint64_t spare = 0;
    for (uint32_t s = f->spare; s != NIL && spare < extra; s = f->nodes[s].next)
        spare++;
    if (spare + (f->cap_nodes - f->n_nodes) < extra) {
        uint64_t cap = f->cap_nodes ? f->cap_nodes : 16;
        while (cap < f->n_nodes + extra)
            cap *= 2;
        node *n = sym_realloc(f->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return SYM_FAIL(SYM_ERR_OOM, "fractal: out of memory for %llu blocks",
                            (unsigned long long)cap);
        f->nodes = n;
        f->cap_nodes = (uint32_t)cap;
    }
    if (want * 2 > f->n_slots) {
        uint64_t n_slots = f->n_slots ? f->n_slots : 32;
        while (want * 2 > n_slots)
            n_slots *= 2;
        SYM_TRY(rehash(f, n_slots));
    }
    return SYM_OK;
}

/* ---- nodes and free lists -------------------------------------------------------------------- */

/* Needs a prior reserve(). */
static uint32_t node_new(sym_fractal *f, uint64_t unit, uint32_t order) {
    uint32_t idx = f->spare;
    if (idx != NIL)
        f->spare = f->nodes[idx].next;
    else
        idx = f->n_nodes++;
    SYM_ASSERT(idx < f->cap_nodes);
    node *n = &f->nodes[idx];
    memset(n, 0, sizeof *n);
    n->unit = unit;
    n->order = (uint8_t)order;
    n->prev = n->next = NIL;
    n->live = 1;
    hash_insert(f, idx);
    f->n_blocks++;
    return idx;
}

static void node_del(sym_fractal *f, uint32_t idx) {
    hash_delete(f, idx);
    f->nodes[idx].live = 0;
    f->nodes[idx].next = f->spare;
    f->spare = idx;
    f->n_blocks--;
}

static void list_push(sym_fractal *f, uint32_t idx) {
    node *n = &f->nodes[idx];
    uint32_t k = n->order;
    n->prev = NIL;
    n->next = f->free_head[k];
    if (n->next != NIL) f->nodes[n->next].prev = idx;
    f->free_head[k] = idx;
    f->free_count[k]++;
    f->nonempty |= pow2(k);
}

static void list_remove(sym_fractal *f, uint32_t idx) {
    node *n = &f->nodes[idx];
    uint32_t k = n->order;
    if (n->prev != NIL)
        f->nodes[n->prev].next = n->next;
    else
        f->free_head[k] = n->next;
    if (n->next != NIL) f->nodes[n->next].prev = n->prev;
    n->prev = n->next = NIL;
    if (--f->free_count[k] == 0) f->nonempty &= ~pow2(k);
}

/* A block is a root exactly when its buddy would reach past the capacity (roots are laid out
 * largest first, so each root's buddy range starts inside it and ends past n_units). */
static bool is_root(const sym_fractal *f, uint64_t unit, uint32_t order) {
    uint64_t b = unit ^ pow2(order);
    return order >= 63 || b + pow2(order) > f->n_units;
}

/* Merges free block idx (not on a list) with free buddies upward, then lists the result. */
static void coalesce_and_push(sym_fractal *f, uint32_t idx) {
    for (;;) {
        node *n = &f->nodes[idx];
        uint32_t k = n->order;
        if (is_root(f, n->unit, k)) break;
        uint32_t b = lookup(f, n->unit ^ pow2(k));
        if (b == NIL || f->nodes[b].order != k || f->nodes[b].used) break;
        list_remove(f, b);
        /* the lower of the two survives: its hash key is the merged block's start */
        if (f->nodes[b].unit < n->unit) {
            node_del(f, idx);
            idx = b;
        } else {
            node_del(f, b);
        }
        f->nodes[idx].order = (uint8_t)(k + 1);
    }
    list_push(f, idx);
}

/* ---- create / destroy ------------------------------------------------------------------------ */

sym_status sym_fractal_create(uint64_t size_bytes, uint64_t min_block_bytes, sym_fractal **out) {
    if (min_block_bytes == 0) min_block_bytes = SYM_FRACTAL_DEFAULT_MIN_BLOCK;
    SYM_CHECK(is_pow2(min_block_bytes), SYM_ERR_ARG,
              "fractal: min_block %llu is not a power of two", (unsigned long long)min_block_bytes);
    SYM_CHECK(size_bytes >= min_block_bytes, SYM_ERR_ARG,
              "fractal: size %llu is smaller than one min_block (%llu): nothing to manage",
              (unsigned long long)size_bytes, (unsigned long long)min_block_bytes);
    sym_fractal *f = sym_calloc(1, sizeof *f);
    if (!f) return SYM_FAIL(SYM_ERR_OOM, "fractal: out of memory");
    f->size_bytes = size_bytes;
    f->shift = floor_log2(min_block_bytes);
    f->n_units = size_bytes >> f->shift;
    f->max_order = floor_log2(f->n_units);
    f->spare = NIL;
    for (int k = 0; k < MAX_ORDERS; k++)
        f->free_head[k] = NIL;
    uint32_t n_roots = (uint32_t)__builtin_popcountll(f->n_units);
    sym_status st = reserve(f, n_roots);
    if (st != SYM_OK) {
        sym_fractal_destroy(f);
        return st;
    }
    /* the roots: the binary digits of n_units, largest first */
    uint64_t unit = 0;
    for (int k = (int)f->max_order; k >= 0; k--) {
        if (!(f->n_units & pow2((uint32_t)k))) continue;
        list_push(f, node_new(f, unit, (uint32_t)k));
        unit += pow2((uint32_t)k);
    }
    *out = f;
    return SYM_OK;
}

void sym_fractal_destroy(sym_fractal *f) {
    if (!f) return;
    sym_free(f->nodes);
    sym_free(f->slots);
    sym_free(f);
}

/* ---- alloc / free ---------------------------------------------------------------------------- */

static uint64_t largest_free_units(const sym_fractal *f) {
    return f->nonempty ? pow2(floor_log2(f->nonempty)) : 0;
}

sym_status sym_fractal_alloc(sym_fractal *f, uint64_t size_bytes, uint64_t align_bytes,
                             uint64_t tag, uint64_t *offset_out) {
    SYM_CHECK(size_bytes > 0, SYM_ERR_ARG, "fractal: allocation of 0 bytes");
    SYM_CHECK(align_bytes == 0 || is_pow2(align_bytes), SYM_ERR_ARG,
              "fractal: alignment %llu is not a power of two", (unsigned long long)align_bytes);
    uint64_t max_bytes = pow2(f->max_order) << f->shift;
    uint64_t need = size_bytes > align_bytes ? size_bytes : align_bytes;
    SYM_CHECK(need <= max_bytes, SYM_ERR_BUDGET,
              "fractal: %llu bytes aligned to %llu can never fit (largest block %llu bytes)",
              (unsigned long long)size_bytes, (unsigned long long)align_bytes,
              (unsigned long long)max_bytes);
    uint64_t units = (need + (pow2(f->shift) - 1)) >> f->shift;
    uint32_t k = ceil_log2(units);
    uint64_t fits = f->nonempty & ~(pow2(k) - 1);
    if (!fits)
        return SYM_FAIL(SYM_ERR_BUDGET,
                        "fractal: no free block of %llu bytes for %llu bytes "
                        "(largest free block %llu of %llu free)",
                        (unsigned long long)(pow2(k) << f->shift), (unsigned long long)size_bytes,
                        (unsigned long long)(largest_free_units(f) << f->shift),
                        (unsigned long long)((f->n_units - f->used_units) << f->shift));
    uint32_t j = (uint32_t)__builtin_ctzll(fits);
    SYM_TRY(reserve(f, j - k));
    uint32_t idx = f->free_head[j];
    list_remove(f, idx);
    while (j > k) { /* split: keep the lower half, list the upper */
        j--;
        uint32_t b = node_new(f, f->nodes[idx].unit + pow2(j), j);
        list_push(f, b);
        f->nodes[idx].order = (uint8_t)j;
    }
    node *n = &f->nodes[idx];
    n->used = 1;
    n->tag = tag;
    n->req_bytes = size_bytes;
    f->used_units += pow2(k);
    f->requested_bytes += size_bytes;
    f->n_allocs++;
    *offset_out = n->unit << f->shift;
    return SYM_OK;
}

static uint32_t used_at(const sym_fractal *f, uint64_t offset) {
    if (offset & (pow2(f->shift) - 1) || (offset >> f->shift) >= f->n_units) return NIL;
    uint32_t idx = lookup(f, offset >> f->shift);
    return idx != NIL && f->nodes[idx].used ? idx : NIL;
}

sym_status sym_fractal_free(sym_fractal *f, uint64_t offset) {
    uint32_t idx = used_at(f, offset);
    SYM_CHECK(idx != NIL, SYM_ERR_ARG, "fractal: no allocation starts at offset %llu",
              (unsigned long long)offset);
    node *n = &f->nodes[idx];
    n->used = 0;
    f->used_units -= pow2(n->order);
    f->requested_bytes -= n->req_bytes;
    f->n_allocs--;
    coalesce_and_push(f, idx);
    return SYM_OK;
}

bool sym_fractal_lookup(const sym_fractal *f, uint64_t offset, sym_fractal_block *out) {
    uint32_t idx = used_at(f, offset);
    if (idx == NIL) return false;
    const node *n = &f->nodes[idx];
    out->offset = offset;
    out->block_bytes = pow2(n->order) << f->shift;
    out->requested_bytes = n->req_bytes;
    out->tag = n->tag;
    return true;
}

void sym_fractal_stats_get(const sym_fractal *f, sym_fractal_stats *out) {
    memset(out, 0, sizeof *out);
    out->size_bytes = f->size_bytes;
    out->capacity_bytes = f->n_units << f->shift;
    out->min_block_bytes = pow2(f->shift);
    out->max_block_bytes = pow2(f->max_order) << f->shift;
    out->used_bytes = f->used_units << f->shift;
    out->requested_bytes = f->requested_bytes;
    out->free_bytes = out->capacity_bytes - out->used_bytes;
    out->largest_free_bytes = largest_free_units(f) << f->shift;
    out->n_allocs = f->n_allocs;
    for (int k = 0; k < MAX_ORDERS; k++)
        out->n_free_blocks += f->free_count[k];
    out->n_roots = (uint32_t)__builtin_popcountll(f->n_units);
    out->fragmentation =
        out->free_bytes ? 1.0 - (double)out->largest_free_bytes / (double)out->free_bytes : 0.0;
}

/* ---- defragmentation ------------------------------------------------------------------------- */

/* Order by order from the smallest: while order k has two free blocks A and B (at most one of them
 * is a root: roots have distinct orders), the buddy of one of them, say B's buddy X, is not free
 * (else they would have merged) and is disjoint from A (same-order aligned blocks are equal or
 * disjoint). Move X's whole subtree into A at the same relative offsets — alignment is kept because
 * A and X are both aligned to 2^k — then X is free and merges with B (and maybe further). Each
 * round removes two free blocks of order k and adds none at orders <= k, so when the pass ends
 * every order holds at most one free block. Which pair: the lowest free block is filled from the
 * buddy of the highest non-root one, so live data drifts down and free space gathers at the top,
 * where later (larger) orders find it already merged; on random workloads this moves about half the
 * blocks that pairing the first two listed blocks does. Every destination is free when its move
 * happens, so executing the plan in order is safe. It runs on a copy of the state: a failure
 * part-way leaves the caller's allocator untouched. */

typedef struct defrag {
    sym_fractal *f;
    uint32_t *leaves; /* scratch: the blocks of a subtree */
    size_t n_leaves, cap_leaves;
    sym_fractal_plan plan;
    size_t cap_moves;
} defrag;

static sym_status push_leaf(defrag *d, uint32_t idx) {
    if (d->n_leaves == d->cap_leaves) {
        size_t cap = d->cap_leaves ? 2 * d->cap_leaves : 64;
        uint32_t *l = sym_realloc(d->leaves, cap * sizeof *l);
        if (!l) return SYM_FAIL(SYM_ERR_OOM, "fractal: out of memory while defragmenting");
        d->leaves = l;
        d->cap_leaves = cap;
    }
    d->leaves[d->n_leaves++] = idx;
    return SYM_OK;
}

/* Collects the blocks inside the aligned region (unit, order) into d->leaves and returns the
 * live bytes (requested) in *live. Every region start inside the capacity is the start of a
 * block of that order or smaller. */
static sym_status collect(defrag *d, uint64_t unit, uint32_t order, uint64_t *live) {
    uint32_t idx = lookup(d->f, unit);
    SYM_ASSERT(idx != NIL && d->f->nodes[idx].order <= order);
    if (d->f->nodes[idx].order == order) {
        if (d->f->nodes[idx].used) *live += d->f->nodes[idx].req_bytes;
        return push_leaf(d, idx);
    }
    SYM_TRY(collect(d, unit, order - 1, live));
    return collect(d, unit + pow2(order - 1), order - 1, live);
}

static sym_status push_move(defrag *d, const node *n, uint64_t src_unit) {
    if (d->plan.n_moves == d->cap_moves) {
        size_t cap = d->cap_moves ? 2 * d->cap_moves : 64;
        sym_fractal_move *m = sym_realloc(d->plan.moves, cap * sizeof *m);
        if (!m) return SYM_FAIL(SYM_ERR_OOM, "fractal: out of memory for the defragmentation plan");
        d->plan.moves = m;
        d->cap_moves = cap;
    }
    uint32_t sh = d->f->shift;
    d->plan.moves[d->plan.n_moves++] = (sym_fractal_move){.src_offset = src_unit << sh,
                                                          .dst_offset = n->unit << sh,
                                                          .requested_bytes = n->req_bytes,
                                                          .block_bytes = pow2(n->order) << sh,
                                                          .tag = n->tag};
    d->plan.bytes_moved += n->req_bytes;
    return SYM_OK;
}

/* Moves the subtree of region (src, k), already collected in d->leaves, into free block dst. */
static sym_status relocate(defrag *d, uint32_t dst, uint64_t src, uint32_t k) {
    sym_fractal *f = d->f;
    uint64_t to = f->nodes[dst].unit;
    list_remove(f, dst);
    node_del(f, dst);
    for (size_t i = 0; i < d->n_leaves; i++) {
        uint32_t idx = d->leaves[i];
        uint64_t from = f->nodes[idx].unit;
        hash_delete(f, idx);
        f->nodes[idx].unit = to + (from - src);
        hash_insert(f, idx);
        if (f->nodes[idx].used) SYM_TRY(push_move(d, &f->nodes[idx], from));
    }
    /* the region is now free; the spare node just released is reused, nothing allocates */
    coalesce_and_push(f, node_new(f, src, k));
    return SYM_OK;
}

static sym_status defrag_run(defrag *d) {
    sym_fractal *f = d->f;
    for (uint32_t k = 0; k < f->max_order; k++) {
        while (f->free_count[k] >= 2) {
            /* fill the lowest free block from the highest non-root one's buddy: live data drifts
             * down, free space gathers at the top, and later orders rarely move it again */
            uint32_t lo = NIL, hi = NIL;
            for (uint32_t i = f->free_head[k]; i != NIL; i = f->nodes[i].next) {
                if (lo == NIL || f->nodes[i].unit < f->nodes[lo].unit) lo = i;
                if (!is_root(f, f->nodes[i].unit, k) &&
                    (hi == NIL || f->nodes[i].unit > f->nodes[hi].unit))
                    hi = i;
            }
            SYM_ASSERT(hi != NIL);
            if (hi == lo) { /* lo is the only non-root: the other one (a root) is the target */
                lo = f->free_head[k] == hi ? f->nodes[hi].next : f->free_head[k];
            }
            uint64_t x = f->nodes[hi].unit ^ pow2(k), live = 0;
            d->n_leaves = 0;
            SYM_TRY(collect(d, x, k, &live));
            SYM_TRY(relocate(d, lo, x, k));
        }
    }
    return SYM_OK;
}

static sym_status clone(const sym_fractal *f, sym_fractal **out) {
    sym_fractal *c = sym_malloc(sizeof *c);
    if (!c) return SYM_FAIL(SYM_ERR_OOM, "fractal: out of memory while defragmenting");
    *c = *f;
    c->nodes = sym_malloc((size_t)f->cap_nodes * sizeof *c->nodes);
    c->slots = sym_malloc((size_t)f->n_slots * sizeof *c->slots);
    if (!c->nodes || !c->slots) {
        sym_fractal_destroy(c);
        return SYM_FAIL(SYM_ERR_OOM, "fractal: out of memory while defragmenting");
    }
    memcpy(c->nodes, f->nodes, (size_t)f->n_nodes * sizeof *c->nodes);
    memcpy(c->slots, f->slots, (size_t)f->n_slots * sizeof *c->slots);
    *out = c;
    return SYM_OK;
}

sym_status sym_fractal_defragment(sym_fractal *f, sym_fractal_plan *plan) {
    memset(plan, 0, sizeof *plan);
    defrag d;
    memset(&d, 0, sizeof d);
    SYM_TRY(clone(f, &d.f));
    sym_status st = defrag_run(&d);
    sym_free(d.leaves);
    if (st != SYM_OK) {
        sym_fractal_destroy(d.f);
        sym_fractal_plan_free(&d.plan);
        return st;
    }
    /* adopt the rearranged state */
    sym_free(f->nodes);
    sym_free(f->slots);
    *f = *d.f;
    sym_free(d.f);
    *plan = d.plan;
    return SYM_OK;
}

void sym_fractal_plan_free(sym_fractal_plan *plan) {
    if (!plan) return;
    sym_free(plan->moves);
    memset(plan, 0, sizeof *plan);
}

/* ---- invariants ------------------------------------------------------------------------------ */

/* The order of the root holding unit. */
static uint32_t root_order(const sym_fractal *f, uint64_t unit) {
    uint64_t start = 0;
    for (int k = (int)f->max_order; k >= 0; k--) {
        if (!(f->n_units & pow2((uint32_t)k))) continue;
        if (unit < start + pow2((uint32_t)k)) return (uint32_t)k;
        start += pow2((uint32_t)k);
    }
    return 0;
}

#define BAD(...) return SYM_FAIL(SYM_ERR_INTERNAL, "fractal: " __VA_ARGS__)

sym_status sym_fractal_check(const sym_fractal *f) {
    uint64_t used = 0, req = 0, n_used = 0, n_blocks = 0, n_free[MAX_ORDERS] = {0};
    /* walk the tiling: every block starts where the previous ended, inside its root */
    for (uint64_t unit = 0; unit < f->n_units;) {
        uint32_t idx = lookup(f, unit);
        if (idx == NIL) BAD("no block starts at unit %llu", (unsigned long long)unit);
        const node *n = &f->nodes[idx];
        if (!n->live || n->unit != unit)
            BAD("hash entry for unit %llu is stale", (unsigned long long)unit);
        uint64_t len = pow2(n->order);
        if (unit & (len - 1))
            BAD("block at unit %llu is not aligned to its size %llu", (unsigned long long)unit,
                (unsigned long long)len);
        if (unit + len > f->n_units)
            BAD("block at unit %llu runs past the capacity", (unsigned long long)unit);
        if (n->order > root_order(f, unit))
            BAD("block at unit %llu of order %u crosses a root", (unsigned long long)unit,
                n->order);
        if (n->used) {
            used += len;
            req += n->req_bytes;
            n_used++;
            if (n->req_bytes == 0 || n->req_bytes > (len << f->shift))
                BAD("block at unit %llu records %llu requested bytes", (unsigned long long)unit,
                    (unsigned long long)n->req_bytes);
        } else {
            n_free[n->order]++;
            if (!is_root(f, unit, n->order)) {
                uint32_t b = lookup(f, unit ^ len);
                if (b != NIL && f->nodes[b].order == n->order && !f->nodes[b].used)
                    BAD("free buddies at units %llu and %llu were not merged",
                        (unsigned long long)unit, (unsigned long long)(unit ^ len));
            }
        }
        n_blocks++;
        unit += len;
    }
    if (n_blocks != f->n_blocks)
        BAD("%llu blocks tile the capacity, %llu recorded", (unsigned long long)n_blocks,
            (unsigned long long)f->n_blocks);
    if (used != f->used_units || req != f->requested_bytes || n_used != f->n_allocs)
        BAD("totals disagree (used units %llu vs %llu, allocations %llu vs %llu)",
            (unsigned long long)used, (unsigned long long)f->used_units, (unsigned long long)n_used,
            (unsigned long long)f->n_allocs);
    uint64_t n_hashed = 0;
    for (uint64_t s = 0; s < f->n_slots; s++)
        n_hashed += f->slots[s] != NIL;
    if (n_hashed != n_blocks)
        BAD("%llu hash entries for %llu blocks", (unsigned long long)n_hashed,
            (unsigned long long)n_blocks);
    for (uint32_t k = 0; k < MAX_ORDERS; k++) {
        uint64_t n = 0;
        uint32_t prev = NIL;
        for (uint32_t i = f->free_head[k]; i != NIL; prev = i, i = f->nodes[i].next) {
            const node *b = &f->nodes[i];
            if (!b->live || b->used || b->order != k || b->prev != prev)
                BAD("free list %u is corrupt at unit %llu", k, (unsigned long long)b->unit);
            if (++n > n_blocks) BAD("free list %u has a cycle", k);
        }
        if (n != n_free[k] || n != f->free_count[k] || (n != 0) != !!(f->nonempty & pow2(k)))
            BAD("order %u: %llu listed, %llu free blocks, count %llu", k, (unsigned long long)n,
                (unsigned long long)n_free[k], (unsigned long long)f->free_count[k]);
    }
    return SYM_OK;
}
