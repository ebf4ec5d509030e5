/* Tokenizers against real vocabularies: every case of ../shared/tokenizer/ (each .inp) gives
 * exactly the ids of its .out (no BOS, special tokens not parsed); the aidreams prompts;
 * decode(encode(s)) == s on seeded random text; the streaming detokenizer never emits a partial
 * character; the same vocabularies converted to tokenizer.json in memory give the same ids; hostile
 * metadata gives precise errors, never a crash; long inputs stay fast. */
#include <json-c/json.h>
#include <time.h>

#include "base/log.h"
#include "model/gguf.h"
#include "test_util.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

static const char *const k_vocabs[] = {"llama-spm",      "phi-3", "gpt-2", "falcon",
                                       "deepseek-coder", "mpt",   "refact"};
#define N_VOCABS (sizeof k_vocabs / sizeof k_vocabs[0])

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *vocab_path(const char *name, const char *ext, char *buf, size_t cap) {
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizer/ggml-vocab-%s.gguf%s", name, ext);
    return test_shared_path(rel, buf, cap);
}

/* ---- the .inp / .out cases ---------------------------------------------------------------- */

typedef struct vcase {
    const char *text;
    size_t len;
    int32_t ids[1024];
    size_t n_ids;
} vcase;

typedef struct vcases {
    unsigned char *inp, *out;
    vcase *c;
    size_t n;
} vcases;

/* Cases are separated by "\n__ggml_vocab_test__\n"; the newline before a separator is part of
 * the separator. Expected ids: one line per case. */
static bool load_cases(const char *name, vcases *vc) {
    char p[1024];
    size_t n_inp = 0, n_out = 0;
    memset(vc, 0, sizeof *vc);
    vc->inp = test_read_file(vocab_path(name, ".inp", p, sizeof p), &n_inp);
    vc->out = test_read_file(vocab_path(name, ".out", p, sizeof p), &n_out);
    if (!vc->inp || !vc->out) return false;
    vc->inp = realloc(vc->inp, n_inp + 1);
    vc->out = realloc(vc->out, n_out + 1);
    vc->inp[n_inp] = vc->out[n_out] = 0;
    vc->c = calloc(256, sizeof *vc->c);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *s = (char *)vc->inp, *o = (char *)vc->out;
    for (;;) {
        char *e = strstr(s, sep);
        char *eol = strchr(o, '\n');
        if (!e || !eol || vc->n == 256) break;
        vcase *c = &vc->c[vc->n++];
        c->text = s;
        c->len = (size_t)(e - s);
        *eol = 0;
        for (char *q = o;;) {
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q || c->n_ids == 1024) break;
            c->ids[c->n_ids++] = (int32_t)v;
            q = end;
        }
        s = e + sizeof sep - 1;
        o = eol + 1;
    }
    return vc->n > 0;
}

static void free_cases(vcases *vc) {
    free(vc->inp);
    free(vc->out);
    free(vc->c);
}

static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n && i < 80; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stderr);
        else if (c == '\t')
            fputs("\\t", stderr);
        else if (c < 32)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
}

/* Runs every case; returns the number that match. */
static size_t run_cases(const sym_tokenizer *t, const vcases *vc, const char *label) {
    size_t pass = 0;
    int32_t ids[2048];
    for (size_t i = 0; i < vc->n; i++) {
        const vcase *c = &vc->c[i];
        size_t n = 0;
        sym_status st = sym_tokenizer_encode(t, c->text, c->len, false, false, ids, 2048, &n);
        bool ok = st == SYM_OK && n == c->n_ids && memcmp(ids, c->ids, n * sizeof *ids) == 0;
        if (ok) {
            pass++;
            continue;
        }
        CHECK(ok, "%s case %zu differs (%s)", label, i, sym_status_name(st));
        fputs("  text: ", stderr);
        print_escaped(c->text, c->len);
        fputs("\n  want:", stderr);
        for (size_t k = 0; k < c->n_ids && k < 32; k++)
            fprintf(stderr, " %d", c->ids[k]);
        fputs("\n  got: ", stderr);
        for (size_t k = 0; k < n && k < 32 && k < 2048; k++)
            fprintf(stderr, " %d", ids[k]);
        fputc('\n', stderr);
    }
    fprintf(stderr, "%s: %zu/%zu cases match\n", label, pass, vc->n);
    return pass;
}

static sym_tokenizer *open_vocab(const char *name) {
    char p[1024];
    sym_tokenizer *t = NULL;
    CHECK_OK(sym_tokenizer_open(vocab_path(name, "", p, sizeof p), &t));
    return t;
}

static void test_vocab_cases(void) {
    size_t total = 0, passed = 0;
    for (size_t v = 0; v < N_VOCABS; v++) {
        vcases vc;
        CHECK(load_cases(k_vocabs[v], &vc), "cannot read the cases of %s", k_vocabs[v]);
        sym_tokenizer *t = open_vocab(k_vocabs[v]);
        if (t && vc.n) {
            char label[64];
            snprintf(label, sizeof label, "gguf %s", k_vocabs[v]);
            passed += run_cases(t, &vc, label);
            total += vc.n;
        }
        sym_tokenizer_destroy(t);
        free_cases(&vc);
    }
    fprintf(stderr, "gguf vocabularies: %zu/%zu cases match\n", passed, total);
    CHECK(total == 46 * N_VOCABS, "expected %zu cases, read %zu", 46 * N_VOCABS, total);
}

/* ---- aidreams -------------------------------------------------------------------------------- */

static void test_aidreams(void) {
    char p[1024];
    sym_tokenizer *t = NULL;
    CHECK_OK(sym_tokenizer_open(test_shared_path("models/aidreams260K.gguf", p, sizeof p), &t));
    if (!t) return;
    static const struct {
        const char *prompt;
        int32_t ids[16];
        size_t n;
    } cases[] = {
        {"I dreamed", {1, 303, 281, 269, 435, 447, 328}, 7},
        {"The network", {1, 368, 430, 324, 323, 449, 284, 453}, 8},
        {"", {1}, 1},
    };
    CHECK(sym_tokenizer_n_vocab(t) == 512, "n_vocab %d", sym_tokenizer_n_vocab(t));
    CHECK(sym_tokenizer_wants_bos(t) && sym_tokenizer_bos(t) == 1, "bos");
    CHECK(sym_tokenizer_is_eog(t, 2) && !sym_tokenizer_is_eog(t, 1), "eog");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t ids[64];
        size_t n = 0;
        CHECK_OK(sym_tokenizer_encode(t, cases[i].prompt, strlen(cases[i].prompt), true, false, ids,
                                      64, &n));
        CHECK(n == cases[i].n && !memcmp(ids, cases[i].ids, n * 4), "aidreams '%s': %zu ids",
              cases[i].prompt, n);
        char text[256];
        size_t len = 0;
        CHECK_OK(sym_tokenizer_decode(t, ids, n, 0, text, sizeof text, &len));
        CHECK(len == strlen(cases[i].prompt) && !memcmp(text, cases[i].prompt, len),
              "aidreams decode '%.*s'", (int)len, text);
    }
    sym_tokenizer_destroy(t);
}

/* ---- random round trips and streaming ----------------------------------------------------------
 */

static const char *const k_pool[] = {
    "a",
    "b",
    "e",
    "t",
    "Z",
    "Q",
    "the",
    " the",
    "Hello",
    "world",
    "tokenizer",
    "'s",
    "'ll",
    "don't",
    "0",
    "1",
    "7",
    "42",
    "3.14",
    "1000000",
    " ",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n",
    "\r\n",
    " \t ",
    ".",
    ",",
    "!",
    "?",
    "...",
    "(",
    ")",
    "{",
    "}",
    "<",
    ">",
    "=",
    "==",
    "->",
    "_",
    "#",
    "@",
    "$",
    "%",
    "^",
    "&",
    "*",
    "~",
    "`",
    "|",
    "\\",
    "/",
    "\"",
    "'",
    "\xc3\xa9", /* é */
    "\xc3\xb1",
    "\xc3\xbc",
    "\xc3\x9f",
    "\xc2\xbd",
    "\xc2\xa0",                                 /* ñ ü ß ½ NBSP */
    "\xd0\x96\xd0\xb8\xd0\xb7\xd0\xbd\xd1\x8c", /* Жизнь */
    "\xe4\xb8\xad\xe6\x96\x87",                 /* 中文 */
    "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",     /* 한국어 */
    "\xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\x82",     /* हिं */
    "\xe2\x96\x81",                             /* ▁ itself */
    "\xe2\x80\x94",
    "\xe2\x80\x9c",
    "\xe2\x82\xac",     /* — “ € */
    "\xf0\x9f\xa6\x99", /* 🦙 */
    "\xf0\x9f\x98\x80",
    "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",             /* 😀 👍🏽 */
    "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb", /* 👩‍💻 (ZWJ) */
    "\xf0\x9d\x94\xb8",                             /* 𝔸 */
    "\xe2\x9c\x85",
    "\xef\xb8\x8f", /* ✅ VS16 */
};
#define POOL_N (sizeof k_pool / sizeof k_pool[0])

/* no_esc: leave out "▁", which SentencePiece vocabularies read as a space (lossy by design) */
static size_t random_text(test_rng *r, char *buf, size_t cap, bool no_esc) {
    size_t n = 0, parts = 1 + test_rng_below(r, 24);
    for (size_t i = 0; i < parts; i++) {
        const char *s = k_pool[test_rng_below(r, POOL_N)];
        if (no_esc && !strcmp(s, "\xe2\x96\x81")) continue;
        size_t l = strlen(s);
        if (n + l > cap) break;
        memcpy(buf + n, s, l);
        n += l;
    }
    return n;
}

/* Feeds ids one at a time; every step must be complete UTF-8 and the whole must equal decode. */
static void check_stream(const sym_tokenizer *t, const int32_t *ids, size_t n, const char *want,
                         size_t want_len, const char *label) {
    sym_detokenizer d;
    sym_detokenizer_init(&d, t, 0);
    size_t cap = 3 * sym_tokenizer_max_piece(t) + 12;
    char *step = malloc(cap);
    char *all = malloc(want_len * 3 + 64);
    size_t total = 0;
    bool ok = true;
    for (size_t i = 0; i <= n && ok; i++) {
        size_t got = 0;
        sym_status st = i < n ? sym_detokenizer_push(&d, ids[i], step, cap, &got)
                              : sym_detokenizer_flush(&d, step, cap, &got);
        if (st != SYM_OK || sym_utf8_valid_prefix((const uint8_t *)step, got) != got) {
            CHECK(0, "%s: step %zu: %s, or %zu bytes of invalid UTF-8", label, i,
                  sym_status_name(st), got);
            ok = false;
        }
        if (total + got <= want_len * 3 + 64) memcpy(all + total, step, got);
        total += got;
    }
    if (ok)
        CHECK(total == want_len && !memcmp(all, want, total),
              "%s: stream gives %zu bytes, "
              "decode %zu",
              label, total, want_len);
    free(step);
    free(all);
}

/* Which vocabularies are lossless for what (docs/TOKENIZERS.md):
 *   SPM (llama-spm, phi-3): any bytes except a literal "▁", which reads as a space;
 *   gpt-2: any bytes;
 *   falcon, mpt, refact: valid UTF-8 only; they lack tokens for some bytes (C0, C1, F5..FF that
 *     never occur in UTF-8; falcon also some control characters and F2), which are dropped;
 *   deepseek-coder: valid UTF-8 only; its added tokens "õ", "÷", … are spelled like the byte
 *     tokens of F5, F7, …, so those invalid bytes come back as the characters. */
typedef struct lossless {
    const char *vocab;
    bool invalid_bytes; /* round-trips text with invalid UTF-8 too */
    bool spm;           /* "▁" is read as a space */
} lossless;

static const lossless k_lossless[] = {
    {"llama-spm", true, true},        {"phi-3", true, true},
    {"gpt-2", true, false},           {"falcon", false, false},
    {"deepseek-coder", false, false}, {"mpt", false, false},
    {"refact", false, false},
};

static const lossless *lossless_for(const char *vocab) {
    for (size_t i = 0; i < sizeof k_lossless / sizeof *k_lossless; i++)
        if (!strcmp(k_lossless[i].vocab, vocab)) return &k_lossless[i];
    return &k_lossless[0];
}

/* decode(encode(s)) == s for random strings; also streams each decode. Returns failures. */
static int round_trips(const sym_tokenizer *t, const char *label, test_rng *r, int n_strings,
                       const lossless *ll) {
    char text[1024], back[4096];
    int32_t ids[2048];
    int bad = 0;
    bool with_invalid = ll->invalid_bytes;
    for (int k = 0; k < n_strings; k++) {
        size_t len = random_text(r, text, 900, ll->spm);
        if (with_invalid && k % 4 == 3 && len < 900) { /* a stray byte of invalid UTF-8 */
            size_t at = test_rng_below(r, len + 1);
            memmove(text + at + 1, text + at, len - at);
            text[at] = (char)(0x80 + test_rng_below(r, 0x80));
            len++;
        }
        size_t n = 0, m = 0;
        sym_status st = sym_tokenizer_encode(t, text, len, false, false, ids, 2048, &n);
        if (st == SYM_OK) st = sym_tokenizer_decode(t, ids, n, 0, back, sizeof back, &m);
        if (st != SYM_OK || m != len || memcmp(back, text, len) != 0) {
            if (bad++ < 3) {
                CHECK(0, "%s: round trip failed (%s)", label, sym_status_name(st));
                fputs("  text: ", stderr);
                print_escaped(text, len);
                fputs("\n  back: ", stderr);
                print_escaped(back, m < sizeof back ? m : sizeof back);
                fputc('\n', stderr);
            }
            continue;
        }
        if (sym_utf8_valid_prefix((const uint8_t *)text, len) == len)
            check_stream(t, ids, n, text, len, label);
    }
    return bad;
}

static void test_round_trips(void) {
    test_rng r = test_rng_init("test_tokenizer round trips");
    for (size_t v = 0; v < N_VOCABS; v++) {
        sym_tokenizer *t = open_vocab(k_vocabs[v]);
        if (!t) continue;
        char label[64];
        snprintf(label, sizeof label, "round trip %s", k_vocabs[v]);
        int bad = round_trips(t, label, &r, 400, lossless_for(k_vocabs[v]));
        CHECK(bad == 0, "%s: %d of 400 strings differ", label, bad);
        fprintf(stderr, "%s: %d of 400 strings differ\n", label, bad);
        sym_tokenizer_destroy(t);
    }
}

/* A character split over byte tokens comes out only when complete. */
static void test_stream_bytes(void) {
    sym_tokenizer *t = open_vocab("llama-spm");
    if (!t) return;
    /* "🦙" is not in the vocabulary: byte tokens <0xF0><0x9F><0xA6><0x99> */
    const char *s = " \xf0\x9f\xa6\x99!";
    int32_t ids[16];
    size_t n = 0;
    CHECK_OK(sym_tokenizer_encode(t, s, strlen(s), false, false, ids, 16, &n));
    sym_detokenizer d;
    sym_detokenizer_init(&d, t, SYM_DECODE_KEEP_SPACE);
    char out[256];
    size_t got = 0, total = 0;
    char all[64];
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(sym_detokenizer_push(&d, ids[i], out, sizeof out, &got));
        CHECK(got == 0 || sym_utf8_valid_prefix((uint8_t *)out, got) == got, "partial output");
        memcpy(all + total, out, got);
        total += got;
    }
    CHECK_OK(sym_detokenizer_flush(&d, out, sizeof out, &got));
    CHECK(got == 0, "flush emitted %zu bytes", got);
    /* KEEP_SPACE keeps the prefix's space: "▁" + " " + 🦙 + "!" */
    CHECK(total == 7 && !memcmp(all, "  \xf0\x9f\xa6\x99!", 7), "stream gave %zu bytes", total);
    /* a lone lead byte: held, then U+FFFD at flush */
    int32_t lone = 3 + 0xE2; /* <0xE2> */
    sym_detokenizer_init(&d, t, 0);
    CHECK_OK(sym_detokenizer_push(&d, lone, out, sizeof out, &got));
    CHECK(got == 0, "lead byte emitted %zu bytes", got);
    CHECK_OK(sym_detokenizer_flush(&d, out, sizeof out, &got));
    CHECK(got == 3 && !memcmp(out, "\xef\xbf\xbd", 3), "flush gave %zu bytes", got);
    /* an invalid continuation: U+FFFD at once */
    CHECK_OK(sym_detokenizer_push(&d, 3 + 0x80, out, sizeof out, &got));
    CHECK(got == 3 && !memcmp(out, "\xef\xbf\xbd", 3), "stray continuation gave %zu bytes", got);
    /* too small a buffer: SYM_ERR_RANGE, state unchanged */
    int32_t hello = 15043;
    CHECK_STATUS(sym_detokenizer_push(&d, hello, out, 2, &got), SYM_ERR_RANGE);
    CHECK(got == 6, "needed %zu", got);
    CHECK_OK(sym_detokenizer_push(&d, hello, out, sizeof out, &got));
    CHECK(got == 6 && !memcmp(out, " Hello", 6), "after range error: %zu bytes", got);
    CHECK_STATUS(sym_detokenizer_push(&d, 99999, out, sizeof out, &got), SYM_ERR_ARG);
    sym_tokenizer_destroy(t);
}

/* ---- special tokens, decode flags, API contracts ------------------------------------------------
 */

static void expect_ids(const sym_tokenizer *t, const char *text, bool bos, bool special,
                       const int32_t *want, size_t n_want, const char *what) {
    int32_t ids[256];
    size_t n = 0;
    CHECK_OK(sym_tokenizer_encode(t, text, strlen(text), bos, special, ids, 256, &n));
    bool ok = n == n_want && !memcmp(ids, want, n * sizeof *ids);
    CHECK(ok, "%s: %zu ids", what, n);
    if (!ok) {
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", ids[i]);
        fputc('\n', stderr);
    }
}

static bool contains_id(const sym_tokenizer *t, const char *text, bool special, int32_t id) {
    int32_t ids[256];
    size_t n = 0;
    if (sym_tokenizer_encode(t, text, strlen(text), false, special, ids, 256, &n) != SYM_OK)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

static void test_specials(void) {
    sym_tokenizer *spm = open_vocab("llama-spm");
    sym_tokenizer *phi = open_vocab("phi-3");
    sym_tokenizer *gpt = open_vocab("gpt-2");
    if (!spm || !phi || !gpt) goto done;
    expect_ids(spm, "<s>Hello", false, true, (const int32_t[]){1, 15043}, 2, "<s> parsed");
    CHECK(!contains_id(spm, "<s>Hello", false, 1), "<s> must be text without parse_special");
    expect_ids(spm, "Hello", true, false, (const int32_t[]){1, 15043}, 2, "add_bos");
    CHECK(contains_id(phi, "<|user|>\nHi<|end|>", true, 32010), "<|user|>");
    CHECK(contains_id(phi, "<|user|>\nHi<|end|>", true, 32007), "<|end|>");
    CHECK(!contains_id(phi, "<|user|>\nHi<|end|>", false, 32007), "<|end|> as text");
    CHECK(contains_id(gpt, "a<|endoftext|>b", true, 50256), "<|endoftext|> parsed");
    CHECK(!contains_id(gpt, "a<|endoftext|>b", false, 50256), "<|endoftext|> as text");

    /* decode: control tokens hidden unless asked; the prefix space removed after them */
    int32_t ids[] = {1, 15043, 2, 15043};
    char out[64];
    size_t n = 0;
    CHECK_OK(sym_tokenizer_decode(spm, ids, 4, 0, out, sizeof out, &n));
    CHECK(n == 10 && !memcmp(out, "HelloHello", n), "decode: '%.*s'", (int)n, out);
    CHECK_OK(sym_tokenizer_decode(spm, ids, 4, SYM_DECODE_SPECIAL, out, sizeof out, &n));
    CHECK(n == 17 && !memcmp(out, "<s>Hello</s>Hello", n), "decode special: '%.*s'", (int)n, out);
    CHECK_OK(sym_tokenizer_decode(spm, ids + 1, 1, SYM_DECODE_KEEP_SPACE, out, sizeof out, &n));
    CHECK(n == 6 && !memcmp(out, " Hello", n), "keep space: '%.*s'", (int)n, out);
    CHECK_STATUS(sym_tokenizer_decode(spm, ids, 4, 0, out, 3, &n), SYM_ERR_RANGE);
    CHECK(n == 10, "decode needs %zu", n);
    int32_t bad = 32000;
    CHECK_STATUS(sym_tokenizer_decode(spm, &bad, 1, 0, out, sizeof out, &n), SYM_ERR_ARG);

    /* round trip with parsed specials */
    const char *chat = "<|user|>\nHow are you?<|end|>\n<|assistant|>";
    int32_t cid[64];
    CHECK_OK(sym_tokenizer_encode(phi, chat, strlen(chat), false, true, cid, 64, &n));
    size_t m = 0;
    char back[128];
    CHECK_OK(sym_tokenizer_decode(phi, cid, n, SYM_DECODE_SPECIAL, back, sizeof back, &m));
    /* Phi-3's special tokens swallow the whitespace after them (rstrip) */
    const char *want = "<|user|>How are you?<|end|><|assistant|>";
    CHECK(m == strlen(want) && !memcmp(back, want, m), "phi-3 chat: '%.*s'", (int)m, back);

    /* encode: too small a buffer reports the count */
    const char *text = "Hello world, this is a test.";
    int32_t small[3];
    CHECK_STATUS(sym_tokenizer_encode(gpt, text, strlen(text), false, false, small, 3, &n),
                 SYM_ERR_RANGE);
    CHECK(n == 8, "needed %zu ids", n);
    CHECK_STATUS(sym_tokenizer_encode(gpt, text, strlen(text), false, false, NULL, 0, &n),
                 SYM_ERR_RANGE); /* counting only */
    CHECK(n == 8, "counted %zu ids", n);
    CHECK_STATUS(sym_tokenizer_encode(gpt, "x", 1, true, false, small, 3, &n), SYM_OK);
    CHECK(n == 2 && small[0] == 50256, "gpt-2 with BOS");
    CHECK(!sym_tokenizer_wants_bos(gpt), "gpt-2 adds no BOS by default");

    /* EOG */
    CHECK(sym_tokenizer_is_eog(spm, 2) && !sym_tokenizer_is_eog(spm, 1), "spm eog");
    CHECK(sym_tokenizer_is_eog(phi, 32000) && sym_tokenizer_is_eog(phi, 32007), "phi-3 eog");
    CHECK(sym_tokenizer_is_eog(gpt, 50256) && !sym_tokenizer_is_eog(gpt, -1) &&
              !sym_tokenizer_is_eog(gpt, 1 << 20),
          "gpt-2 eog");

    /* pieces and texts */
    const char *p;
    size_t len;
    CHECK_OK(sym_tokenizer_piece(spm, 13, &p, &len)); /* <0x0A> */
    CHECK(len == 1 && p[0] == '\n', "byte piece");
    CHECK_OK(sym_tokenizer_token_text(spm, 13, &p, &len));
    CHECK(len == 6 && !memcmp(p, "<0x0A>", 6), "byte text");
    CHECK_OK(sym_tokenizer_piece(gpt, 995, &p, &len)); /* "Ġworld" */
    CHECK(len == 6 && !memcmp(p, " world", 6), "byte-level piece '%.*s'", (int)len, p);
    CHECK_STATUS(sym_tokenizer_piece(gpt, 50257, &p, &len), SYM_ERR_ARG);
    CHECK(sym_tokenizer_token_type(spm, 1) == SYM_TOKEN_CONTROL, "type of <s>");
    CHECK(!strcmp(sym_tokenizer_model(gpt), "gpt2") && !strcmp(sym_tokenizer_pre(gpt), "gpt-2"),
          "names %s %s", sym_tokenizer_model(gpt), sym_tokenizer_pre(gpt));
done:
    sym_tokenizer_destroy(spm);
    sym_tokenizer_destroy(phi);
    sym_tokenizer_destroy(gpt);
}

/* ---- long inputs
 * --------------------------------------------------------------------------------- */

static void test_long_inputs(void) {
    const size_t n = 1 << 20;
    char *text = malloc(n);
    int32_t *ids = malloc(sizeof *ids * (n + 1));
    static const char *const fills[] = {"a", " ", "3", "\n", "\xf0\x9f\xa6\x99"};
    double worst = 0;
    for (size_t v = 0; v < N_VOCABS; v++) {
        sym_tokenizer *t = open_vocab(k_vocabs[v]);
        if (!t) continue;
        for (size_t f = 0; f < sizeof fills / sizeof *fills; f++) {
            size_t fl = strlen(fills[f]);
            for (size_t i = 0; i < n; i++)
                text[i] = fills[f][i % fl];
            size_t m = 0;
            double t0 = now_s();
            CHECK_OK(sym_tokenizer_encode(t, text, n, false, false, ids, n + 1, &m));
            double dt = now_s() - t0;
            CHECK(m > 0 && dt < 20.0, "%s: 1 MiB of '%s' took %.2f s", k_vocabs[v], fills[f], dt);
            if (dt > worst) worst = dt;
        }
        sym_tokenizer_destroy(t);
    }
    fprintf(stderr, "long inputs: slowest 1 MiB line of one repeated character: %.3f s\n", worst);
    free(text);
    free(ids);
}

/* ---- hostile GGUF metadata
 * ------------------------------------------------------------------------ */

typedef struct gbuf {
    unsigned char *p;
    size_t n, cap;
    uint64_t n_kv;
} gbuf;

static void put(gbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(gbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(gbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(gbuf *b, const char *s, size_t n) {
    put_u64(b, n);
    put(b, s, n);
}
static void kv_head(gbuf *b, const char *key, uint32_t type) {
    put_str(b, key, strlen(key));
    put_u32(b, type);
    b->n_kv++;
}
static void kv_str(gbuf *b, const char *key, const char *v) {
    kv_head(b, key, SYM_GGUF_STRING);
    put_str(b, v, strlen(v));
}
static void kv_u32(gbuf *b, const char *key, uint32_t v) {
    kv_head(b, key, SYM_GGUF_U32);
    put_u32(b, v);
}
static void kv_strs(gbuf *b, const char *key, const char *const *v, size_t n) {
    kv_head(b, key, SYM_GGUF_ARRAY);
    put_u32(b, SYM_GGUF_STRING);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++)
        put_str(b, v[i], strlen(v[i]));
}
static void kv_f32s(gbuf *b, const char *key, size_t n) {
    kv_head(b, key, SYM_GGUF_ARRAY);
    put_u32(b, SYM_GGUF_F32);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++) {
        float f = -(float)i;
        put(b, &f, 4);
    }
}
static void kv_i32s(gbuf *b, const char *key, const int32_t *v, size_t n) {
    kv_head(b, key, SYM_GGUF_ARRAY);
    put_u32(b, SYM_GGUF_I32);
    put_u64(b, n);
    put(b, v, n * 4);
}
/* header in front of the kvs: magic, version 3, 0 tensors, n_kv */
static unsigned char *finish_gguf(gbuf *kvs, size_t *size) {
    gbuf out = {0};
    put_u32(&out, 0x46554747);
    put_u32(&out, 3);
    put_u64(&out, 0);
    put_u64(&out, kvs->n_kv);
    put(&out, kvs->p, kvs->n);
    free(kvs->p);
    *size = out.n;
    return out.p;
}

static sym_status create_from(gbuf *kvs, sym_tokenizer **t) {
    size_t size;
    unsigned char *data = finish_gguf(kvs, &size);
    sym_gguf *g = NULL;
    *t = NULL;
    sym_status st = sym_gguf_open_memory(data, size, &g);
    if (st == SYM_OK) st = sym_tokenizer_create_gguf(g, t);
    sym_gguf_close(g);
    free(data);
    return st;
}

static const char *const k_small_tokens[] = {"<unk>",
                                             "<s>",
                                             "</s>",
                                             "\xe2\x96\x81",
                                             "a",
                                             "b",
                                             "\xe2\x96\x81"
                                             "a",
                                             "ab",
                                             "\xff\xfe"};
#define SMALL_N (sizeof k_small_tokens / sizeof k_small_tokens[0])
static const int32_t k_small_types[SMALL_N] = {2, 3, 3, 1, 1, 1, 1, 1, 1};

static const char *const k_bpe_tokens[] = {"a",
                                           "b",
                                           "c",
                                           "ab",
                                           "abc",
                                           "\xc4\xa0",
                                           "\xc4\xa0"
                                           "a",
                                           "<|endoftext|>",
                                           "\xff"};
#define BPE_N (sizeof k_bpe_tokens / sizeof k_bpe_tokens[0])
static const char *const k_bpe_merges[] = {"a b", "ab c", "\xc4\xa0 a"};

static void expect_fail(sym_status st, sym_status want, const char *needle, const char *what) {
    CHECK(st == want, "%s: got %s (%s), want %s", what, sym_status_name(st), sym_last_error(),
          sym_status_name(want));
    CHECK(strstr(sym_last_error(), needle) != NULL, "%s: detail '%s' lacks '%s'", what,
          sym_last_error(), needle);
}

static void test_hostile_gguf(void) {
    sym_log_set_level(SYM_LOG_ERROR); /* the skipped-merge warnings are expected here */
    sym_tokenizer *t = NULL;
    gbuf b = {0};
    /* a valid small SPM vocabulary first */
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_f32s(&b, "tokenizer.ggml.scores", SMALL_N);
    kv_i32s(&b, "tokenizer.ggml.token_type", k_small_types, SMALL_N);
    CHECK_OK(create_from(&b, &t));
    if (t) {
        /* invalid UTF-8 input and tokens: defined results, no crash */
        int32_t ids[64];
        size_t n = 0;
        CHECK_OK(sym_tokenizer_encode(t, "a \xff\xfe b\xc3", 8, true, true, ids, 64, &n));
        CHECK(n >= 3, "ids %zu", n);
        sym_tokenizer_destroy(t);
    }

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "tokenizer.ggml.tokens", "no tokens");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, 0);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "empty vocabulary", "empty vocabulary");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_f32s(&b, "tokenizer.ggml.scores", SMALL_N - 1);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "scores", "scores length");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_i32s(&b, "tokenizer.ggml.token_type", k_small_types, SMALL_N - 2);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "token_type", "types length");

    int32_t bad_types[SMALL_N];
    memcpy(bad_types, k_small_types, sizeof bad_types);
    bad_types[4] = 77;
    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_i32s(&b, "tokenizer.ggml.token_type", bad_types, SMALL_N);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "type 77", "bad type");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_u32(&b, "tokenizer.ggml.bos_token_id", 1000);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "bos_token_id", "bos out of range");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    kv_u32(&b, "tokenizer.ggml.eos_token_id", 0xFFFFFFFFu); /* "none" */
    CHECK_OK(create_from(&b, &t));
    if (t) CHECK(sym_tokenizer_eos(t) == -1, "eos none");
    sym_tokenizer_destroy(t);

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "t5");
    kv_strs(&b, "tokenizer.ggml.tokens", k_small_tokens, SMALL_N);
    expect_fail(create_from(&b, &t), SYM_ERR_UNSUPPORTED, "'t5'", "unknown model");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_strs(&b, "tokenizer.ggml.tokens", k_bpe_tokens, BPE_N);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "without merges", "no merges");

    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", "no-such-pre");
    kv_strs(&b, "tokenizer.ggml.tokens", k_bpe_tokens, BPE_N);
    kv_strs(&b, "tokenizer.ggml.merges", k_bpe_merges, 3);
    expect_fail(create_from(&b, &t), SYM_ERR_UNSUPPORTED, "no-such-pre", "unknown pre");

    static const char *const unknown_merges[] = {"x y", "nospace", "a zz"};
    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", "gpt-2");
    kv_strs(&b, "tokenizer.ggml.tokens", k_bpe_tokens, BPE_N);
    kv_strs(&b, "tokenizer.ggml.merges", unknown_merges, 3);
    expect_fail(create_from(&b, &t), SYM_ERR_FORMAT, "merges", "only unknown merges");

    /* some merges unknown, a duplicate token, an out-of-alphabet token: usable */
    static const char *const mixed_merges[] = {"a b", "x y", "ab c", "\xc4\xa0 a", "a b"};
    static const char *const dup_tokens[] = {"a",
                                             "b",
                                             "c",
                                             "ab",
                                             "abc",
                                             "\xc4\xa0",
                                             "\xc4\xa0"
                                             "a",
                                             "<|endoftext|>",
                                             "\xff",
                                             "a"};
    memset(&b, 0, sizeof b);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", "gpt-2");
    kv_strs(&b, "tokenizer.ggml.tokens", dup_tokens, 10);
    kv_strs(&b, "tokenizer.ggml.merges", mixed_merges, 5);
    CHECK_OK(create_from(&b, &t));
    if (t) {
        int32_t ids[16];
        size_t n = 0;
        CHECK_OK(sym_tokenizer_encode(t, "abc a\xfe", 6, false, false, ids, 16, &n));
        /* "abc" -> 4, " a" -> 6; 0xFE has no byte token and there is no <unk>: dropped */
        CHECK(n == 2 && ids[0] == 4 && ids[1] == 6, "mixed merges: %zu ids", n);
        sym_tokenizer_destroy(t);
    }
}

/* Random corruption of a small valid vocabulary: every outcome is a status, never a crash. */
static void test_corrupted_gguf(void) {
    test_rng r = test_rng_init("test_tokenizer corruption");
    gbuf b = {0};
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_str(&b, "tokenizer.ggml.pre", "llama3");
    kv_strs(&b, "tokenizer.ggml.tokens", k_bpe_tokens, BPE_N);
    kv_strs(&b, "tokenizer.ggml.merges", k_bpe_merges, 3);
    kv_u32(&b, "tokenizer.ggml.bos_token_id", 7);
    size_t size;
    unsigned char *good = finish_gguf(&b, &size);
    unsigned char *buf = malloc(size);
    int created = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(buf, good, size);
        int flips = 1 + (int)test_rng_below(&r, 4);
        for (int f = 0; f < flips; f++)
            buf[test_rng_below(&r, size)] ^= (uint8_t)(1 + test_rng_below(&r, 255));
        sym_gguf *g = NULL;
        sym_tokenizer *t = NULL;
        if (sym_gguf_open_memory(buf, size, &g) == SYM_OK &&
            sym_tokenizer_create_gguf(g, &t) == SYM_OK) {
            created++;
            char text[64];
            size_t len = random_text(&r, text, sizeof text, false);
            int32_t ids[256];
            char back[1024];
            size_t n = 0, m = 0;
            if (sym_tokenizer_encode(t, text, len, true, true, ids, 256, &n) == SYM_OK)
                (void)sym_tokenizer_decode(t, ids, n, SYM_DECODE_SPECIAL, back, sizeof back, &m);
        }
        sym_tokenizer_destroy(t);
        sym_gguf_close(g);
    }
    fprintf(stderr, "corruption: %d of 2000 corrupted files still made a tokenizer\n", created);
    free(buf);
    free(good);
}

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
    test_vocab_cases();
    test_aidreams();
    test_specials();
    test_stream_bytes();
    test_round_trips();
    test_hf_json();
    test_hostile_gguf();
    test_corrupted_gguf();
    test_hostile_json();
    sym_log_set_level(SYM_LOG_WARNING);
    test_long_inputs();
    return test_finish("test_tokenizer");
}
