/* tok_gguf.c — a tokenizer from GGUF metadata, with llama.cpp's defaults.
 *
 * Keys read (all tokenizer.ggml.*):
 *   model            str   "llama" (SPM) | "gpt2" (byte-level BPE)                 required
 *   tokens           [str] the vocabulary, id = index                              required
 *   scores           [f32] SPM merge priority (i32 accepted), one per token         optional
 *   token_type       [i32] sym_token_type (0 = undefined, read as normal)          optional
 *   merges           [str] "left right", rank = index                              required (gpt2)
 *   pre              str   pre-tokenizer name (gpt2; absent: "default")
 *   bos/eos/unknown/eot/eom_token_id  u32 (or -1 / 0xFFFFFFFF: none)
 *   add_bos_token, add_space_prefix   bool (SPM defaults: true, true; BPE: false, false)
 * general.name containing "phi3"/"phi-3" gives special tokens rstrip, as llama.cpp does.
 */
#include <ctype.h>
#include <string.h>

#include "base/log.h"
#include "text/tok_impl.h"

/* An optional token id key: absent -> *id unchanged; -1 / 0xFFFFFFFF -> -1 (none); anything else
 * must be a valid id. */
static sym_status get_id(const sym_gguf *g, const char *key, int32_t n_vocab, int32_t *id) {
    if (!sym_gguf_find(g, key)) return SYM_OK;
    int64_t v;
    SYM_TRY(sym_gguf_get_i64(g, key, &v));
    if (v == -1 || v == (int64_t)UINT32_MAX) {
        *id = -1;
        return SYM_OK;
    }
    if (v < 0 || v >= n_vocab)
        return SYM_FAIL(SYM_ERR_FORMAT,
                        "tokenizer: %s = %lld is not a token id (vocabulary has "
                        "%d tokens)",
                        key, (long long)v, n_vocab);
    *id = (int32_t)v;
    return SYM_OK;
}

static bool contains_ci(sym_str s, const char *needle) {
    size_t n = strlen(needle);
    for (uint64_t i = 0; i + n <= s.len; i++) {
        size_t k = 0;
        while (k < n && tolower((unsigned char)s.ptr[i + k]) == needle[k])
            k++;
        if (k == n) return true;
    }
    return false;
}

static sym_status load_vocab(sym_tokenizer *t, const sym_gguf *g, const sym_gguf_kv *tokens) {
    int32_t n = t->n_vocab;
    const sym_gguf_kv *scores = NULL, *types = NULL;
    if (sym_gguf_find(g, "tokenizer.ggml.scores")) {
        SYM_TRY(sym_gguf_get_arr(g, "tokenizer.ggml.scores", SYM_GGUF_TYPE_COUNT, &scores));
        if (scores->arr_type != SYM_GGUF_F32 && scores->arr_type != SYM_GGUF_I32 &&
            scores->arr_type != SYM_GGUF_F64)
            return SYM_FAIL(SYM_ERR_FORMAT,
                            "tokenizer: tokenizer.ggml.scores holds %s (f32 "
                            "expected)",
                            sym_gguf_type_name(scores->arr_type));
        if (scores->arr_n != (uint64_t)n)
            return SYM_FAIL(SYM_ERR_FORMAT,
                            "tokenizer: tokenizer.ggml.scores has %llu entries "
                            "for %d tokens",
                            (unsigned long long)scores->arr_n, n);
    }
    if (sym_gguf_find(g, "tokenizer.ggml.token_type")) {
        SYM_TRY(sym_gguf_get_arr(g, "tokenizer.ggml.token_type", SYM_GGUF_TYPE_COUNT, &types));
        if (types->arr_type == SYM_GGUF_STRING || types->arr_type == SYM_GGUF_ARRAY ||
            types->arr_type == SYM_GGUF_F32 || types->arr_type == SYM_GGUF_F64 ||
            types->arr_type == SYM_GGUF_BOOL)
            return SYM_FAIL(SYM_ERR_FORMAT,
                            "tokenizer: tokenizer.ggml.token_type holds %s "
                            "(i32 expected)",
                            sym_gguf_type_name(types->arr_type));
        if (types->arr_n != (uint64_t)n)
            return SYM_FAIL(SYM_ERR_FORMAT,
                            "tokenizer: tokenizer.ggml.token_type has %llu "
                            "entries for %d tokens",
                            (unsigned long long)types->arr_n, n);
    }
    for (int32_t id = 0; id < n; id++) {
        sym_str s = tokens->strs[id];
        SYM_TRY(sym_tok_set_text(t, id, s.ptr, (size_t)s.len));
        tok_entry *e = &t->tokens[id];
        e->score = scores ? (float)sym_gguf_arr_f64(scores, (uint64_t)id) : 0.0f;
        int64_t type = types ? sym_gguf_arr_i64(types, (uint64_t)id) : SYM_TOKEN_NORMAL;
        if (type == 0) type = SYM_TOKEN_NORMAL;
        if (type < SYM_TOKEN_NORMAL || type > SYM_TOKEN_BYTE)
            return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: token %d has type %lld (1..6 expected)", id,
                            (long long)type);
        e->type = (uint8_t)type;
    }
    return SYM_OK;
}

sym_status sym_tokenizer_create_gguf(const sym_gguf *g, sym_tokenizer **out) {
    *out = NULL;
    sym_str model = {0}, pre = {0}, name = {0};
    SYM_TRY(sym_gguf_get_str(g, "tokenizer.ggml.model", &model));
    bool spm = sym_str_eq(model, "llama");
    if (!spm && !sym_str_eq(model, "gpt2")) {
        if (sym_str_eq(model, "no_vocab") || sym_str_eq(model, "none"))
            return SYM_FAIL(SYM_ERR_UNSUPPORTED, "tokenizer: the model has no vocabulary");
        return SYM_FAIL(SYM_ERR_UNSUPPORTED,
                        "tokenizer: tokenizer model '%.*s' is not supported "
                        "(llama, gpt2)",
                        (int)(model.len > 64 ? 64 : model.len), model.ptr);
    }
    const sym_gguf_kv *tokens = NULL, *merges = NULL;
    SYM_TRY(sym_gguf_get_arr(g, "tokenizer.ggml.tokens", SYM_GGUF_STRING, &tokens));
    if (tokens->arr_n == 0) return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: empty vocabulary");
    if (tokens->arr_n > (1u << 30))
        return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: vocabulary of %llu tokens is too large",
                        (unsigned long long)tokens->arr_n);
    if (!spm) {
        if (!sym_gguf_find(g, "tokenizer.ggml.merges"))
            return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: BPE vocabulary without merges "
                                            "(tokenizer.ggml.merges)");
        SYM_TRY(sym_gguf_get_arr(g, "tokenizer.ggml.merges", SYM_GGUF_STRING, &merges));
        if (merges->arr_n == 0)
            return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: BPE vocabulary without merges "
                                            "(tokenizer.ggml.merges is empty)");
    }
    SYM_TRY(sym_gguf_get_str_opt(g, "tokenizer.ggml.pre", &pre));
    SYM_TRY(sym_gguf_get_str_opt(g, "general.name", &name));

    sym_tokenizer *t = NULL;
    SYM_TRY(sym_tok_alloc((int32_t)tokens->arr_n, &t));
    sym_status st = SYM_OK;
    int32_t n = t->n_vocab;
    t->algo = spm ? TOK_ALGO_SPM : TOK_ALGO_BPE;
    t->model_name = spm ? "llama" : "gpt2";
    bool add_space_prefix = spm;
    t->add_bos = spm;
    t->byte_level = !spm;
    t->escape_spaces = spm;
    if (spm) {
        /* llama.cpp's defaults for SPM, dropped when out of range */
        t->bos = n > 1 ? 1 : -1;
        t->eos = n > 2 ? 2 : -1;
        t->unk = 0;
        strcpy(t->pre_name, "default");
    } else {
        if (pre.len == 0) {
            SYM_WARN("tokenizer: no tokenizer.ggml.pre; using the 'default' pre-tokenizer");
            pre.ptr = "default";
            pre.len = 7;
        }
        SYM_TRY_GOTO(sym_pretok_init_named(t, pre.ptr, (size_t)pre.len));
    }
    SYM_TRY_GOTO(load_vocab(t, g, tokens));

    SYM_TRY_GOTO(get_id(g, "tokenizer.ggml.bos_token_id", n, &t->bos));
    SYM_TRY_GOTO(get_id(g, "tokenizer.ggml.eos_token_id", n, &t->eos));
    SYM_TRY_GOTO(get_id(g, "tokenizer.ggml.unknown_token_id", n, &t->unk));
    int32_t eot = -1, eom = -1;
    SYM_TRY_GOTO(get_id(g, "tokenizer.ggml.eot_token_id", n, &eot));
    SYM_TRY_GOTO(get_id(g, "tokenizer.ggml.eom_token_id", n, &eom));
    SYM_TRY_GOTO(sym_gguf_get_bool_opt(g, "tokenizer.ggml.add_bos_token", &t->add_bos));
    SYM_TRY_GOTO(sym_gguf_get_bool_opt(g, "tokenizer.ggml.add_space_prefix", &add_space_prefix));
    if (t->add_bos && t->bos < 0)
        SYM_FAIL_GOTO(SYM_ERR_FORMAT, "tokenizer: add_bos_token is set but there is no BOS token");
    /* the prefix space: "▁" for SPM; byte-level BPE files do not set it (ignored if they do) */
    t->prefix = spm && add_space_prefix ? TOK_PREFIX_ALWAYS : TOK_PREFIX_NEVER;
    t->strip = t->prefix;

    if (contains_ci(name, "phi3") || contains_ci(name, "phi-3")) {
        /* Phi-3's special tokens swallow the whitespace after them (llama.cpp does the same) */
        for (int32_t id = 0; id < n; id++) {
            tok_entry *e = &t->tokens[id];
            if (e->type != SYM_TOKEN_CONTROL && e->type != SYM_TOKEN_USER_DEFINED &&
                e->type != SYM_TOKEN_UNKNOWN)
                continue;
            const char *s = sym_tok_text(t, id);
            bool keep = (e->text_len == 5 && !memcmp(s, "<unk>", 5)) ||
                        (e->text_len == 3 && !memcmp(s, "<s>", 3)) ||
                        (e->text_len == 13 && !memcmp(s, "<|endoftext|>", 13));
            if (!keep) e->flags |= TOKF_RSTRIP;
        }
    }

    SYM_TRY_GOTO(sym_tok_finish(t));
    sym_tok_add_eog(t, eot);
    sym_tok_add_eog(t, eom);

    if (merges) {
        SYM_TRY_GOTO(sym_tok_merges_init(&t->merges, (size_t)merges->arr_n));
        size_t skipped = 0;
        uint64_t n_merges = merges->arr_n < INT32_MAX ? merges->arr_n : INT32_MAX;
        for (uint64_t i = 0; i < n_merges; i++)
            SYM_TRY_GOTO(sym_tok_merges_add_str(t, merges->strs[i].ptr, (size_t)merges->strs[i].len,
                                                (int32_t)i, &skipped));
        if (t->merges.n == 0)
            SYM_FAIL_GOTO(SYM_ERR_FORMAT,
                          "tokenizer: none of the %llu merges names tokens of "
                          "the vocabulary",
                          (unsigned long long)merges->arr_n);
        if (skipped)
            SYM_WARN("tokenizer: skipped %zu of %llu merges (malformed, or naming tokens the "
                     "vocabulary lacks)",
                     skipped, (unsigned long long)merges->arr_n);
    }
    *out = t;
    return SYM_OK;
fail:
    sym_tokenizer_destroy(t);
    return st;
}
