/* tokenizer.c — the tokenizer object: what every loader shares when it finishes one (pieces, maps,
 * byte tokens, special-token trie, EOG set), the encode driver (special tokens, prefix/escape
 * normalization, pre-tokenizer, merge loop) and full-sequence decode. Loaders: tok_gguf.c,
 * tok_hf.c. Streaming decode: detokenizer.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/log.h"
#include "text/tok_impl.h"
#include "text/utf8.h"

#define SPACE_ESC "\xe2\x96\x81" /* U+2581, SentencePiece's visible space */

/* ---- building ----------------------------------------------------------------------------------
 */

sym_status sym_tok_alloc(int32_t n_vocab, sym_tokenizer **out) {
    *out = NULL;
    if (n_vocab <= 0) return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: empty vocabulary");
    if (n_vocab > (1 << 30))
        return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: vocabulary of %d tokens is too large", n_vocab);
    sym_tokenizer *t = sym_calloc(1, sizeof *t);
    if (!t) return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory");
    t->tokens = sym_calloc((size_t)n_vocab, sizeof *t->tokens);
    if (!t->tokens) {
        sym_free(t);
        return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory for %d tokens", n_vocab);
    }
    t->n_vocab = n_vocab;
    for (int32_t i = 0; i < n_vocab; i++)
        t->tokens[i].type = SYM_TOKEN_UNUSED;
    t->bos = t->eos = t->unk = -1;
    for (int i = 0; i < 256; i++)
        t->byte_token[i] = t->trie_root[i] = -1;
    t->model_name = "";
    *out = t;
    return SYM_OK;
}

sym_status sym_tok_arena_add(sym_tokenizer *t, const void *bytes, size_t len, uint32_t *off) {
    if (len > UINT32_MAX - t->arena_len)
        return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer: vocabulary text exceeds 4 GiB");
    if (t->arena_len + len > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap : 1 << 16;
        while (cap < t->arena_len + len)
            cap *= 2;
        char *a = sym_realloc(t->arena, cap);
        if (!a) return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory for vocabulary text");
        t->arena = a;
        t->arena_cap = cap;
    }
    if (len) memcpy(t->arena + t->arena_len, bytes, len);
    *off = (uint32_t)t->arena_len;
    t->arena_len += len;
    return SYM_OK;
}

sym_status sym_tok_set_text(sym_tokenizer *t, int32_t id, const char *text, size_t len) {
    uint32_t off = 0;
    SYM_TRY(sym_tok_arena_add(t, text, len, &off));
    t->tokens[id].text_off = t->tokens[id].piece_off = off;
    t->tokens[id].text_len = t->tokens[id].piece_len = (uint32_t)len;
    return SYM_OK;
}

void sym_tok_add_eog(sym_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    if (t->n_eog < SYM_TOK_MAX_EOG) t->eog[t->n_eog++] = id;
    t->tokens[id].flags |= TOKF_EOG;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xHH>" -> 0..255, else -1 */
static int parse_byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* The decoded bytes of a normal token: GPT-2 alphabet -> bytes, or "▁" -> " ". Writes into buf
 * (>= len bytes); returns the length, or -1 if the text is not in the byte alphabet. */
static long decode_text(const sym_tokenizer *t, const int16_t *cp_byte, const char *s, size_t n,
                        uint8_t *buf) {
    const uint8_t *p = (const uint8_t *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (t->byte_level) {
            size_t l = sym_utf8_valid_len(p + i, n - i);
            if (!l) return -1;
            uint32_t cp = sym_utf8_decode(p + i, l);
            if (cp >= 324 || cp_byte[cp] < 0) return -1;
            buf[o++] = (uint8_t)cp_byte[cp];
            i += l;
        } else if (n - i >= 3 && memcmp(p + i, SPACE_ESC, 3) == 0) {
            buf[o++] = ' ';
            i += 3;
        } else {
            buf[o++] = p[i++];
        }
    }
    return (long)o;
}

static sym_status build_pieces(sym_tokenizer *t) {
    int16_t cp_byte[324];
    for (int i = 0; i < 324; i++)
        cp_byte[i] = -1;
    for (int b = 0; b < 256; b++)
        cp_byte[sym_byte_to_cp((uint8_t)b)] = (int16_t)b;
    uint8_t *buf = NULL;
    size_t cap = 0;
    sym_status st = SYM_OK;
    size_t n_undecodable = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        tok_entry *e = &t->tokens[id];
        const char *text = sym_tok_text(t, id);
        if (e->type == SYM_TOKEN_BYTE) {
            int b = parse_byte_token(text, e->text_len);
            if (b < 0) {
                e->type = SYM_TOKEN_NORMAL; /* typed as a byte but not spelled as one */
            } else {
                uint8_t c = (uint8_t)b;
                SYM_TRY_GOTO(sym_tok_arena_add(t, &c, 1, &e->piece_off));
                e->piece_len = 1;
                continue;
            }
        }
        if (e->type != SYM_TOKEN_NORMAL && e->type != SYM_TOKEN_UNUSED) continue;
        if (!t->byte_level && !t->escape_spaces) continue;
        if (e->text_len > cap) {
            cap = e->text_len * 2;
            uint8_t *nb = sym_realloc(buf, cap);
            if (!nb) SYM_FAIL_GOTO(SYM_ERR_OOM, "tokenizer: out of memory");
            buf = nb;
        }
        text = sym_tok_text(t, id); /* the arena may have moved */
        long n = decode_text(t, cp_byte, text, e->text_len, buf);
        if (n < 0) {
            n_undecodable++; /* keeps its text as its piece */
            continue;
        }
        if ((size_t)n == e->text_len && memcmp(buf, text, (size_t)n) == 0) continue;
        SYM_TRY_GOTO(sym_tok_arena_add(t, buf, (size_t)n, &e->piece_off));
        e->piece_len = (uint32_t)n;
    }
    if (n_undecodable)
        SYM_WARN("tokenizer: %zu tokens are not spelled in the byte-level alphabet; they decode "
                 "as their text",
                 n_undecodable);
fail:
    sym_free(buf);
    return st;
}

static sym_status trie_node(sym_tokenizer *t, int32_t *out) {
    if (t->n_trie == t->cap_trie) {
        int32_t cap = t->cap_trie ? t->cap_trie * 2 : 256;
        tok_trie_node *n = sym_realloc(t->trie, (size_t)cap * sizeof *n);
        if (!n) return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory for special tokens");
        t->trie = n;
        t->cap_trie = cap;
    }
    t->trie[t->n_trie] = (tok_trie_node){-1, -1, -1, 0};
    *out = t->n_trie++;
    return SYM_OK;
}

static sym_status trie_insert(sym_tokenizer *t, int32_t id) {
    const uint8_t *s = (const uint8_t *)sym_tok_text(t, id);
    size_t n = t->tokens[id].text_len;
    int32_t node = t->trie_root[s[0]];
    if (node < 0) {
        SYM_TRY(trie_node(t, &node));
        t->trie[node].byte = s[0];
        t->trie_root[s[0]] = node;
    }
    for (size_t i = 1; i < n; i++) {
        int32_t c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != s[i])
            c = t->trie[c].sibling;
        if (c < 0) {
            SYM_TRY(trie_node(t, &c));
            t->trie[c].byte = s[i];
            t->trie[c].sibling = t->trie[node].child;
            t->trie[node].child = c;
        }
        node = c;
    }
    if (t->trie[node].token < 0) t->trie[node].token = id; /* duplicates: the lower id */
    return SYM_OK;
}

static bool is_special_type(uint8_t type) {
    return type == SYM_TOKEN_CONTROL || type == SYM_TOKEN_USER_DEFINED || type == SYM_TOKEN_UNKNOWN;
}

/* End-of-turn tokens recognized by their text (llama.cpp's list). */
static const char *const k_eog_texts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<\xef\xbd\x9c"
    "end" SPACE_ESC "of" SPACE_ESC "sentence"
    "\xef\xbd\x9c>",
};

sym_status sym_tok_finish(sym_tokenizer *t) {
    SYM_TRY(sym_tok_map_build(t, &t->by_text, false));
    SYM_TRY(build_pieces(t));
    if (t->byte_level) {
        SYM_TRY(sym_tok_map_build(t, &t->by_piece, true));
        for (int b = 0; b < 256; b++) {
            uint8_t u[4];
            size_t n = sym_utf8_encode(sym_byte_to_cp((uint8_t)b), u);
            t->byte_token[b] = sym_tok_map_find(t, &t->by_text, (const char *)u, n);
        }
    } else {
        for (int b = 0; b < 256; b++) {
            char s[8];
            snprintf(s, sizeof s, "<0x%02X>", b);
            int32_t id = sym_tok_map_find(t, &t->by_text, s, 6);
            if (id < 0) {
                snprintf(s, sizeof s, "<0x%02x>", b);
                id = sym_tok_map_find(t, &t->by_text, s, 6);
            }
            if (id < 0 && b < 0x80) { /* llama.cpp: an ASCII byte may be spelled as itself */
                char c = (char)b;
                id = sym_tok_map_find(t, &t->by_text, &c, 1);
            }
            t->byte_token[b] = id;
        }
    }
    t->max_piece = 0;
    t->spm_word_split = t->algo == TOK_ALGO_SPM && t->escape_spaces;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const tok_entry *e = &t->tokens[id];
        if (t->spm_word_split) {
            const char *s = sym_tok_text(t, id);
            size_t k = 0;
            while (k + 3 <= e->text_len && memcmp(s + k, SPACE_ESC, 3) == 0)
                k += 3;
            if (e->text_len - k >= 3 && memmem(s + k, e->text_len - k, SPACE_ESC, 3))
                t->spm_word_split = false;
        }
        size_t n = e->piece_len > e->text_len ? e->piece_len : e->text_len;
        if (n > t->max_piece) t->max_piece = n;
        if (is_special_type(e->type) && e->text_len > 0) {
            SYM_TRY(trie_insert(t, id));
            t->has_specials = true;
        }
    }
    sym_tok_add_eog(t, t->eos);
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const tok_entry *e = &t->tokens[id];
        if (e->type != SYM_TOKEN_CONTROL && e->type != SYM_TOKEN_USER_DEFINED) continue;
        for (size_t k = 0; k < sizeof k_eog_texts / sizeof k_eog_texts[0]; k++)
            if (e->text_len == strlen(k_eog_texts[k]) &&
                memcmp(sym_tok_text(t, id), k_eog_texts[k], e->text_len) == 0)
                sym_tok_add_eog(t, id);
    }
    return SYM_OK;
}

void sym_tokenizer_destroy(sym_tokenizer *t) {
    if (!t) return;
    sym_pretok_free(t);
    sym_tok_map_free(&t->by_text);
    sym_tok_map_free(&t->by_piece);
    sym_tok_merges_free(&t->merges);
    sym_free(t->trie);
    sym_free(t->arena);
    sym_free(t->tokens);
    sym_free(t);
}

/* ---- vocabulary ------------------------------------------------------------------------------ */

int32_t sym_tokenizer_n_vocab(const sym_tokenizer *t) { return t->n_vocab; }
int32_t sym_tokenizer_bos(const sym_tokenizer *t) { return t->bos; }
int32_t sym_tokenizer_eos(const sym_tokenizer *t) { return t->eos; }
bool sym_tokenizer_wants_bos(const sym_tokenizer *t) { return t->add_bos && t->bos >= 0; }
const char *sym_tokenizer_model(const sym_tokenizer *t) { return t->model_name; }
const char *sym_tokenizer_pre(const sym_tokenizer *t) { return t->pre_name; }
size_t sym_tokenizer_max_piece(const sym_tokenizer *t) { return t->max_piece; }

bool sym_tokenizer_is_eog(const sym_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->tokens[id].flags & TOKF_EOG);
}

sym_token_type sym_tokenizer_token_type(const sym_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return (sym_token_type)0;
    return (sym_token_type)t->tokens[id].type;
}

sym_status sym_tokenizer_token_text(const sym_tokenizer *t, int32_t id, const char **text,
                                    size_t *len) {
    SYM_CHECK(id >= 0 && id < t->n_vocab, SYM_ERR_ARG, "tokenizer: token id %d is not in [0, %d)",
              id, t->n_vocab);
    *text = sym_tok_text(t, id);
    *len = t->tokens[id].text_len;
    return SYM_OK;
}

sym_status sym_tokenizer_piece(const sym_tokenizer *t, int32_t id, const char **bytes,
                               size_t *len) {
    SYM_CHECK(id >= 0 && id < t->n_vocab, SYM_ERR_ARG, "tokenizer: token id %d is not in [0, %d)",
              id, t->n_vocab);
    *bytes = sym_tok_piece(t, id);
    *len = t->tokens[id].piece_len;
    return SYM_OK;
}

/* ---- encode ---------------------------------------------------------------------------------- */

typedef struct enc {
    const sym_tokenizer *t;
    sym_tok_work work;
    sym_pretok_state pre;
    sym_tok_sink *out;
    char *buf; /* normalized fragment: prefix + escaped spaces */
    size_t cap_buf;
} enc;

static sym_status on_word(void *ctx, const char *word, size_t len) {
    enc *e = ctx;
    return sym_bpe_encode_word(e->t, &e->work, word, len, e->out);
}

static sym_status reserve_buf(enc *e, size_t n) {
    if (n <= e->cap_buf) return SYM_OK;
    char *b = sym_realloc(e->buf, n);
    if (!b) return SYM_FAIL(SYM_ERR_OOM, "tokenizer: out of memory for %zu bytes of text", n);
    e->buf = b;
    e->cap_buf = n;
    return SYM_OK;
}

/* One stretch of plain text between special tokens. at_start: it begins the input. */
static sym_status encode_fragment(enc *e, const char *p, size_t n, bool at_start) {
    const sym_tokenizer *t = e->t;
    bool prefix = t->prefix == TOK_PREFIX_ALWAYS || (t->prefix == TOK_PREFIX_FIRST && at_start);
    if (t->escape_spaces) {
        SYM_TRY(reserve_buf(e, 3 * n + 3));
        size_t o = 0;
        if (prefix) {
            memcpy(e->buf, SPACE_ESC, 3);
            o = 3;
        }
        for (size_t i = 0; i < n; i++) {
            if (p[i] == ' ') {
                memcpy(e->buf + o, SPACE_ESC, 3);
                o += 3;
            } else {
                e->buf[o++] = p[i];
            }
        }
        p = e->buf;
        n = o;
    } else if (prefix && p[0] != ' ') { /* byte-level add_prefix_space */
        SYM_TRY(reserve_buf(e, n + 1));
        e->buf[0] = ' ';
        memcpy(e->buf + 1, p, n);
        p = e->buf;
        n++;
    }
    if (t->algo == TOK_ALGO_SPM) return sym_spm_encode(t, &e->work, p, n, e->out);
    return sym_pretok_split(t, &e->pre, p, n, on_word, e);
}

static bool is_ascii_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Longest special token starting at p[i] (parse_special: control and unknown ones too). */
static int32_t match_special(const sym_tokenizer *t, const uint8_t *p, size_t i, size_t n,
                             bool parse_special, size_t *end) {
    int32_t best = -1;
    int32_t node = t->trie_root[p[i]];
    for (size_t j = i + 1;; j++) {
        int32_t id = t->trie[node].token;
        if (id >= 0 && (parse_special || t->tokens[id].type == SYM_TOKEN_USER_DEFINED)) {
            best = id;
            *end = j;
        }
        if (j == n) break;
        int32_t c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != p[j])
            c = t->trie[c].sibling;
        if (c < 0) break;
        node = c;
    }
    return best;
}

static sym_status encode_all(enc *e, const char *text, size_t len, bool parse_special) {
    const sym_tokenizer *t = e->t;
    const uint8_t *p = (const uint8_t *)text;
    size_t frag = 0, i = 0;
    while (t->has_specials && i < len) {
        size_t end = 0;
        int32_t id =
            t->trie_root[p[i]] >= 0 ? match_special(t, p, i, len, parse_special, &end) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        size_t fe = i;
        if (t->tokens[id].flags & TOKF_LSTRIP)
            while (fe > frag && is_ascii_space(p[fe - 1]))
                fe--;
        if (fe > frag) SYM_TRY(encode_fragment(e, text + frag, fe - frag, frag == 0));
        sym_tok_sink_push(e->out, id);
        i = end;
        if (t->tokens[id].flags & TOKF_RSTRIP)
            while (i < len && is_ascii_space(p[i]))
                i++;
        frag = i;
    }
    if (frag < len) SYM_TRY(encode_fragment(e, text + frag, len - frag, frag == 0));
    return SYM_OK;
}

sym_status sym_tokenizer_encode(const sym_tokenizer *t, const char *text, size_t len, bool add_bos,
                                bool parse_special, int32_t *ids, size_t cap, size_t *n_ids) {
    *n_ids = 0;
    SYM_CHECK(text || len == 0, SYM_ERR_ARG, "tokenizer: NULL text");
    SYM_CHECK(ids || cap == 0, SYM_ERR_ARG, "tokenizer: NULL ids with cap %zu", cap);
    SYM_CHECK(len < INT32_MAX, SYM_ERR_RANGE, "tokenizer: text of %zu bytes is too long (2 GiB)",
              len);
    SYM_CHECK(!add_bos || t->bos >= 0, SYM_ERR_ARG,
              "tokenizer: BOS requested but the "
              "vocabulary has no BOS token");
    sym_tok_sink out = {ids, cap, 0};
    if (add_bos) sym_tok_sink_push(&out, t->bos);
    enc e = {.t = t, .out = &out};
    sym_status st = sym_pretok_state_init(t, &e.pre);
    if (st == SYM_OK && len) st = encode_all(&e, text, len, parse_special);
    sym_pretok_state_free(&e.pre);
    sym_tok_work_free(&e.work);
    sym_free(e.buf);
    if (st != SYM_OK) return st;
    *n_ids = out.n;
    if (out.n > cap)
        return SYM_FAIL(SYM_ERR_RANGE, "tokenizer: the text has %zu tokens, the buffer holds %zu",
                        out.n, cap);
    return SYM_OK;
}

/* ---- decode ---------------------------------------------------------------------------------- */

sym_status sym_tokenizer_decode(const sym_tokenizer *t, const int32_t *ids, size_t n,
                                unsigned flags, char *out, size_t cap, size_t *n_out) {
    *n_out = 0;
    SYM_CHECK(ids || n == 0, SYM_ERR_ARG, "tokenizer: NULL ids");
    SYM_CHECK(out || cap == 0, SYM_ERR_ARG, "tokenizer: NULL output with cap %zu", cap);
    /* The streaming detokenizer without its UTF-8 hold-back is exactly this loop. */
    sym_detokenizer d;
    sym_detokenizer_init(&d, t, flags);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *piece;
        size_t len;
        SYM_TRY(sym_detokenizer_piece(&d, ids[i], &piece, &len));
        if (total + len <= cap) memcpy(out + total, piece, len);
        total += len;
    }
    *n_out = total;
    SYM_CHECK(total <= cap, SYM_ERR_RANGE,
              "tokenizer: the text has %zu bytes, the buffer holds "
              "%zu",
              total, cap);
    return SYM_OK;
}

/* ---- opening a path -------------------------------------------------------------------------- */

/* Reads a whole file with the library allocator; SYM_ERR_IO if it cannot. */
static sym_status read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return SYM_FAIL(SYM_ERR_IO, "tokenizer: cannot open '%s': %s", path, strerror(errno));
    sym_status st = SYM_OK;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) != 0) SYM_FAIL_GOTO(SYM_ERR_IO, "tokenizer: cannot seek '%s'", path);
    long size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0)
        SYM_FAIL_GOTO(SYM_ERR_IO, "tokenizer: cannot read '%s'", path);
    buf = sym_malloc((size_t)size + 1);
    if (!buf) SYM_FAIL_GOTO(SYM_ERR_OOM, "tokenizer: out of memory reading '%s'", path);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size)
        SYM_FAIL_GOTO(SYM_ERR_IO, "tokenizer: cannot read '%s'", path);
    buf[size] = '\0';
    *data = buf;
    *len = (size_t)size;
    buf = NULL;
fail:
    sym_free(buf);
    fclose(f);
    return st;
}

static sym_status open_hf(const char *json_path, const char *config_path, sym_tokenizer **out) {
    char *json = NULL, *config = NULL;
    size_t json_len = 0, config_len = 0;
    SYM_TRY(read_file(json_path, &json, &json_len));
    struct stat sb;
    sym_status st = SYM_OK;
    if (config_path && stat(config_path, &sb) == 0)
        SYM_TRY_GOTO(read_file(config_path, &config, &config_len));
    st = sym_tokenizer_create_hf(json, json_len, config, config_len, out);
    if (st != SYM_OK) sym_error_prefix("%s", json_path);
fail:
    sym_free(config);
    sym_free(json);
    return st;
}

sym_status sym_tokenizer_open(const char *path, sym_tokenizer **out) {
    *out = NULL;
    SYM_CHECK(path && *path, SYM_ERR_ARG, "tokenizer: no path");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return SYM_FAIL(SYM_ERR_IO, "tokenizer: cannot open '%s': %s", path, strerror(errno));
    size_t n = strlen(path);
    if (n > 4000) return SYM_FAIL(SYM_ERR_ARG, "tokenizer: path too long");
    char json[4096 + 32], config[4096 + 32];
    if (S_ISDIR(sb.st_mode)) {
        snprintf(json, sizeof json, "%s/tokenizer.json", path);
        snprintf(config, sizeof config, "%s/tokenizer_config.json", path);
        return open_hf(json, config, out);
    }
    FILE *f = fopen(path, "rb");
    if (!f) return SYM_FAIL(SYM_ERR_IO, "tokenizer: cannot open '%s': %s", path, strerror(errno));
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
        sym_gguf *g = NULL;
        SYM_TRY(sym_gguf_open(path, &g));
        sym_status st = sym_tokenizer_create_gguf(g, out);
        sym_gguf_close(g);
        if (st != SYM_OK) sym_error_prefix("%s", path);
        return st;
    }
    /* a tokenizer.json: its tokenizer_config.json is the sibling file */
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(config, sizeof config, "%.*s/tokenizer_config.json", (int)(slash - path), path);
    else
        snprintf(config, sizeof config, "tokenizer_config.json");
    return open_hf(path, config, out);
}
