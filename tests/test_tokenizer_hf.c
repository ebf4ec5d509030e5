/* Hugging Face tokenizer.json: the seven vocabularies converted in memory (the repository holds
 * no copied vocabulary) — BPE with byte fallback for the SentencePiece ones, ByteLevel with the
 * pre-tokenizer each model declares for the others — give the .out ids on every .inp case and
 * round-trip random text; a directory with tokenizer_config.json opens; bad JSON fails clearly. */
#include <json-c/json.h>

#include "tokenizer_util.h"

/* ---- tokenizer.json converted from the GGUF vocabularies
 * ----------------------------------------- */

typedef struct conv {
    sym_gguf *g;
    const sym_gguf_kv *tokens, *types, *scores, *merges;
} conv;

static json_object *jstr(const char *s) { return json_object_new_string(s); }
static json_object *jstrn(const char *s, size_t n) { return json_object_new_string_len(s, (int)n); }

static json_object *split_step(const char *regex) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", jstr("Split"));
    json_object *pat = json_object_new_object();
    json_object_object_add(pat, "Regex", jstr(regex));
    json_object_object_add(o, "pattern", pat);
    json_object_object_add(o, "behavior", jstr("Isolated"));
    json_object_object_add(o, "invert", json_object_new_boolean(0));
    return o;
}

static json_object *typed(const char *type) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", jstr(type));
    return o;
}

static json_object *byte_level(bool use_regex) {
    json_object *o = typed("ByteLevel");
    json_object_object_add(o, "add_prefix_space", json_object_new_boolean(0));
    json_object_object_add(o, "trim_offsets", json_object_new_boolean(1));
    json_object_object_add(o, "use_regex", json_object_new_boolean(use_regex));
    return o;
}

static json_object *sequence(const char *key, json_object *const *steps, size_t n) {
    json_object *o = typed("Sequence");
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, steps[i]);
    json_object_object_add(o, key, a);
    return o;
}

#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

/* The pre_tokenizer each vocabulary's tokenizer.json declares. */
static json_object *pre_tokenizer_for(const char *name) {
    if (!strcmp(name, "gpt-2") || !strcmp(name, "mpt")) return byte_level(true);
    if (!strcmp(name, "refact")) {
        json_object *d = typed("Digits");
        json_object_object_add(d, "individual_digits", json_object_new_boolean(1));
        json_object *s[] = {d, byte_level(true)};
        return sequence("pretokenizers", s, 2);
    }
    if (!strcmp(name, "falcon")) {
        json_object *p = typed("Punctuation");
        json_object_object_add(p, "behavior", jstr("Contiguous"));
        json_object *s[] = {p, byte_level(true), split_step("[0-9][0-9][0-9]")};
        return sequence("pretokenizers", s, 3);
    }
    if (!strcmp(name, "deepseek-coder")) {
        json_object *d = typed("Digits");
        json_object_object_add(d, "individual_digits", json_object_new_boolean(1));
        json_object *s[] = {split_step("[\r\n]"),
                            split_step("\\s?\\p{L}+"),
                            split_step("\\s?\\p{P}+"),
                            split_step("[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80"
                                       "\xea\xb0\x80-\xed\x9f\xbf]+"),
                            d,
                            byte_level(false)};
        return sequence("pretokenizers", s, 6);
    }
    /* "gpt-2 via Split": the llama3-style layout (Split regex, then ByteLevel without one) */
    json_object *s[] = {split_step(GPT2_RE), byte_level(false)};
    return sequence("pretokenizers", s, 2);
}

typedef struct scored {
    float score;
    int32_t id;
} scored;

static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* SentencePiece -> BPE merges the way HF's converter derives them: for every normal token, in
 * order of decreasing score, each split into two vocabulary pieces is a merge. */
static json_object *spm_merges(const conv *c, json_object *vocab) {
    size_t n = c->tokens->arr_n;
    scored *order = malloc(n * sizeof *order);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (sym_gguf_arr_i64(c->types, i) == SYM_TOKEN_NORMAL)
            order[k++] = (scored){(float)sym_gguf_arr_f64(c->scores, i), (int32_t)i};
    qsort(order, k, sizeof *order, cmp_scored);
    json_object *merges = json_object_new_array();
    char l[512], r[512];
    for (size_t i = 0; i < k; i++) {
        sym_str s = c->tokens->strs[order[i].id];
        if (s.len >= sizeof l) continue;
        /* split points on character boundaries; (left id, right id) order within a token */
        int32_t pairs[64][2];
        int np = 0;
        for (size_t cut = 1; cut < s.len && np < 64; cut++) {
            if (((unsigned char)s.ptr[cut] & 0xC0) == 0x80) continue;
            memcpy(l, s.ptr, cut);
            l[cut] = 0;
            memcpy(r, s.ptr + cut, s.len - cut);
            r[s.len - cut] = 0;
            json_object *li, *ri;
            if (!json_object_object_get_ex(vocab, l, &li) ||
                !json_object_object_get_ex(vocab, r, &ri))
                continue;
            pairs[np][0] = json_object_get_int(li);
            pairs[np][1] = json_object_get_int(ri);
            np++;
        }
        for (int a = 0; a < np; a++)
            for (int b2 = a + 1; b2 < np; b2++)
                if (pairs[b2][0] < pairs[a][0] ||
                    (pairs[b2][0] == pairs[a][0] && pairs[b2][1] < pairs[a][1])) {
                    int32_t t0 = pairs[a][0], t1 = pairs[a][1];
                    pairs[a][0] = pairs[b2][0];
                    pairs[a][1] = pairs[b2][1];
                    pairs[b2][0] = t0;
                    pairs[b2][1] = t1;
                }
        for (int a = 0; a < np; a++) {
            sym_str ls = c->tokens->strs[pairs[a][0]], rs = c->tokens->strs[pairs[a][1]];
            char m[1100];
            snprintf(m, sizeof m, "%.*s %.*s", (int)ls.len, ls.ptr, (int)rs.len, rs.ptr);
            json_object_array_add(merges, jstr(m));
        }
    }
    free(order);
    return merges;
}

/* Builds a tokenizer.json for the vocabulary; returns the JSON text (caller frees). */
static char *convert_to_hf(const char *name, bool gpt2_split) {
    char p[1024];
    conv c = {0};
    if (sym_gguf_open(vocab_path(name, "", p, sizeof p), &c.g) != SYM_OK) return NULL;
    sym_gguf_get_arr(c.g, "tokenizer.ggml.tokens", SYM_GGUF_STRING, &c.tokens);
    sym_gguf_get_arr(c.g, "tokenizer.ggml.token_type", SYM_GGUF_TYPE_COUNT, &c.types);
    bool spm = sym_gguf_find(c.g, "tokenizer.ggml.scores") != NULL;
    if (spm)
        sym_gguf_get_arr(c.g, "tokenizer.ggml.scores", SYM_GGUF_TYPE_COUNT, &c.scores);
    else
        sym_gguf_get_arr(c.g, "tokenizer.ggml.merges", SYM_GGUF_STRING, &c.merges);

    json_object *root = json_object_new_object();
    json_object *model = typed("BPE");
    json_object *vocab = json_object_new_object();
    json_object *added = json_object_new_array();
    for (size_t i = 0; i < c.tokens->arr_n; i++) {
        sym_str s = c.tokens->strs[i];
        char *key = malloc(s.len + 1); /* NUL-terminated for json-c */
        memcpy(key, s.ptr, s.len);
        key[s.len] = 0;
        json_object_object_add(vocab, key, json_object_new_int((int)i));
        free(key);
        int64_t type = sym_gguf_arr_i64(c.types, i);
        if (type == SYM_TOKEN_CONTROL || type == SYM_TOKEN_USER_DEFINED ||
            (spm && type == SYM_TOKEN_UNKNOWN)) {
            json_object *a = json_object_new_object();
            json_object_object_add(a, "id", json_object_new_int((int)i));
            json_object_object_add(a, "content", jstrn(s.ptr, s.len));
            json_object_object_add(a, "special", json_object_new_boolean(type != 4));
            json_object_object_add(a, "lstrip", json_object_new_boolean(0));
            json_object_object_add(a, "rstrip", json_object_new_boolean(0));
            json_object_object_add(a, "normalized", json_object_new_boolean(0));
            json_object_array_add(added, a);
        }
    }
    json_object *merges;
    if (spm) {
        merges = spm_merges(&c, vocab);
    } else {
        merges = json_object_new_array();
        for (size_t i = 0; i < c.merges->arr_n; i++)
            json_object_array_add(merges, jstrn(c.merges->strs[i].ptr, c.merges->strs[i].len));
    }
    json_object_object_add(model, "dropout", NULL);
    json_object_object_add(model, "unk_token", spm ? jstr("<unk>") : NULL);
    json_object_object_add(model, "byte_fallback", json_object_new_boolean(spm));
    json_object_object_add(model, "fuse_unk", json_object_new_boolean(spm));
    json_object_object_add(model, "vocab", vocab);
    json_object_object_add(model, "merges", merges);
    json_object_object_add(root, "version", jstr("1.0"));
    json_object_object_add(root, "added_tokens", added);
    if (spm) {
        json_object *prep = typed("Prepend");
        json_object_object_add(prep, "prepend", jstr("\xe2\x96\x81"));
        json_object *rep = typed("Replace");
        json_object *pat = json_object_new_object();
        json_object_object_add(pat, "String", jstr(" "));
        json_object_object_add(rep, "pattern", pat);
        json_object_object_add(rep, "content", jstr("\xe2\x96\x81"));
        json_object *norm[] = {prep, rep};
        json_object_object_add(root, "normalizer", sequence("normalizers", norm, 2));
        json_object_object_add(root, "pre_tokenizer", NULL);
        json_object *strip = typed("Strip");
        json_object_object_add(strip, "content", jstr(" "));
        json_object_object_add(strip, "start", json_object_new_int(1));
        json_object_object_add(strip, "stop", json_object_new_int(0));
        json_object *dec[] = {typed("ByteFallback"), typed("Fuse"), strip};
        json_object_object_add(root, "decoder", sequence("decoders", dec, 3));
        /* "<s>" $A */
        json_object *pp = typed("TemplateProcessing");
        json_object *single = json_object_new_array();
        json_object *st = json_object_new_object(), *sid = json_object_new_object();
        json_object_object_add(sid, "id", jstr("<s>"));
        json_object_object_add(sid, "type_id", json_object_new_int(0));
        json_object_object_add(st, "SpecialToken", sid);
        json_object_array_add(single, st);
        json_object_object_add(pp, "single", single);
        json_object_object_add(root, "post_processor", pp);
    } else {
        json_object_object_add(root, "normalizer", NULL);
        json_object_object_add(root, "pre_tokenizer",
                               pre_tokenizer_for(gpt2_split ? "split" : name));
        json_object_object_add(root, "decoder", byte_level(true));
    }
    json_object_object_add(root, "model", model);
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    char *copy = malloc(len + 1);
    memcpy(copy, s, len + 1);
    json_object_put(root);
    sym_gguf_close(c.g);
    return copy;
}

static void test_hf_json(void) {
    static const struct {
        const char *vocab;
        bool split;
    } runs[] = {{"llama-spm", false},      {"gpt-2", false}, {"gpt-2", true},  {"falcon", false},
                {"deepseek-coder", false}, {"mpt", false},   {"refact", false}};
    test_rng r = test_rng_init("test_tokenizer hf round trips");
    size_t total = 0, passed = 0;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char *json = convert_to_hf(runs[i].vocab, runs[i].split);
        CHECK(json != NULL, "convert %s", runs[i].vocab);
        if (!json) continue;
        sym_tokenizer *t = NULL;
        CHECK_OK(sym_tokenizer_create_hf(json, strlen(json), NULL, 0, &t));
        vcases vc;
        if (t && load_cases(runs[i].vocab, &vc)) {
            char label[64];
            snprintf(label, sizeof label, "tokenizer.json %s%s", runs[i].vocab,
                     runs[i].split ? " (Split + ByteLevel)" : "");
            passed += run_cases(t, &vc, label);
            total += vc.n;
            int bad = round_trips(t, label, &r, 200, lossless_for(runs[i].vocab));
            CHECK(bad == 0, "%s: %d round trips failed", label, bad);
            free_cases(&vc);
        }
        if (t && !strcmp(runs[i].vocab, "llama-spm")) {
            CHECK(sym_tokenizer_wants_bos(t) && sym_tokenizer_bos(t) == 1, "hf llama bos");
            CHECK(sym_tokenizer_eos(t) == 2 && sym_tokenizer_is_eog(t, 2), "hf llama eos");
            /* through the file system: a directory with tokenizer.json + tokenizer_config.json */
            char dir[1024], path[1100];
            snprintf(dir, sizeof dir, "%s/test_tokenizer_hf.tmp", SYM_BUILD_DIR);
            snprintf(path, sizeof path, "mkdir -p '%s'", dir);
            CHECK(system(path) == 0, "mkdir");
            snprintf(path, sizeof path, "%s/tokenizer.json", dir);
            CHECK(test_write_file(path, json, strlen(json)) == 0, "write %s", path);
            const char *cfg = "{\"add_bos_token\": false, \"eos_token\": {\"content\": \"<s>\"}}";
            snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
            CHECK(test_write_file(path, cfg, strlen(cfg)) == 0, "write %s", path);
            sym_tokenizer *t2 = NULL;
            CHECK_OK(sym_tokenizer_open(dir, &t2));
            if (t2) {
                CHECK(!sym_tokenizer_wants_bos(t2) && sym_tokenizer_eos(t2) == 1,
                      "tokenizer_config.json applied");
                expect_ids(t2, "Hello world", false, false, (const int32_t[]){15043, 3186}, 2,
                           "hf dir");
            }
            sym_tokenizer_destroy(t2);
        }
        sym_tokenizer_destroy(t);
        free(json);
    }
    fprintf(stderr, "tokenizer.json conversions: %zu/%zu cases match\n", passed, total);
}

static void test_hostile_json(void) {
    sym_tokenizer *t = NULL;
    static const struct {
        const char *json;
        sym_status want;
        const char *needle;
    } cases[] = {
        {"{\"model\": ", SYM_ERR_FORMAT, "not valid JSON"},
        {"[1, 2]", SYM_ERR_FORMAT, "not a JSON object"},
        {"{}", SYM_ERR_FORMAT, "no model"},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", SYM_ERR_UNSUPPORTED, "Unigram"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []}}",
         SYM_ERR_FORMAT, "without merges"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": [\"a a\"]}}",
         SYM_ERR_FORMAT, "out of range"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": [\"a a\"]}}",
         SYM_ERR_FORMAT, "not an integer"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}",
         SYM_ERR_FORMAT, "two tokens"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": [\"a b\"]}}", SYM_ERR_FORMAT,
         "empty vocabulary"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": "
         "[\"a b\"]}, \"normalizer\": {\"type\": \"Lowercase\"}}",
         SYM_ERR_UNSUPPORTED, "Lowercase"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": "
         "[\"a b\"]}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, "
         "\"behavior\": \"Isolated\"}}",
         SYM_ERR_FORMAT, "does not compile"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": "
         "[\"a b\"]}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, "
         "\"behavior\": \"Removed\"}}",
         SYM_ERR_UNSUPPORTED, "Removed"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"q r\"]}}",
         SYM_ERR_FORMAT, "none of the 1 merges"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[32];
        snprintf(what, sizeof what, "json case %zu", i);
        expect_fail(sym_tokenizer_create_hf(cases[i].json, strlen(cases[i].json), NULL, 0, &t),
                    cases[i].want, cases[i].needle, what);
        sym_tokenizer_destroy(t);
    }
    /* a minimal valid one, with a merge in the newer [left, right] form */
    const char *ok = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},"
                     " \"merges\": [[\"a\", \"b\"]]}}";
    CHECK_OK(sym_tokenizer_create_hf(ok, strlen(ok), NULL, 0, &t));
    if (t) expect_ids(t, "abab", false, false, (const int32_t[]){2, 2}, 2, "minimal json");
    sym_tokenizer_destroy(t);
    CHECK_STATUS(sym_tokenizer_open("/nonexistent/tokenizer.json", &t), SYM_ERR_IO);
}

int main(void) {
    test_hf_json();
    test_hostile_json();
    return test_finish("test_tokenizer_hf");
}
