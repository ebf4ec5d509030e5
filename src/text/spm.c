/* spm.c — SentencePiece-style BPE as llama.cpp runs it for "llama" vocabularies: the text (spaces
 * already escaped to U+2581) is split into UTF-8 characters; the adjacent pair whose concatenation
 * is the token with the highest score is merged first (ties: leftmost), until no pair forms a
 * token. Symbols that are not tokens fall back to <0xXX> byte tokens. O(n log n) in the length. */
#include <string.h>

#include "text/tok_impl.h"
#include "text/utf8.h"

#define SPACE_ESC "\xe2\x96\x81"

static sym_status try_pair(const sym_tokenizer *t, sym_tok_work *w, const char *text, int32_t l,
                           int32_t r) {
    if (l < 0 || r < 0) return SYM_OK;
    const tok_symbol *L = &w->sym[l], *R = &w->sym[r];
    int32_t id = sym_tok_map_find(t, &t->by_text, text + L->start, L->len + R->len);
    if (id < 0) return SYM_OK;
    /* float bits -> an unsigned order where higher scores are smaller */
    uint32_t u;
    float score = t->tokens[id].score;
    memcpy(&u, &score, 4);
    uint32_t asc = (u & 0x80000000u) ? ~u : u | 0x80000000u;
    uint64_t key = ((uint64_t)~asc << 32) | (uint32_t)l;
    return sym_tok_heap_push(w, (tok_bigram){key, r, L->len, R->len, id});
}

static sym_status encode_segment(const sym_tokenizer *t, sym_tok_work *w, const char *text,
                                 size_t len, sym_tok_sink *out) {
    if (len == 0) return SYM_OK;
    SYM_TRY(sym_tok_work_reserve(w, len));
    const uint8_t *p = (const uint8_t *)text;
    int32_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t l = sym_utf8_valid_len(p + i, len - i);
        if (l == 0) l = 1; /* an invalid byte is a symbol of its own */
        w->sym[n] = (tok_symbol){n - 1, n + 1, (uint32_t)i, (uint32_t)l, -1};
        n++;
        i += l;
    }
    w->sym[n - 1].next = -1;
    for (int32_t i = 1; i < n; i++)
        SYM_TRY(try_pair(t, w, text, i - 1, i));

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
        SYM_TRY(try_pair(t, w, text, L->prev, left));
        SYM_TRY(try_pair(t, w, text, left, L->next));
    }

    for (int32_t i = 0; i >= 0; i = w->sym[i].next) {
        const tok_symbol *s = &w->sym[i];
        int32_t id = s->id >= 0 ? s->id : sym_tok_map_find(t, &t->by_text, text + s->start, s->len);
        if (id >= 0)
            sym_tok_sink_push(out, id);
        else
            sym_tok_emit_bytes(t, p + s->start, s->len, out);
    }
    return SYM_OK;
}

/* Merges never cross a boundary no token spans, so the text can be merged in independent
 * segments with the same result — and a small queue that stays in cache. When no token has a "▁"
 * after its leading run of them (t->spm_word_split, true for real SentencePiece vocabularies), a
 * segment ends before each "▁" that follows another character. */
sym_status sym_spm_encode(const sym_tokenizer *t, sym_tok_work *w, const char *text, size_t len,
                          sym_tok_sink *out) {
    if (!t->spm_word_split) return encode_segment(t, w, text, len, out);
    size_t start = 0;
    for (size_t i = 3; i + 3 <= len; i++) {
        if (memcmp(text + i, SPACE_ESC, 3) != 0) continue;
        if (memcmp(text + i - 3, SPACE_ESC, 3) == 0) continue;
        SYM_TRY(encode_segment(t, w, text + start, i - start, out));
        start = i;
        i += 2;
    }
    return encode_segment(t, w, text + start, len - start, out);
}
