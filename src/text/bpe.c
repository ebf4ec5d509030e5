/* bpe.c — rank-ordered BPE over one pre-tokenized word (GPT-2 style, and HF "BPE" models): the
 * word starts as single symbols (bytes for byte-level vocabularies, UTF-8 characters otherwise);
 * the adjacent pair with the lowest merge rank is merged first (ties: leftmost) until no pair
 * has a merge. O(n log n) in the word length. */
#include "text/tok_impl.h"
#include "text/utf8.h"

static sym_status try_pair(const sym_tokenizer *t, sym_tok_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return SYM_OK;
    const tok_symbol *L = &w->sym[l], *R = &w->sym[r];
    const tok_merge_slot *m = sym_tok_merges_find(&t->merges, L->id, R->id);
    if (!m) return SYM_OK;
    uint64_t key = ((uint64_t)(uint32_t)m->rank << 32) | (uint32_t)l;
    return sym_tok_heap_push(w, (tok_bigram){key, r, L->len, R->len, m->out});
}

/* A symbol no token covers: byte tokens where the vocabulary has them, else <unk>. */
static void emit_unknown(const sym_tokenizer *t, const uint8_t *p, size_t len, bool *prev_unk,
                         sym_tok_sink *out) {
    if (t->byte_level || t->byte_fallback) {
        sym_tok_emit_bytes(t, p, len, out);
        return;
    }
    if (t->unk >= 0 && !(t->fuse_unk && *prev_unk)) sym_tok_sink_push(out, t->unk);
    *prev_unk = true;
}

sym_status sym_bpe_encode_word(const sym_tokenizer *t, sym_tok_work *w, const char *word,
                               size_t len, sym_tok_sink *out) {
    if (len == 0) return SYM_OK;
    const uint8_t *p = (const uint8_t *)word;
    if (t->ignore_merges) {
        int32_t id = sym_tok_map_find(t, t->byte_level ? &t->by_piece : &t->by_text, word, len);
        if (id >= 0) {
            sym_tok_sink_push(out, id);
            return SYM_OK;
        }
    }
    SYM_TRY(sym_tok_work_reserve(w, len));
    int32_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t l = 1;
        int32_t id;
        if (t->byte_level) {
            id = t->byte_token[p[i]];
        } else {
            l = sym_utf8_valid_len(p + i, len - i);
            if (l == 0) l = 1;
            id = sym_tok_map_find(t, &t->by_text, word + i, l);
        }
        w->sym[n] = (tok_symbol){n - 1, n + 1, (uint32_t)i, (uint32_t)l, id};
        n++;
        i += l;
    }
    w->sym[n - 1].next = -1;
    for (int32_t i = 1; i < n; i++)
        SYM_TRY(try_pair(t, w, i - 1, i));

    while (w->n_heap) {
        tok_bigram b = sym_tok_heap_pop(w);
        int32_t left = sym_tok_bigram_left(&b);
        tok_symbol *L = &w->sym[left], *R = &w->sym[b.right];
        if (L->len != b.len_l || R->len != b.len_r || L->next != b.right) continue; /* stale */
        L->len += R->len;
        L->id = b.out;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) w->sym[R->next].prev = left;
        SYM_TRY(try_pair(t, w, L->prev, left));
        SYM_TRY(try_pair(t, w, left, L->next));
    }

    bool prev_unk = false;
    for (int32_t i = 0; i >= 0; i = w->sym[i].next) {
        const tok_symbol *s = &w->sym[i];
        if (s->id >= 0) {
            sym_tok_sink_push(out, s->id);
            prev_unk = false;
        } else {
            emit_unknown(t, p + s->start, s->len, &prev_unk, out);
        }
    }
    return SYM_OK;
}
