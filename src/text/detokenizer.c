/* detokenizer.c — ids back to text, one at a time. The piece of each id (tokenizer.c built them:
 * decoded bytes, "▁" -> " ", <0xXX> -> the byte) is adjusted for the prefix space, then passed
 * through a UTF-8 hold-back so that a character split across tokens (byte tokens, byte-level
 * pieces) only comes out once it is complete. */
#include <string.h>

#include "text/tok_impl.h"
#include "text/utf8.h"

static const char k_replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

static bool strip_enabled(const sym_detokenizer *d) {
    return d->tok->strip != TOK_PREFIX_NEVER && !(d->flags & SYM_DECODE_KEEP_SPACE);
}

void sym_detokenizer_init(sym_detokenizer *d, const sym_tokenizer *t, unsigned flags) {
    memset(d, 0, sizeof *d);
    d->tok = t;
    d->flags = flags;
    d->strip_space = strip_enabled(d);
}

sym_status sym_detokenizer_piece(sym_detokenizer *d, int32_t id, const char **bytes, size_t *len) {
    const sym_tokenizer *t = d->tok;
    SYM_CHECK(id >= 0 && id < t->n_vocab, SYM_ERR_ARG, "tokenizer: token id %d is not in [0, %d)",
              id, t->n_vocab);
    const tok_entry *e = &t->tokens[id];
    if (e->type == SYM_TOKEN_CONTROL || e->type == SYM_TOKEN_UNKNOWN ||
        e->type == SYM_TOKEN_USER_DEFINED) {
        bool visible = e->type == SYM_TOKEN_USER_DEFINED || (d->flags & SYM_DECODE_SPECIAL);
        *bytes = sym_tok_text(t, id);
        *len = visible ? e->text_len : 0;
        /* The encoder prefixes the text after a special token (ALWAYS) or only the text that
         * starts the input (FIRST; a leading BOS does not count as text). */
        if (t->strip == TOK_PREFIX_ALWAYS)
            d->strip_space = strip_enabled(d);
        else if (id != t->bos)
            d->strip_space = false;
        return SYM_OK;
    }
    const char *p = sym_tok_piece(t, id);
    size_t n = e->piece_len;
    if (d->strip_space && n > 0) {
        if (p[0] == ' ') {
            p++;
            n--;
        }
        d->strip_space = false;
    }
    *bytes = p;
    *len = n;
    return SYM_OK;
}

/* Can p[0, n) (n < its announced length) still become a valid character? */
static bool valid_prefix(const uint8_t *p, size_t n) {
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return false;
    if (n >= 2) {
        if (p[0] == 0xE0 && p[1] < 0xA0) return false;
        if (p[0] == 0xED && p[1] > 0x9F) return false;
        if (p[0] == 0xF0 && p[1] < 0x90) return false;
        if (p[0] == 0xF4 && p[1] > 0x8F) return false;
    }
    return true;
}

/* Runs pending ++ piece through the hold-back. Writes to out when out != NULL; returns the
 * output size and the new pending bytes. */
static size_t stream(const uint8_t *pending, size_t n_pending, const uint8_t *piece, size_t len,
                     char *out, uint8_t *new_pending, uint8_t *n_new) {
    size_t o = 0, i = 0;
    *n_new = 0;
    size_t total = n_pending + len;
#define AT(k) ((k) < n_pending ? pending[k] : piece[(k)-n_pending])
    while (i < total) {
        uint8_t b = AT(i);
        if (b < 0x80) {
            if (out) out[o] = (char)b;
            o++;
            i++;
            continue;
        }
        size_t need = sym_utf8_lead_len(b);
        if (need == 0) {
            if (out) memcpy(out + o, k_replacement, 3);
            o += 3;
            i++;
            continue;
        }
        size_t have = total - i < need ? total - i : need;
        uint8_t c[4];
        for (size_t k = 0; k < have; k++)
            c[k] = AT(i + k);
        if (!valid_prefix(c, have)) {
            if (out) memcpy(out + o, k_replacement, 3);
            o += 3;
            i++;
            continue;
        }
        if (have < need) { /* incomplete: hold it back */
            memcpy(new_pending, c, have);
            *n_new = (uint8_t)have;
            break;
        }
        if (out) memcpy(out + o, c, need);
        o += need;
        i += need;
    }
#undef AT
    return o;
}

sym_status sym_detokenizer_push(sym_detokenizer *d, int32_t id, char *out, size_t cap,
                                size_t *n_out) {
    *n_out = 0;
    sym_detokenizer saved = *d;
    const char *piece = NULL;
    size_t len = 0;
    SYM_TRY(sym_detokenizer_piece(d, id, &piece, &len));
    uint8_t pend[4];
    uint8_t n_pend;
    size_t need =
        stream(d->pending, d->n_pending, (const uint8_t *)piece, len, NULL, pend, &n_pend);
    if (need > cap) {
        *d = saved;
        *n_out = need;
        return SYM_FAIL(SYM_ERR_RANGE,
                        "detokenizer: token %d needs %zu bytes, the buffer holds "
                        "%zu",
                        id, need, cap);
    }
    stream(d->pending, d->n_pending, (const uint8_t *)piece, len, out, pend, &n_pend);
    memcpy(d->pending, pend, n_pend);
    d->n_pending = n_pend;
    *n_out = need;
    return SYM_OK;
}

sym_status sym_detokenizer_flush(sym_detokenizer *d, char *out, size_t cap, size_t *n_out) {
    *n_out = 0;
    size_t need = d->n_pending ? 3 : 0;
    if (need > cap) {
        *n_out = need;
        return SYM_FAIL(SYM_ERR_RANGE, "detokenizer: flush needs %zu bytes", need);
    }
    if (need) memcpy(out, k_replacement, 3);
    *n_out = need;
    sym_detokenizer_init(d, d->tok, d->flags);
    return SYM_OK;
}
