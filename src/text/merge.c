/* merge.c — what the SPM and BPE merge loops share: per-call scratch (symbols + a binary heap of
 * candidate merges) and the byte fallback for text no token covers. */
#include <string.h>

#include "base/alloc.h"
#include "text/tok_impl.h"

sym_status sym_tok_work_reserve(sym_tok_work *w, size_t n_sym) {
    if (n_sym > w->cap_sym) {
        size_t cap = w->cap_sym ? w->cap_sym : 64;
        while (cap < n_sym)
            cap *= 2;
        tok_symbol *s = sym_realloc(w->sym, cap * sizeof *s);
        if (!s) return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory for %zu symbols", cap);
        w->sym = s;
        w->cap_sym = cap;
    }
    w->n_heap = 0;
    return SYM_OK;
}

void sym_tok_work_free(sym_tok_work *w) {
    sym_free(w->sym);
    sym_free(w->heap);
    memset(w, 0, sizeof *w);
}

static int before(const tok_bigram *a, const tok_bigram *b) { return a->key < b->key; }

sym_status sym_tok_heap_push(sym_tok_work *w, tok_bigram b) {
    if (w->n_heap == w->cap_heap) {
        size_t cap = w->cap_heap ? w->cap_heap * 2 : 256;
        tok_bigram *h = sym_realloc(w->heap, cap * sizeof *h);
        if (!h) return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory for the merge queue");
        w->heap = h;
        w->cap_heap = cap;
    }
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&b, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = b;
    return SYM_OK;
}

tok_bigram sym_tok_heap_pop(sym_tok_work *w) {
    tok_bigram top = w->heap[0];
    tok_bigram last = w->heap[--w->n_heap];
    size_t n = w->n_heap, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

void sym_tok_emit_bytes(const sym_tokenizer *t, const uint8_t *p, size_t len, sym_tok_sink *out) {
    for (size_t i = 0; i < len; i++) {
        int32_t id = t->byte_token[p[i]];
        if (id < 0) id = t->unk;
        if (id >= 0) sym_tok_sink_push(out, id);
    }
}
