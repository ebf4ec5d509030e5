/* writer_vocab.c — vocabularies for synthetic models: a generated SentencePiece-style one, or the
 * tokenizer of a real GGUF file; and the equivalent Hugging Face tokenizer.json for either. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "model/writer_internal.h"

/* ---- a string -> id hash set over a caller's token table ------------------------------------- */

typedef sym_str (*key_fn)(const void *ctx, int32_t id);

typedef struct strmap {
    int32_t *slots; /* -1: empty */
    uint64_t mask;
} strmap;

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static sym_status map_init(strmap *m, uint64_t n) {
    uint64_t cap = 64;
    while (cap < 2 * n) cap *= 2;
    m->slots = sym_malloc((size_t)cap * sizeof *m->slots);
    if (!m->slots) return SYM_FAIL(SYM_ERR_OOM, "make-model: out of memory");
    memset(m->slots, 0xff, (size_t)cap * sizeof *m->slots);
    m->mask = cap - 1;
    return SYM_OK;
}

/* The slot holding (p, n), or the empty slot where it would go. */
static uint64_t map_slot(const strmap *m, const void *ctx, key_fn key, const char *p, size_t n) {
    uint64_t i = hash_bytes(p, n) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        int32_t id = m->slots[i];
        if (id < 0) return i;
        sym_str k = key(ctx, id);
        if (k.len == n && !memcmp(k.ptr, p, n)) return i;
    }
}

static int32_t map_find(const strmap *m, const void *ctx, key_fn key, const char *p, size_t n) {
    return m->slots[map_slot(m, ctx, key, p, n)];
}

/* ---- the synthetic vocabulary ---------------------------------------------------------------------- */

typedef struct builder {
    sym_wvocab *v;
    uint32_t cap, count;
    uint64_t *off;
    uint32_t *len;
    size_t pool_n, pool_cap;
    strmap map;
    sym_status st;
} builder;

static sym_str builder_key(const void *ctx, int32_t id) {
    const builder *b = ctx;
    return (sym_str){b->v->pool + b->off[id], b->len[id]};
}

/* Adds a token unless present or the vocabulary is full. */
static void add(builder *b, const char *s, size_t n, int type) {
    if (b->st != SYM_OK || b->count == b->cap) return;
    uint64_t slot = map_slot(&b->map, b, builder_key, s, n);
    if (b->map.slots[slot] >= 0) return;
    if (b->pool_cap - b->pool_n < n) {
        size_t cap = b->pool_cap * 2 + n;
        char *p = sym_realloc(b->v->pool, cap);
        if (!p) {
            b->st = SYM_FAIL(SYM_ERR_OOM, "make-model: out of memory for the vocabulary");
            return;
        }
        b->v->pool = p;
        b->pool_cap = cap;
    }
    memcpy(b->v->pool + b->pool_n, s, n);
    uint32_t id = b->count++;
    b->off[id] = b->pool_n;
    b->len[id] = (uint32_t)n;
    b->pool_n += n;
    b->map.slots[slot] = (int32_t)id;
    b->v->types[id] = type;
    b->v->scores[id] = type == SYM_TOKEN_NORMAL ? -(float)(id) : 0.0f;
}

/* Adds every prefix of s that ends on a UTF-8 character boundary, shortest first, so each
 * multi-character piece is (a shorter piece) + (one character): a chain of BPE merges. */
static void add_chain(builder *b, const char *s) {
    size_t n = strlen(s);
    for (size_t k = 1; k <= n; k++)
        if (k == n || ((unsigned char)s[k] & 0xc0) != 0x80) add(b, s, k, SYM_TOKEN_NORMAL);
}

#define SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's word-start marker */

static const char *const k_words[] = {
    "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are",
    "as", "with", "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by",
    "word", "but", "not", "what", "all", "were", "we", "when", "your", "can", "said", "there",
    "use", "an", "each", "which", "she", "do", "how", "their", "if", "will", "up", "other",
    "about", "out", "many", "then", "them", "these", "so", "some", "her", "would", "make",
    "like", "him", "into", "time", "has", "look", "two", "more", "write", "go", "see", "number",
    "no", "way", "could", "people", "my", "than", "first", "water", "been", "call", "who",
    "its", "now", "find", "long", "down", "day", "did", "get", "come", "made", "may", "part",
};
static const char *const k_suffixes[] = {
    "ing", "ed", "er", "es", "ly", "tion", "ment", "ness", "al", "re", "on", "en", "an", "or",
    "ar", "st", "th", "he", "in", "ou", "ll", "ve", "nd", "ent",
};

sym_status sym_wvocab_synthesize(uint32_t n, sym_wvocab *v) {
    memset(v, 0, sizeof *v);
    snprintf(v->model, sizeof v->model, "llama");
    v->unk = 0;
    v->bos = 1;
    v->eos = 2;
    builder b = {v, n, 0, NULL, NULL, 0, 0, {NULL, 0}, SYM_OK};
    v->tok_store = sym_calloc(n, sizeof *v->tok_store);
    v->scores = sym_calloc(n, sizeof *v->scores);
    v->types = sym_calloc(n, sizeof *v->types);
    b.off = sym_calloc(n, sizeof *b.off);
    b.len = sym_calloc(n, sizeof *b.len);
    b.pool_cap = (size_t)n * 8;
    v->pool = sym_malloc(b.pool_cap);
    if (!v->tok_store || !v->scores || !v->types || !b.off || !b.len || !v->pool)
        b.st = SYM_FAIL(SYM_ERR_OOM, "make-model: out of memory for the vocabulary");
    if (b.st == SYM_OK) b.st = map_init(&b.map, n);

    add(&b, "<unk>", 5, SYM_TOKEN_UNKNOWN);
    add(&b, "<s>", 3, SYM_TOKEN_CONTROL);
    add(&b, "</s>", 4, SYM_TOKEN_CONTROL);
    for (int i = 0; i < 256; i++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", i);
        add(&b, t, 6, SYM_TOKEN_BYTE);
    }
    add_chain(&b, SPACE);
    const char *chars = "etaoinshrdlucmfwypvbgkqjxzETAOINSHRDLUCMFWYPVBGKQJXZ0123456789.,!?'\"-:;()";
    for (const char *c = chars; *c; c++) add(&b, c, 1, SYM_TOKEN_NORMAL);
    for (size_t i = 0; i < sizeof k_words / sizeof k_words[0]; i++) {
        char w[64];
        snprintf(w, sizeof w, SPACE "%s", k_words[i]);
        add_chain(&b, w);
    }
    for (size_t i = 0; i < sizeof k_suffixes / sizeof k_suffixes[0]; i++)
        add_chain(&b, k_suffixes[i]);
    /* then pseudo-words of consonant-vowel syllables, as many as needed */
    static const char cons[] = "bcdfghklmnprstvw", vow[] = "aeiou";
    for (uint64_t k = 1; b.st == SYM_OK && b.count < n; k++) {
        char w[96] = SPACE;
        size_t l = strlen(w);
        for (uint64_t x = k; x > 0 && l + 3 < sizeof w; x = (x - 1) / 80) {
            uint64_t syl = (x - 1) % 80;
            w[l++] = cons[syl / 5];
            w[l++] = vow[syl % 5];
        }
        w[l] = '\0';
        add_chain(&b, w);
    }
    if (b.st == SYM_OK)
        for (uint32_t i = 0; i < n; i++)
            v->tok_store[i] = (sym_str){v->pool + b.off[i], b.len[i]};
    v->tokens = v->tok_store;
    v->n = n;
    sym_free(b.off);
    sym_free(b.len);
    sym_free(b.map.slots);
    if (b.st != SYM_OK) sym_wvocab_free(v);
    return b.st;
}

/* ---- a real vocabulary from GGUF ------------------------------------------------------------ */

static int64_t token_id(const sym_gguf *g, const char *key) {
    uint32_t v = UINT32_MAX;
    if (sym_gguf_get_u32_opt(g, key, &v) != SYM_OK || v == UINT32_MAX) return -1;
    return v;
}

static sym_status load(const char *path, sym_wvocab *v) {
    SYM_TRY(sym_gguf_open(path, &v->src));
    const sym_gguf *g = v->src;
    sym_str model;
    const sym_gguf_kv *tokens, *kv;
    SYM_TRY(sym_gguf_get_str(g, "tokenizer.ggml.model", &model));
    if (model.len >= sizeof v->model || memchr(model.ptr, 0, model.len))
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "make-model: unknown tokenizer model in '%s'", path);
    memcpy(v->model, model.ptr, model.len);
    SYM_TRY(sym_gguf_get_arr(g, "tokenizer.ggml.tokens", SYM_GGUF_STRING, &tokens));
    if (tokens->arr_n == 0 || tokens->arr_n > SYM_ARCH_MAX_DIM)
        return SYM_FAIL(SYM_ERR_FORMAT, "make-model: '%s' has %llu tokens (1..%d expected)", path,
                        (unsigned long long)tokens->arr_n, SYM_ARCH_MAX_DIM);
    v->n = (uint32_t)tokens->arr_n;
    v->tokens = tokens->strs;
    v->scores = sym_calloc(v->n, sizeof *v->scores);
    v->types = sym_calloc(v->n, sizeof *v->types);
    if (!v->scores || !v->types) return SYM_FAIL(SYM_ERR_OOM, "make-model: out of memory");
    for (uint32_t i = 0; i < v->n; i++) v->types[i] = SYM_TOKEN_NORMAL;
    if ((kv = sym_gguf_find(g, "tokenizer.ggml.scores")) != NULL) {
        SYM_TRY(sym_gguf_get_arr(g, "tokenizer.ggml.scores", SYM_GGUF_F32, &kv));
        if (kv->arr_n != v->n)
            return SYM_FAIL(SYM_ERR_FORMAT, "make-model: '%s' has %llu scores for %u tokens",
                            path, (unsigned long long)kv->arr_n, v->n);
        for (uint32_t i = 0; i < v->n; i++) v->scores[i] = (float)sym_gguf_arr_f64(kv, i);
    }
    if ((kv = sym_gguf_find(g, "tokenizer.ggml.token_type")) != NULL) {
        SYM_TRY(sym_gguf_get_arr(g, "tokenizer.ggml.token_type", SYM_GGUF_I32, &kv));
        if (kv->arr_n != v->n)
            return SYM_FAIL(SYM_ERR_FORMAT, "make-model: '%s' has %llu token types for %u "
                            "tokens", path, (unsigned long long)kv->arr_n, v->n);
        for (uint32_t i = 0; i < v->n; i++) v->types[i] = (int32_t)sym_gguf_arr_i64(kv, i);
    }
    if (sym_gguf_find(g, "tokenizer.ggml.merges")) {
        SYM_TRY(sym_gguf_get_arr(g, "tokenizer.ggml.merges", SYM_GGUF_STRING, &kv));
        v->n_merges = kv->arr_n;
        v->merges = kv->strs;
    }
    v->bos = token_id(g, "tokenizer.ggml.bos_token_id");
    v->eos = token_id(g, "tokenizer.ggml.eos_token_id");
    v->unk = token_id(g, "tokenizer.ggml.unknown_token_id");
    return SYM_OK;
}

sym_status sym_wvocab_load(const char *path, sym_wvocab *v) {
    memset(v, 0, sizeof *v);
    sym_status st = load(path, v);
    if (st != SYM_OK) {
        sym_error_prefix("--vocab-from");
        sym_wvocab_free(v);
    }
    return st;
}

void sym_wvocab_free(sym_wvocab *v) {
    sym_gguf_close(v->src);
    sym_free(v->tok_store);
    sym_free(v->pool);
    sym_free(v->scores);
    sym_free(v->types);
    memset(v, 0, sizeof *v);
}

/* ---- tokenizer.json -------------------------------------------------------------------------- */

typedef struct merge {
    int32_t l, r, id;
    float score;
} merge;

static int cmp_merge(const void *a, const void *b) {
    const merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    if (x->l != y->l) return x->l < y->l ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

static sym_str vocab_key(const void *ctx, int32_t id) { return ((const sym_wvocab *)ctx)->tokens[id]; }

/* SentencePiece pieces -> BPE merges, as HF's SentencePieceExtractor: every split of a normal
 * piece into two normal pieces, ordered by the merged piece's score (then id, left, right). */
static sym_status spm_merges(const sym_wvocab *v, merge **out, uint64_t *n_out) {
    strmap map = {0};
    SYM_TRY(map_init(&map, v->n));
    for (uint32_t i = 0; i < v->n; i++) {
        if (v->types[i] != SYM_TOKEN_NORMAL) continue;
        uint64_t s = map_slot(&map, v, vocab_key, v->tokens[i].ptr, (size_t)v->tokens[i].len);
        if (map.slots[s] < 0) map.slots[s] = (int32_t)i;
    }
    merge *m = NULL;
    uint64_t n = 0, cap = 0;
    sym_status st = SYM_OK;
    for (uint32_t i = 0; i < v->n && st == SYM_OK; i++) {
        if (v->types[i] != SYM_TOKEN_NORMAL) continue;
        const char *p = v->tokens[i].ptr;
        size_t len = (size_t)v->tokens[i].len;
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)p[k] & 0xc0) == 0x80) continue; /* inside a character */
            int32_t l = map_find(&map, v, vocab_key, p, k);
            int32_t r = l < 0 ? -1 : map_find(&map, v, vocab_key, p + k, len - k);
            if (r < 0) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                merge *nm = sym_realloc(m, (size_t)cap * sizeof *m);
                if (!nm) {
                    st = SYM_FAIL(SYM_ERR_OOM, "make-model: out of memory for merges");
                    break;
                }
                m = nm;
            }
            m[n++] = (merge){l, r, (int32_t)i, v->scores ? v->scores[i] : -(float)i};
        }
    }
    sym_free(map.slots);
    if (st != SYM_OK) {
        sym_free(m);
        return st;
    }
    qsort(m, (size_t)n, sizeof *m, cmp_merge);
    *out = m;
    *n_out = n;
    return SYM_OK;
}

static json_object *jadd(json_object *o, const char *key, json_object *v, bool *oom) {
    if (!o || !v || json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        *oom = true;
        return NULL;
    }
    return v;
}

static void jnull(json_object *o, const char *key, bool *oom) {
    if (!o || json_object_object_add(o, key, NULL) != 0) *oom = true;
}

static void jpush(json_object *a, json_object *v, bool *oom) {
    if (!a || !v || json_object_array_add(a, v) != 0) {
        json_object_put(v);
        *oom = true;
    }
}

static json_object *jstr_len(const sym_str *s) { return json_object_new_string_len(s->ptr, (int)s->len); }

static json_object *obj2(const char *k1, json_object *v1, const char *k2, json_object *v2,
                         bool *oom) {
    json_object *o = json_object_new_object();
    jadd(o, k1, v1, oom);
    if (k2) jadd(o, k2, v2, oom);
    if (!o) *oom = true;
    return o;
}

/* The parts of tokenizer.json around the model: Llama-2 style for SentencePiece vocabularies,
 * GPT-2 style (byte-level) for BPE ones. */
static void frame(json_object *root, const sym_wvocab *v, bool spm, bool *oom) {
    jadd(root, "version", json_object_new_string("1.0"), oom);
    jnull(root, "truncation", oom);
    jnull(root, "padding", oom);
    json_object *added = jadd(root, "added_tokens", json_object_new_array(), oom);
    for (uint32_t i = 0; i < v->n && !*oom; i++) {
        int t = v->types[i];
        if (t != SYM_TOKEN_UNKNOWN && t != SYM_TOKEN_CONTROL && t != SYM_TOKEN_USER_DEFINED)
            continue;
        json_object *a = json_object_new_object();
        jadd(a, "id", json_object_new_int64(i), oom);
        jadd(a, "content", jstr_len(&v->tokens[i]), oom);
        jadd(a, "single_word", json_object_new_boolean(0), oom);
        jadd(a, "lstrip", json_object_new_boolean(0), oom);
        jadd(a, "rstrip", json_object_new_boolean(0), oom);
        jadd(a, "normalized", json_object_new_boolean(t == SYM_TOKEN_USER_DEFINED), oom);
        jadd(a, "special", json_object_new_boolean(t != SYM_TOKEN_USER_DEFINED), oom);
        jpush(added, a, oom);
    }
    if (spm) {
        json_object *norms = json_object_new_array();
        jpush(norms, obj2("type", json_object_new_string("Prepend"), "prepend",
                          json_object_new_string(SPACE), oom), oom);
        json_object *rep = obj2("type", json_object_new_string("Replace"), "pattern",
                                obj2("String", json_object_new_string(" "), NULL, NULL, oom), oom);
        jadd(rep, "content", json_object_new_string(SPACE), oom);
        jpush(norms, rep, oom);
        jadd(root, "normalizer", obj2("type", json_object_new_string("Sequence"), "normalizers",
                                      norms, oom), oom);
        jnull(root, "pre_tokenizer", oom);
        if (v->bos >= 0 && (uint64_t)v->bos < v->n) {
            /* TemplateProcessing: <s> $A */
            json_object *single = json_object_new_array();
            json_object *bos = obj2("id", jstr_len(&v->tokens[v->bos]), "type_id",
                                    json_object_new_int(0), oom);
            jpush(single, obj2("SpecialToken", bos, NULL, NULL, oom), oom);
            jpush(single, obj2("Sequence", obj2("id", json_object_new_string("A"), "type_id",
                                                json_object_new_int(0), oom), NULL, NULL, oom),
                  oom);
            json_object *pp = obj2("type", json_object_new_string("TemplateProcessing"),
                                   "single", single, oom);
            json_object *ids = json_object_new_array(), *toks = json_object_new_array();
            jpush(ids, json_object_new_int64(v->bos), oom);
            jpush(toks, jstr_len(&v->tokens[v->bos]), oom);
            json_object *sp = obj2("id", jstr_len(&v->tokens[v->bos]), "ids", ids, oom);
            jadd(sp, "tokens", toks, oom);
            char bos_key[256];
            snprintf(bos_key, sizeof bos_key, "%.*s", (int)(v->tokens[v->bos].len < 255 ?
                     v->tokens[v->bos].len : 255), v->tokens[v->bos].ptr);
            jadd(pp, "special_tokens", obj2(bos_key, sp, NULL, NULL, oom), oom);
            jadd(root, "post_processor", pp, oom);
        } else {
            jnull(root, "post_processor", oom);
        }
        json_object *decs = json_object_new_array();
        json_object *rep2 = obj2("type", json_object_new_string("Replace"), "pattern",
                                 obj2("String", json_object_new_string(SPACE), NULL, NULL, oom),
                                 oom);
        jadd(rep2, "content", json_object_new_string(" "), oom);
        jpush(decs, rep2, oom);
        jpush(decs, obj2("type", json_object_new_string("ByteFallback"), NULL, NULL, oom), oom);
        jpush(decs, obj2("type", json_object_new_string("Fuse"), NULL, NULL, oom), oom);
        json_object *strip = obj2("type", json_object_new_string("Strip"), "content",
                                  json_object_new_string(" "), oom);
        jadd(strip, "start", json_object_new_int(1), oom);
        jadd(strip, "stop", json_object_new_int(0), oom);
        jpush(decs, strip, oom);
        jadd(root, "decoder", obj2("type", json_object_new_string("Sequence"), "decoders", decs,
                                   oom), oom);
    } else {
        jnull(root, "normalizer", oom);
        const char *parts[3] = {"pre_tokenizer", "post_processor", "decoder"};
        for (int i = 0; i < 3; i++) {
            json_object *bl = obj2("type", json_object_new_string("ByteLevel"), "add_prefix_space",
                                   json_object_new_boolean(0), oom);
            jadd(bl, "trim_offsets", json_object_new_boolean(1), oom);
            jadd(bl, "use_regex", json_object_new_boolean(1), oom);
            jadd(root, parts[i], bl, oom);
        }
    }
}

static sym_status build_json(const sym_wvocab *v, bool spm, const merge *m, uint64_t n_m,
                             char **text, size_t *len) {
    bool oom = false;
    json_object *root = json_object_new_object();
    if (!root) oom = true;
    frame(root, v, spm, &oom);
    json_object *model = jadd(root, "model", json_object_new_object(), &oom);
    jadd(model, "type", json_object_new_string("BPE"), &oom);
    jnull(model, "dropout", &oom);
    if (spm) jadd(model, "unk_token", json_object_new_string("<unk>"), &oom);
    else jnull(model, "unk_token", &oom);
    jnull(model, "continuing_subword_prefix", &oom);
    jnull(model, "end_of_word_suffix", &oom);
    jadd(model, "fuse_unk", json_object_new_boolean(spm), &oom);
    jadd(model, "byte_fallback", json_object_new_boolean(spm), &oom);
    json_object *vocab = jadd(model, "vocab", json_object_new_object(), &oom);
    char key[1024];
    for (uint32_t i = 0; i < v->n && !oom; i++) {
        const sym_str *t = &v->tokens[i];
        if (t->len >= sizeof key || memchr(t->ptr, 0, (size_t)t->len)) continue;
        memcpy(key, t->ptr, (size_t)t->len);
        key[t->len] = '\0';
        jadd(vocab, key, json_object_new_int64(i), &oom);
    }
    json_object *merges = jadd(model, "merges", json_object_new_array(), &oom);
    for (uint64_t i = 0; i < n_m && !oom; i++) {
        const sym_str *l = &v->tokens[m[i].l], *r = &v->tokens[m[i].r];
        if (memchr(l->ptr, ' ', (size_t)l->len) || memchr(r->ptr, ' ', (size_t)r->len)) continue;
        int n = snprintf(key, sizeof key, "%.*s %.*s", (int)l->len, l->ptr, (int)r->len, r->ptr);
        if (n > 0 && (size_t)n < sizeof key) jpush(merges, json_object_new_string(key), &oom);
    }
    for (uint64_t i = 0; i < v->n_merges && !oom && !spm; i++)
        jpush(merges, jstr_len(&v->merges[i]), &oom);
    const char *s = oom ? NULL : json_object_to_json_string_length(
                                     root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                     len);
    if (s) *text = sym_strndup(s, *len);
    json_object_put(root);
    if (!s || !*text) return SYM_FAIL(SYM_ERR_OOM, "make-model: out of memory for tokenizer.json");
    return SYM_OK;
}

sym_status sym_wvocab_tokenizer_json(const sym_wvocab *v, char **text, size_t *len) {
    *text = NULL;
    bool spm = !strcmp(v->model, "llama");
    if (!spm && strcmp(v->model, "gpt2") != 0)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "make-model: tokenizer model '%s' cannot be written "
                        "as tokenizer.json (llama and gpt2 can)", v->model);
    if (!spm && !v->merges)
        return SYM_FAIL(SYM_ERR_FORMAT, "make-model: the gpt2 vocabulary has no merges");
    merge *m = NULL;
    uint64_t n_m = 0;
    if (spm) SYM_TRY(spm_merges(v, &m, &n_m));
    sym_status st = build_json(v, spm, m, n_m, text, len);
    sym_free(m);
    return st;
}
