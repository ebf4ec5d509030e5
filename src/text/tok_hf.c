/* tok_hf.c — a tokenizer from a Hugging Face tokenizer.json (json-c).
 *
 * What is read:
 *   model        {"type": "BPE", "vocab": {text: id}, "merges": ["a b" | ["a", "b"]],
 *                 "unk_token", "byte_fallback", "fuse_unk", "ignore_merges"}
 *   added_tokens [{"id", "content", "special", "lstrip", "rstrip"}]: special -> control token,
 *                 otherwise user-defined (matched in the text whatever parse_special says)
 *   normalizer   null | Sequence of Prepend("▁") / Replace(" " -> "▁") | NFC (not applied,
 *                 with a warning)
 *   pre_tokenizer null | ByteLevel | Split(Regex|String, "Isolated") | Digits | Punctuation |
 *                 Metaspace | Sequence of those
 *   decoder      ByteLevel, or Strip / Metaspace: decode removes the prefix space again
 *   post_processor TemplateProcessing whose single template starts with a special token: BOS
 * tokenizer_config.json (optional): bos_token, eos_token, add_bos_token override the above.
 * Anything else that changes the result (other models, normalizers, split behaviours) is
 * SYM_ERR_UNSUPPORTED rather than a silently different tokenization.
 */
#include <json-c/json.h>
#include <limits.h>
#include <string.h>

#include "base/log.h"
#include "text/tok_impl.h"

#define SPACE_ESC "\xe2\x96\x81"

typedef struct json_object jobj;

static jobj *get(jobj *o, const char *key) {
    jobj *v = NULL;
    if (!o || json_object_get_type(o) != json_type_object) return NULL;
    if (!json_object_object_get_ex(o, key, &v)) return NULL;
    return json_object_get_type(v) == json_type_null ? NULL : v;
}

static const char *get_str(jobj *o, const char *key) {
    jobj *v = get(o, key);
    return v && json_object_get_type(v) == json_type_string ? json_object_get_string(v) : NULL;
}

static bool get_bool(jobj *o, const char *key, bool dflt) {
    jobj *v = get(o, key);
    return v && json_object_get_type(v) == json_type_boolean ? json_object_get_boolean(v) : dflt;
}

static bool str_is(const char *s, const char *z) { return s && strcmp(s, z) == 0; }

static sym_status parse(const char *text, size_t len, const char *what, jobj **out) {
    *out = NULL;
    if (len > INT_MAX) return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: %s is too large", what);
    json_tokener *tok = json_tokener_new();
    if (!tok) return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory parsing %s", what);
    jobj *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o || err != json_tokener_success) {
        json_object_put(o);
        return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: %s is not valid JSON (%s, near byte %zu)", what,
                        json_tokener_error_desc(err), end);
    }
    if (json_object_get_type(o) != json_type_object) {
        json_object_put(o);
        return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: %s is not a JSON object", what);
    }
    *out = o;
    return SYM_OK;
}

/* A token id from JSON: an integer in [0, 2^30). */
static sym_status json_id(jobj *v, const char *what, int32_t *id) {
    if (!v || json_object_get_type(v) != json_type_int)
        return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: %s is not an integer id", what);
    int64_t x = json_object_get_int64(v);
    if (x < 0 || x >= (1 << 30))
        return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: %s has id %lld, out of range", what,
                        (long long)x);
    *id = (int32_t)x;
    return SYM_OK;
}

/* ---- vocabulary ---- */

static sym_status count_vocab(jobj *vocab, jobj *added, int32_t *n_vocab) {
    int64_t max_id = -1;
    json_object_object_foreach(vocab, key, val) {
        int32_t id = 0;
        SYM_TRY(json_id(val, key, &id));
        if (id > max_id) max_id = id;
    }
    size_t n_added = added ? json_object_array_length(added) : 0;
    for (size_t i = 0; i < n_added; i++) {
        int32_t id = 0;
        SYM_TRY(json_id(get(json_object_array_get_idx(added, i), "id"), "an added token", &id));
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: empty vocabulary");
    *n_vocab = (int32_t)max_id + 1;
    return SYM_OK;
}

static sym_status load_vocab(sym_tokenizer *t, jobj *vocab, jobj *added) {
    json_object_object_foreach(vocab, key, val) {
        int32_t id = json_object_get_int(val);
        if (t->tokens[id].type != SYM_TOKEN_UNUSED || t->tokens[id].text_len)
            return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: id %d is given to two tokens", id);
        SYM_TRY(sym_tok_set_text(t, id, key, strlen(key)));
        t->tokens[id].type = SYM_TOKEN_NORMAL;
        if (t->byte_fallback && strlen(key) == 6 && !memcmp(key, "<0x", 3) && key[5] == '>')
            t->tokens[id].type = SYM_TOKEN_BYTE;
    }
    size_t n_added = added ? json_object_array_length(added) : 0;
    for (size_t i = 0; i < n_added; i++) {
        jobj *a = json_object_array_get_idx(added, i);
        jobj *content = get(a, "content");
        if (!content || json_object_get_type(content) != json_type_string)
            return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: added token %zu has no content", i);
        int32_t id = json_object_get_int(get(a, "id"));
        const char *s = json_object_get_string(content);
        size_t n = (size_t)json_object_get_string_len(content);
        tok_entry *e = &t->tokens[id];
        if (e->text_len != n || memcmp(sym_tok_text(t, id), s, n) != 0)
            SYM_TRY(sym_tok_set_text(t, id, s, n));
        e->type = get_bool(a, "special", false) ? SYM_TOKEN_CONTROL : SYM_TOKEN_USER_DEFINED;
        if (get_bool(a, "lstrip", false)) e->flags |= TOKF_LSTRIP;
        if (get_bool(a, "rstrip", false)) e->flags |= TOKF_RSTRIP;
    }
    return SYM_OK;
}

/* ---- normalizer, pre-tokenizer, decoder ---- */

static sym_status unsupported(const char *what, const char *type) {
    return SYM_FAIL(SYM_ERR_UNSUPPORTED, "tokenizer: %s '%s' is not supported", what,
                    type ? type : "(no type)");
}

static sym_status load_normalizer(sym_tokenizer *t, jobj *n) {
    if (!n) return SYM_OK;
    const char *type = get_str(n, "type");
    if (str_is(type, "Sequence")) {
        jobj *list = get(n, "normalizers");
        size_t k = list ? json_object_array_length(list) : 0;
        for (size_t i = 0; i < k; i++)
            SYM_TRY(load_normalizer(t, json_object_array_get_idx(list, i)));
        return SYM_OK;
    }
    if (str_is(type, "Prepend") && str_is(get_str(n, "prepend"), SPACE_ESC)) {
        t->prefix = TOK_PREFIX_ALWAYS;
        return SYM_OK;
    }
    if (str_is(type, "Replace") && str_is(get_str(get(n, "pattern"), "String"), " ") &&
        str_is(get_str(n, "content"), SPACE_ESC)) {
        t->escape_spaces = true;
        return SYM_OK;
    }
    if (str_is(type, "NFC")) {
        SYM_WARN("tokenizer: NFC normalization is not applied (text already in NFC is "
                 "unaffected)");
        return SYM_OK;
    }
    return unsupported("normalizer", type);
}

/* PCRE2 pattern matching s literally. */
static sym_status literal_step(sym_tokenizer *t, const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 1000)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED,
                        "tokenizer: Split string of "
                        "%zu bytes",
                        n);
    char pat[2048];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}", s[i])) pat[o++] = '\\';
        pat[o++] = s[i];
    }
    return sym_pretok_add_regex(t, pat, o);
}

static sym_status load_pretok(sym_tokenizer *t, jobj *p, bool first) {
    if (!p) return SYM_OK;
    const char *type = get_str(p, "type");
    if (str_is(type, "Sequence")) {
        jobj *list = get(p, "pretokenizers");
        size_t k = list ? json_object_array_length(list) : 0;
        for (size_t i = 0; i < k; i++)
            SYM_TRY(load_pretok(t, json_object_array_get_idx(list, i), first && i == 0));
        return SYM_OK;
    }
    if (str_is(type, "ByteLevel")) {
        t->byte_level = true;
        if (get_bool(p, "add_prefix_space", false)) {
            /* a prefix per piece of an earlier split would be a different algorithm */
            if (!first)
                return unsupported("pre-tokenizer", "ByteLevel(add_prefix_space) after "
                                                    "another step");
            t->prefix = TOK_PREFIX_ALWAYS;
        }
        if (get_bool(p, "use_regex", true)) {
            static const char gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| "
                                       "?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
            SYM_TRY(sym_pretok_add_regex(t, gpt2, sizeof gpt2 - 1));
        }
        return SYM_OK;
    }
    if (str_is(type, "Split")) {
        const char *behavior = get_str(p, "behavior");
        if (!str_is(behavior, "Isolated") || get_bool(p, "invert", false))
            return unsupported("Split behaviour", behavior);
        jobj *pat = get(p, "pattern");
        const char *re = get_str(pat, "Regex"), *lit = get_str(pat, "String");
        if (re) return sym_pretok_add_regex(t, re, strlen(re));
        if (lit) return literal_step(t, lit);
        return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: Split without a pattern");
    }
    if (str_is(type, "Digits")) {
        const char *re = get_bool(p, "individual_digits", false) ? "\\p{N}" : "\\p{N}+";
        return sym_pretok_add_regex(t, re, strlen(re));
    }
    if (str_is(type, "Punctuation")) {
        const char *behavior = get_str(p, "behavior");
        const char *re = str_is(behavior, "Contiguous") ? "[\\p{P}\\$\\+<=>\\^~\\|`]+"
                                                        : "[\\p{P}\\$\\+<=>\\^~\\|`]";
        if (behavior && !str_is(behavior, "Contiguous") && !str_is(behavior, "Isolated"))
            return unsupported("Punctuation behaviour", behavior);
        return sym_pretok_add_regex(t, re, strlen(re));
    }
    if (str_is(type, "Metaspace")) {
        const char *rep = get_str(p, "replacement");
        if (rep && !str_is(rep, SPACE_ESC)) return unsupported("Metaspace replacement", rep);
        t->escape_spaces = true;
        const char *scheme = get_str(p, "prepend_scheme");
        if (str_is(scheme, "first"))
            t->prefix = TOK_PREFIX_FIRST;
        else if (str_is(scheme, "never"))
            t->prefix = TOK_PREFIX_NEVER;
        else if (scheme || get_bool(p, "add_prefix_space", true))
            t->prefix = TOK_PREFIX_ALWAYS;
        if (get_bool(p, "split", true)) {
            static const char re[] = "\\x{2581}[^\\x{2581}]*|[^\\x{2581}]+";
            SYM_TRY(sym_pretok_add_regex(t, re, sizeof re - 1));
        }
        return SYM_OK;
    }
    return unsupported("pre-tokenizer", type);
}

/* Whether the decoder removes the space the prefix added (Strip from the start, Metaspace). */
static bool decoder_strips(jobj *d) {
    if (!d) return false;
    const char *type = get_str(d, "type");
    if (str_is(type, "Sequence")) {
        jobj *list = get(d, "decoders");
        size_t k = list ? json_object_array_length(list) : 0;
        for (size_t i = 0; i < k; i++)
            if (decoder_strips(json_object_array_get_idx(list, i))) return true;
        return false;
    }
    if (str_is(type, "Strip")) {
        jobj *start = get(d, "start");
        return start && json_object_get_int(start) > 0;
    }
    return str_is(type, "Metaspace");
}

/* ---- special ids ---- */

static int32_t find_token(const sym_tokenizer *t, const char *s) {
    return s && *s ? sym_tok_map_find(t, &t->by_text, s, strlen(s)) : -1;
}

/* tokenizer_config.json spells a token as "text" or {"content": "text", …} */
static const char *config_token(jobj *config, const char *key) {
    jobj *v = get(config, key);
    if (!v) return NULL;
    if (json_object_get_type(v) == json_type_string) return json_object_get_string(v);
    return get_str(v, "content");
}

/* A TemplateProcessing post-processor that puts a special token first: that token is BOS. */
static int32_t template_bos(const sym_tokenizer *t, jobj *pp) {
    if (!pp) return -1;
    const char *type = get_str(pp, "type");
    if (str_is(type, "Sequence")) {
        jobj *list = get(pp, "processors");
        size_t k = list ? json_object_array_length(list) : 0;
        for (size_t i = 0; i < k; i++) {
            int32_t id = template_bos(t, json_object_array_get_idx(list, i));
            if (id >= 0) return id;
        }
        return -1;
    }
    if (!str_is(type, "TemplateProcessing")) return -1;
    jobj *single = get(pp, "single");
    if (!single || json_object_get_type(single) != json_type_array ||
        json_object_array_length(single) == 0)
        return -1;
    jobj *first = get(json_object_array_get_idx(single, 0), "SpecialToken");
    return find_token(t, get_str(first, "id"));
}

static void pick_specials(sym_tokenizer *t, jobj *root, jobj *config) {
    jobj *model = get(root, "model");
    t->unk = find_token(t, get_str(model, "unk_token"));
    t->bos = template_bos(t, get(root, "post_processor"));
    t->add_bos = t->bos >= 0;
    static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<bos>",
                                            "<\xef\xbd\x9c"
                                            "begin" SPACE_ESC "of" SPACE_ESC
                                            "sentence\xef\xbd\x9c>"};
    static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>",
                                            "<\xef\xbd\x9c"
                                            "end" SPACE_ESC "of" SPACE_ESC "sentence\xef\xbd\x9c>"};
    for (size_t i = 0; t->bos < 0 && i < sizeof bos_names / sizeof *bos_names; i++)
        t->bos = find_token(t, bos_names[i]);
    for (size_t i = 0; t->eos < 0 && i < sizeof eos_names / sizeof *eos_names; i++)
        t->eos = find_token(t, eos_names[i]);
    if (config) {
        int32_t id = find_token(t, config_token(config, "bos_token"));
        if (id >= 0) t->bos = id;
        id = find_token(t, config_token(config, "eos_token"));
        if (id >= 0) t->eos = id;
        t->add_bos = get_bool(config, "add_bos_token", t->add_bos);
    }
}

/* ---- merges ---- */

static sym_status load_merges(sym_tokenizer *t, jobj *merges) {
    size_t n = merges ? json_object_array_length(merges) : 0;
    if (n == 0) return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: BPE model without merges");
    if (n > INT32_MAX) return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: too many merges");
    SYM_TRY(sym_tok_merges_init(&t->merges, n));
    size_t skipped = 0;
    char buf[4096];
    for (size_t i = 0; i < n; i++) {
        jobj *m = json_object_array_get_idx(merges, i);
        if (json_object_get_type(m) == json_type_string) {
            SYM_TRY(sym_tok_merges_add_str(t, json_object_get_string(m),
                                           (size_t)json_object_get_string_len(m), (int32_t)i,
                                           &skipped));
            continue;
        }
        /* ["left", "right"] (tokenizers >= 0.20) */
        jobj *l = json_object_get_type(m) == json_type_array && json_object_array_length(m) == 2
                      ? json_object_array_get_idx(m, 0)
                      : NULL;
        jobj *r = l ? json_object_array_get_idx(m, 1) : NULL;
        if (!l || !r || json_object_get_type(l) != json_type_string ||
            json_object_get_type(r) != json_type_string) {
            skipped++;
            continue;
        }
        size_t nl = (size_t)json_object_get_string_len(l),
               nr = (size_t)json_object_get_string_len(r);
        int32_t li = sym_tok_map_find(t, &t->by_text, json_object_get_string(l), nl);
        int32_t ri = sym_tok_map_find(t, &t->by_text, json_object_get_string(r), nr);
        if (li < 0 || ri < 0 || nl + nr > sizeof buf) {
            skipped++;
            continue;
        }
        memcpy(buf, json_object_get_string(l), nl);
        memcpy(buf + nl, json_object_get_string(r), nr);
        int32_t o = sym_tok_map_find(t, &t->by_text, buf, nl + nr);
        if (o < 0)
            skipped++;
        else
            SYM_TRY(sym_tok_merges_add(&t->merges, li, ri, (int32_t)i, o));
    }
    if (t->merges.n == 0)
        return SYM_FAIL(SYM_ERR_FORMAT,
                        "tokenizer: none of the %zu merges names tokens of the "
                        "vocabulary",
                        n);
    if (skipped)
        SYM_WARN("tokenizer: skipped %zu of %zu merges (malformed, or naming tokens the "
                 "vocabulary lacks)",
                 skipped, n);
    return SYM_OK;
}

sym_status sym_tokenizer_create_hf(const char *json, size_t json_len, const char *config,
                                   size_t config_len, sym_tokenizer **out) {
    *out = NULL;
    SYM_CHECK(json, SYM_ERR_ARG, "tokenizer: NULL tokenizer.json");
    jobj *root = NULL, *cfg = NULL;
    sym_tokenizer *t = NULL;
    sym_status st = SYM_OK;
    SYM_TRY_GOTO(parse(json, json_len, "tokenizer.json", &root));
    if (config) SYM_TRY_GOTO(parse(config, config_len, "tokenizer_config.json", &cfg));

    jobj *model = get(root, "model");
    const char *type = get_str(model, "type");
    if (!model) SYM_FAIL_GOTO(SYM_ERR_FORMAT, "tokenizer: tokenizer.json has no model");
    if (type && !str_is(type, "BPE")) {
        st = unsupported("tokenizer model", type);
        goto fail;
    }
    const char *prefix = get_str(model, "continuing_subword_prefix");
    const char *suffix = get_str(model, "end_of_word_suffix");
    if ((prefix && *prefix) || (suffix && *suffix)) {
        st = unsupported("BPE option",
                         prefix && *prefix ? "continuing_subword_prefix" : "end_of_word_suffix");
        goto fail;
    }
    jobj *vocab = get(model, "vocab");
    jobj *added = get(root, "added_tokens");
    if (!vocab || json_object_get_type(vocab) != json_type_object)
        SYM_FAIL_GOTO(SYM_ERR_FORMAT, "tokenizer: model.vocab is missing or not an object");
    if (added && json_object_get_type(added) != json_type_array)
        SYM_FAIL_GOTO(SYM_ERR_FORMAT, "tokenizer: added_tokens is not an array");

    int32_t n_vocab = 0;
    SYM_TRY_GOTO(count_vocab(vocab, added, &n_vocab));
    SYM_TRY_GOTO(sym_tok_alloc(n_vocab, &t));
    t->algo = TOK_ALGO_BPE;
    t->model_name = "gpt2";
    strcpy(t->pre_name, "hf");
    t->byte_fallback = get_bool(model, "byte_fallback", false);
    t->fuse_unk = get_bool(model, "fuse_unk", false);
    t->ignore_merges = get_bool(model, "ignore_merges", false);
    SYM_TRY_GOTO(load_normalizer(t, get(root, "normalizer")));
    SYM_TRY_GOTO(load_pretok(t, get(root, "pre_tokenizer"), true));
    jobj *decoder = get(root, "decoder");
    if (str_is(get_str(decoder, "type"), "ByteLevel")) t->byte_level = true;
    if (t->byte_level) {
        if (t->escape_spaces)
            SYM_FAIL_GOTO(SYM_ERR_UNSUPPORTED, "tokenizer: byte-level BPE with \"▁\" spaces");
        t->byte_fallback = false;
        t->model_name = "gpt2";
    } else {
        t->model_name = "llama"; /* SentencePiece converted to BPE */
    }
    if (!t->escape_spaces && t->prefix != TOK_PREFIX_NEVER && !t->byte_level)
        t->escape_spaces = true; /* Prepend("▁") without Replace still means "▁" spaces */
    t->strip = decoder_strips(decoder) ? t->prefix : TOK_PREFIX_NEVER;

    SYM_TRY_GOTO(load_vocab(t, vocab, added));
    SYM_TRY_GOTO(sym_tok_finish(t));
    pick_specials(t, root, cfg);
    if (t->add_bos && t->bos < 0) t->add_bos = false;
    sym_tok_add_eog(t, t->eos);
    SYM_TRY_GOTO(load_merges(t, get(model, "merges")));
    json_object_put(cfg);
    json_object_put(root);
    *out = t;
    return SYM_OK;
fail:
    sym_tokenizer_destroy(t);
    json_object_put(cfg);
    json_object_put(root);
    return st;
}
