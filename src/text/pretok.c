/* pretok.c — pre-tokenizers: the regular expressions that cut text into words before BPE.
 *
 * A pre-tokenizer is a list of regexes applied in order; each one splits every piece the previous
 * ones produced into its matches and the gaps between them (Hugging Face's Split with behaviour
 * "Isolated"; a piece is matched on its own, so lookaheads stop at its end). The lists below are
 * the ones the models' tokenizer.json files declare (Sequence of Split / ByteLevel / Digits /
 * Punctuation), written for PCRE2 with UTF + UCP, so \p{L}, \p{N}, \s follow Unicode. Digits and
 * Punctuation steps are regexes too: Digits = \p{N} (or \p{N}+), Punctuation = Unicode P plus
 * the ASCII symbols Rust's is_ascii_punctuation counts ($+<=>^`|~). Patterns are compiled once
 * per tokenizer, JIT-compiled where PCRE2 has a JIT.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "base/alloc.h"
#include "base/log.h"
#include "text/tok_impl.h"
#include "text/utf8.h"

/* GPT-2 (HF ByteLevel use_regex=true) */
#define P_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* Llama 3 (tiktoken cl100k) */
#define P_LLAMA3                                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "                     \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen2: as Llama 3 but single digits */
#define P_QWEN2                                                                                    \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                          \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Tekken (Mistral Nemo) and GPT-4o: case-aware words */
#define P_WORDS_CASED                                                                              \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"    \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"    \
    "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
#define P_GPT4O                                                                                    \
    P_WORDS_CASED "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define P_TEKKEN                                                                                   \
    P_WORDS_CASED "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* HF Punctuation: Unicode P plus the ASCII symbols Rust counts as punctuation */
#define P_PUNCT "[\\p{P}\\$\\+<=>\\^~\\|`]+"
#define P_CJK   "[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+"
/* DeepSeek LLM: cased letters, spelled out as in its tokenizer.json */
#define P_DEEPSEEK_LETTERS                                                                         \
    "\\s?[A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}\\x{1c4}-"   \
    "\\x{293}\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}\\x{37f}\\x{386}"  \
    "\\x{388}-\\x{38a}\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}\\x{3f7}-\\x{481}\\x{48a}-"        \
    "\\x{52f}\\x{531}-\\x{556}\\x{10a0}-\\x{10c5}\\x{13a0}-\\x{13f5}\\x{13f8}-\\x{13fd}\\x{1c90}-" \
    "\\x{1cba}\\x{1cbd}-\\x{1cbf}\\x{1d00}-\\x{1d2b}\\x{1d6b}-\\x{1d77}\\x{1d79}-\\x{1d9a}"        \
    "\\x{1e00}-\\x{1f15}\\x{1f18}-\\x{1f1d}\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}-"       \
    "\\x{1f57}\\x{1f59}\\x{1f5b}\\x{1f5d}\\x{1f5f}-\\x{1f7d}\\x{1f80}-\\x{1fb4}\\x{1fb6}-"         \
    "\\x{1fbc}\\x{1fbe}\\x{1fc2}-\\x{1fc4}\\x{1fc6}-\\x{1fcc}\\x{1fd0}-\\x{1fd3}\\x{1fd6}-"        \
    "\\x{1fdb}\\x{1fe0}-\\x{1fec}\\x{1ff2}-\\x{1ff4}\\x{1ff6}-\\x{1ffc}\\x{2102}\\x{2107}"         \
    "\\x{210a}-\\x{2113}\\x{2115}\\x{2119}-\\x{211d}\\x{2124}\\x{2126}\\x{2128}\\x{212a}-"         \
    "\\x{212d}\\x{212f}-\\x{2134}\\x{2139}\\x{213c}-\\x{213f}\\x{2145}-\\x{2149}\\x{214e}"         \
    "\\x{2183}\\x{2184}\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}\\x{2ceb}-\\x{2cee}\\x{2cf2}"         \
    "\\x{2cf3}\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}\\x{a771}-\\x{a787}"        \
    "\\x{a78b}-\\x{a78e}\\x{ab70}-\\x{abbf}\\x{fb00}-\\x{fb06}\\x{fb13}-\\x{fb17}\\x{ff21}-"       \
    "\\x{ff3a}\\x{ff41}-\\x{ff5a}\\x{10400}-\\x{1044f}\\x{104b0}-\\x{104d3}\\x{104d8}-"            \
    "\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-\\x{10cf2}\\x{118a0}-\\x{118df}\\x{1e900}-"         \
    "\\x{1e943}]+"
#define P_BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{ff0c}\\x{3001}\\x{964}\\x{6d4}\\x{60c})]+"

enum { F_IGNORE_MERGES = 1, F_ADD_BOS = 2 };

typedef struct pretok_def {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *steps[SYM_TOK_MAX_STEPS];
    unsigned flags;
} pretok_def;

static const pretok_def k_pretoks[] = {
    /* llama.cpp's "default" (from ggllm's Falcon support) */
    {"default", {P_PUNCT, P_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, 0},
    {"gpt-2|gpt2|gpt-neox|mpt|olmo|jais|phi-2|jina-es|jina-de|jina-v1-en|jina-v2-es|jina-v2-de|"
     "jina-v2-code|roberta-bpe|gigachat|exaone4|trillion|granite-docling|a.x-4.0|mellum|"
     "modern-bert",
     {P_GPT2},
     0},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2",
     {P_LLAMA3},
     F_IGNORE_MERGES | F_ADD_BOS},
    {"dbrx|smaug-bpe|chatglm-bpe|glm4", {P_LLAMA3}, 0},
    {"deepseek-llm",
     {"[\\r\\n]", P_DEEPSEEK_LETTERS,
      "\\s?[!-/:-~\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}\\x{2018}-\\x{201f}\\x{3000}-\\x{3002}]+",
      "\\s+$", P_CJK, "\\p{N}+"},
     0},
    {"deepseek-coder", {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", P_CJK, "\\p{N}"}, 0},
    /* Falcon: Punctuation, ByteLevel regex, then runs of three ASCII digits */
    {"falcon", {P_PUNCT, P_GPT2, "[0-9][0-9][0-9]"}, 0},
    /* Digits(individual) + ByteLevel */
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b|mellum2",
     {"\\p{N}", P_GPT2},
     0},
    {"qwen2|stablelm2|deepseek-r1-qwen|megrez|hunyuan|kormo|f2llmv2|solar-open", {P_QWEN2}, 0},
    {"poro-chat|bloom|gpt3-finnish", {P_BLOOM}, 0},
    {"viking", {P_BLOOM, "\\p{N}"}, 0},
    {"tekken", {P_TEKKEN}, F_IGNORE_MERGES | F_ADD_BOS},
    {"gpt-4o|llama4|kanana2", {P_GPT4O}, 0},
};

static bool name_in(const char *names, const char *name, size_t len) {
    const char *p = names;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && memcmp(p, name, len) == 0) return true;
        if (!bar) return false;
        p = bar + 1;
    }
}

/* PCRE2 allocates through the library's hooks too. */
static void *pcre_malloc(PCRE2_SIZE size, void *user) {
    (void)user;
    return sym_malloc(size);
}
static void pcre_free(void *p, void *user) {
    (void)user;
    sym_free(p);
}

sym_status sym_pretok_add_regex(sym_tokenizer *t, const char *pattern, size_t len) {
    if (t->n_steps == SYM_TOK_MAX_STEPS)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "tokenizer: more than %d pre-tokenizer steps",
                        SYM_TOK_MAX_STEPS);
    pcre2_general_context *gc = pcre2_general_context_create(pcre_malloc, pcre_free, NULL);
    pcre2_compile_context *cc = gc ? pcre2_compile_context_create(gc) : NULL;
    if (!cc) {
        pcre2_general_context_free(gc);
        return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory compiling a regex");
    }
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP, &err, &err_off, cc);
    pcre2_compile_context_free(cc);
    pcre2_general_context_free(gc);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return SYM_FAIL(SYM_ERR_FORMAT,
                        "tokenizer: pre-tokenizer regex '%.*s' does not compile: "
                        "%s at offset %zu",
                        (int)(len > 80 ? 80 : len), pattern, (char *)msg, (size_t)err_off);
    }
    /* JIT is an optimization only: without it (or if it fails) the interpreter runs. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    t->steps[t->n_steps++] = code;
    return SYM_OK;
}

sym_status sym_pretok_init_named(sym_tokenizer *t, const char *name, size_t name_len) {
    for (size_t i = 0; i < sizeof k_pretoks / sizeof k_pretoks[0]; i++) {
        const pretok_def *d = &k_pretoks[i];
        if (!name_in(d->names, name, name_len)) continue;
        for (int s = 0; s < SYM_TOK_MAX_STEPS && d->steps[s]; s++)
            SYM_TRY(sym_pretok_add_regex(t, d->steps[s], strlen(d->steps[s])));
        if (d->flags & F_IGNORE_MERGES) t->ignore_merges = true;
        if (d->flags & F_ADD_BOS) t->add_bos = true;
        size_t n = name_len < sizeof t->pre_name - 1 ? name_len : sizeof t->pre_name - 1;
        memcpy(t->pre_name, name, n);
        t->pre_name[n] = '\0';
        return SYM_OK;
    }
    return SYM_FAIL(SYM_ERR_UNSUPPORTED,
                    "tokenizer: unknown pre-tokenizer '%.*s' "
                    "(tokenizer.ggml.pre)",
                    (int)(name_len > 64 ? 64 : name_len), name);
}

void sym_pretok_free(sym_tokenizer *t) {
    for (int i = 0; i < t->n_steps; i++)
        pcre2_code_free(t->steps[i]);
    t->n_steps = 0;
}

sym_status sym_pretok_state_init(const sym_tokenizer *t, sym_pretok_state *s) {
    s->match_data = NULL;
    if (t->n_steps == 0) return SYM_OK;
    pcre2_general_context *gc = pcre2_general_context_create(pcre_malloc, pcre_free, NULL);
    if (gc) s->match_data = pcre2_match_data_create(1, gc);
    pcre2_general_context_free(gc);
    if (!s->match_data) return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory for regex state");
    return SYM_OK;
}

void sym_pretok_state_free(sym_pretok_state *s) {
    pcre2_match_data_free(s->match_data);
    s->match_data = NULL;
}

static int run_match(const pcre2_code *code, const char *p, size_t n, size_t pos,
                     pcre2_match_data *md) {
    int rc = pcre2_match(code, (PCRE2_SPTR)p, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
    /* The JIT's default stack is small; a deep backtrack falls back to the interpreter, which
     * keeps its backtracking state on the heap. */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(code, (PCRE2_SPTR)p, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
    return rc;
}

static sym_status split_step(const sym_tokenizer *t, pcre2_match_data *md, int step, const char *p,
                             size_t n, sym_word_fn fn, void *ctx) {
    if (step == t->n_steps) return fn(ctx, p, n);
    const pcre2_code *code = t->steps[step];
    size_t pos = 0, gap = 0;
    while (pos < n) {
        int rc = run_match(code, p, n, pos, md);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return SYM_FAIL(SYM_ERR_INTERNAL, "tokenizer: regex match failed: %s", (char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e <= s) { /* an empty match splits nothing: step over one character */
            size_t l = s < n ? sym_utf8_valid_len((const uint8_t *)p + s, n - s) : 1;
            pos = s + (l ? l : 1);
            continue;
        }
        if (s > gap) SYM_TRY(split_step(t, md, step + 1, p + gap, s - gap, fn, ctx));
        SYM_TRY(split_step(t, md, step + 1, p + s, e - s, fn, ctx));
        gap = pos = e;
    }
    if (gap < n) SYM_TRY(split_step(t, md, step + 1, p + gap, n - gap, fn, ctx));
    return SYM_OK;
}

sym_status sym_pretok_split(const sym_tokenizer *t, sym_pretok_state *s, const char *text,
                            size_t len, sym_word_fn fn, void *ctx) {
    const uint8_t *p = (const uint8_t *)text;
    size_t i = 0;
    while (i < len) {
        size_t run = sym_utf8_valid_prefix(p + i, len - i);
        if (run) {
            if (t->n_steps)
                SYM_TRY(split_step(t, s->match_data, 0, text + i, run, fn, ctx));
            else
                SYM_TRY(fn(ctx, text + i, run));
            i += run;
        } else {
            SYM_TRY(fn(ctx, text + i, 1)); /* an invalid byte is a word of its own */
            i++;
        }
    }
    return SYM_OK;
}
