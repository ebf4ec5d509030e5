/* tokenizer_util.h — what the tokenizer tests share: the ../shared vocabularies and their
 * .inp/.out cases, random text, round trips through encode/decode and the streaming
 * detokenizer, and small expectation helpers. Everything is static inline. */
#ifndef SYM_TEST_TOKENIZER_UTIL_H
#define SYM_TEST_TOKENIZER_UTIL_H

#include <time.h>

#include "base/log.h"
#include "model/gguf.h"
#include "test_util.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

static const char *const k_vocabs[] = {"llama-spm",      "phi-3", "gpt-2", "falcon",
                                       "deepseek-coder", "mpt",   "refact"};
#define N_VOCABS (sizeof k_vocabs / sizeof k_vocabs[0])

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline const char *vocab_path(const char *name, const char *ext, char *buf, size_t cap) {
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
static inline bool load_cases(const char *name, vcases *vc) {
    char p[1024];
    size_t n_inp = 0, n_out = 0;
    memset(vc, 0, sizeof *vc);
    vc->inp = test_read_file(vocab_path(name, ".inp", p, sizeof p), &n_inp);
    vc->out = test_read_file(vocab_path(name, ".out", p, sizeof p), &n_out);
    if (!vc->inp || !vc->out) return false;
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

static inline void free_cases(vcases *vc) {
    free(vc->inp);
    free(vc->out);
    free(vc->c);
}

static inline void print_escaped(const char *s, size_t n) {
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
static inline size_t run_cases(const sym_tokenizer *t, const vcases *vc, const char *label) {
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

static inline sym_tokenizer *open_vocab(const char *name) {
    char p[1024];
    sym_tokenizer *t = NULL;
    CHECK_OK(sym_tokenizer_open(vocab_path(name, "", p, sizeof p), &t));
    return t;
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
static inline size_t random_text(test_rng *r, char *buf, size_t cap, bool no_esc) {
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
static inline void check_stream(const sym_tokenizer *t, const int32_t *ids, size_t n,
                                const char *want, size_t want_len, const char *label) {
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

static inline const lossless *lossless_for(const char *vocab) {
    for (size_t i = 0; i < sizeof k_lossless / sizeof *k_lossless; i++)
        if (!strcmp(k_lossless[i].vocab, vocab)) return &k_lossless[i];
    return &k_lossless[0];
}

/* decode(encode(s)) == s for random strings; also streams each decode. Returns failures. */
static inline int round_trips(const sym_tokenizer *t, const char *label, test_rng *r, int n_strings,
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

/* ---- special tokens, decode flags, API contracts ------------------------------------------------
 */

static inline void expect_ids(const sym_tokenizer *t, const char *text, bool bos, bool special,
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

static inline bool contains_id(const sym_tokenizer *t, const char *text, bool special, int32_t id) {
    int32_t ids[256];
    size_t n = 0;
    if (sym_tokenizer_encode(t, text, strlen(text), false, special, ids, 256, &n) != SYM_OK)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

static inline void expect_fail(sym_status st, sym_status want, const char *needle,
                               const char *what) {
    CHECK(st == want, "%s: got %s (%s), want %s", what, sym_status_name(st), sym_last_error(),
          sym_status_name(want));
    CHECK(strstr(sym_last_error(), needle) != NULL, "%s: detail '%s' lacks '%s'", what,
          sym_last_error(), needle);
}

#endif
