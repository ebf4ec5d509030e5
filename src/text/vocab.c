/* vocab.c — the tokenizer's lookup tables: byte string -> token id (open addressing, linear
 * probing, keys stored once in the arena) and (left id, right id) -> merge rank. */
#include <string.h>

#include "base/alloc.h"
#include "text/tok_impl.h"

static uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    if (n) memcpy(&v, p, n);
    return mix64(h ^ v);
}

static void key_of(const sym_tokenizer *t, bool by_piece, int32_t id, const char **p, size_t *n) {
    const tok_entry *e = &t->tokens[id];
    if (by_piece) {
        *p = t->arena + e->piece_off;
        *n = e->piece_len;
    } else {
        *p = t->arena + e->text_off;
        *n = e->text_len;
    }
}

/* A slot holds the key's hash (high 32 bits) and id + 1 (low 32 bits; 0 = empty), so that most
 * mismatches are rejected without touching the arena. */
static uint64_t slot_of(uint64_t h, int32_t id) {
    return (h & 0xffffffff00000000ull) | (uint32_t)(id + 1);
}

sym_status sym_tok_map_build(sym_tokenizer *t, tok_map *m, bool by_piece) {
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u)
        cap <<= 1; /* n_vocab < 2^30 is checked on alloc */
    m->slots = sym_calloc(cap, sizeof *m->slots);
    if (!m->slots) return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory for the vocabulary map");
    m->mask = cap - 1;
    m->by_piece = by_piece;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const tok_entry *e = &t->tokens[id];
        if (by_piece && (e->type != SYM_TOKEN_NORMAL || e->piece_len == 0)) continue;
        const char *k;
        size_t n;
        key_of(t, by_piece, id, &k, &n);
        if (n == 0) continue;
        uint64_t h = hash_bytes(k, n);
        for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
            uint64_t s = m->slots[i];
            if (s == 0) {
                m->slots[i] = slot_of(h, id);
                break;
            }
            if ((s >> 32) != (h >> 32)) continue;
            const char *k2;
            size_t n2;
            key_of(t, by_piece, (int32_t)(uint32_t)s - 1, &k2, &n2);
            if (n2 == n && memcmp(k, k2, n) == 0) break; /* duplicate: the lower id keeps it */
        }
    }
    return SYM_OK;
}

int32_t sym_tok_map_find(const sym_tokenizer *t, const tok_map *m, const char *key, size_t len) {
    if (!m->slots || len == 0) return -1;
    uint64_t h = hash_bytes(key, len);
    for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
        uint64_t s = m->slots[i];
        if (s == 0) return -1;
        if ((s >> 32) != (h >> 32)) continue;
        int32_t id = (int32_t)(uint32_t)s - 1;
        const char *k;
        size_t n;
        key_of(t, m->by_piece, id, &k, &n);
        if (n == len && memcmp(k, key, len) == 0) return id;
    }
}

void sym_tok_map_free(tok_map *m) {
    sym_free(m->slots);
    m->slots = NULL;
}

/* ---- merges ---- */

sym_status sym_tok_merges_init(tok_merges *m, size_t n_expected) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n_expected * 2)
        cap <<= 1;
    m->slots = sym_calloc((size_t)cap, sizeof(tok_merge_slot));
    if (!m->slots)
        return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory for %zu merges", n_expected);
    m->mask = cap - 1;
    m->n = 0;
    return SYM_OK;
}

static uint64_t pair_key(int32_t left, int32_t right) {
    return (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
}

sym_status sym_tok_merges_add(tok_merges *m, int32_t left, int32_t right, int32_t rank,
                              int32_t out) {
    if ((m->n + 1) * 2 > m->mask + 1) { /* keep the load under one half */
        tok_merges bigger;
        SYM_TRY(sym_tok_merges_init(&bigger, (m->mask + 1)));
        for (uint64_t i = 0; i <= m->mask; i++)
            if (m->slots[i].key)
                SYM_TRY(sym_tok_merges_add(&bigger, (int32_t)((m->slots[i].key - 1) >> 32),
                                           (int32_t)(uint32_t)(m->slots[i].key - 1),
                                           m->slots[i].rank, m->slots[i].out));
        sym_free(m->slots);
        *m = bigger;
    }
    uint64_t key = pair_key(left, right);
    for (uint64_t i = mix64(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key) return SYM_OK;
        if (m->slots[i].key == 0) {
            m->slots[i] = (tok_merge_slot){key, rank, out};
            m->n++;
            return SYM_OK;
        }
    }
}

const tok_merge_slot *sym_tok_merges_find(const tok_merges *m, int32_t left, int32_t right) {
    if (!m->slots || left < 0 || right < 0) return NULL;
    uint64_t key = pair_key(left, right);
    for (uint64_t i = mix64(key) & m->mask;; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key) return &m->slots[i];
        if (m->slots[i].key == 0) return NULL;
    }
}

void sym_tok_merges_free(tok_merges *m) {
    sym_free(m->slots);
    m->slots = NULL;
    m->n = 0;
}

sym_status sym_tok_merges_add_str(sym_tokenizer *t, const char *s, size_t len, int32_t rank,
                                  size_t *n_skipped) {
    const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
    if (!sp) {
        ++*n_skipped;
        return SYM_OK;
    }
    size_t nl = (size_t)(sp - s), nr = len - nl - 1;
    int32_t l = sym_tok_map_find(t, &t->by_text, s, nl);
    int32_t r = sym_tok_map_find(t, &t->by_text, sp + 1, nr);
    if (l < 0 || r < 0 || nl + nr > 4096) {
        ++*n_skipped;
        return SYM_OK;
    }
    char buf[4096];
    memcpy(buf, s, nl);
    memcpy(buf + nl, sp + 1, nr);
    int32_t o = sym_tok_map_find(t, &t->by_text, buf, nl + nr);
    if (o < 0) {
        ++*n_skipped;
        return SYM_OK;
    }
    return sym_tok_merges_add(&t->merges, l, r, rank, o);
}
