/* tokenizer.h — text <-> token ids for the models we run.
 *
 * Two algorithms, chosen by the vocabulary:
 *   SPM  (tokenizer.ggml.model "llama"): SentencePiece-style BPE. Spaces become U+2581 "▁", a "▁"
 *        is prepended (add_space_prefix), then adjacent symbols (UTF-8 characters) are merged,
 *        highest token score first; characters that never form a token fall back to <0xXX> bytes.
 *   BPE  (tokenizer.ggml.model "gpt2", or an HF tokenizer.json "BPE" model): the text is cut into
 *        words by the pre-tokenizer (a list of regular expressions, tokenizer.ggml.pre), then each
 *        word is merged by merge rank. Byte-level vocabularies (GPT-2 style) spell bytes with the
 *        GPT-2 byte<->unicode alphabet; SentencePiece-converted tokenizer.json files use "▁" and
 *        <0xXX> byte fallback instead.
 * Control and user-defined tokens ("<s>", "<|im_start|>", …) are matched in the text first:
 * control tokens only when parse_special is set, user-defined tokens always (as Hugging Face and
 * llama.cpp do: they are added vocabulary, not markup). docs/TOKENIZERS.md has the details.
 *
 * A sym_tokenizer owns copies of everything it needs (the GGUF may be closed after create). It is
 * immutable after creation: any number of threads may encode/decode with it at once.
 * Invalid UTF-8 in the input never fails: each invalid byte is a symbol of its own and comes out
 * as its byte token (<0xXX> for SPM, the byte's token for byte-level BPE).
 */
#ifndef SYM_TEXT_TOKENIZER_H
#define SYM_TEXT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "model/gguf.h"

typedef struct sym_tokenizer sym_tokenizer;

/* Token types; the numbers are GGUF's tokenizer.ggml.token_type values. */
typedef enum sym_token_type {
    SYM_TOKEN_NORMAL = 1,
    SYM_TOKEN_UNKNOWN = 2,      /* <unk> */
    SYM_TOKEN_CONTROL = 3,      /* <s>, </s>, <|im_start|>: parsed only with parse_special */
    SYM_TOKEN_USER_DEFINED = 4, /* added vocabulary: always matched in the text as a whole */
    SYM_TOKEN_UNUSED = 5,
    SYM_TOKEN_BYTE = 6, /* <0xXX> */
} sym_token_type;

/* ---- creation ------------------------------------------------------------------------------ */

/* From GGUF metadata (tokenizer.ggml.*). SYM_ERR_FORMAT for missing/inconsistent metadata (no
 * tokens, an empty vocabulary, arrays whose lengths differ, a BPE vocabulary without merges,
 * special token ids out of range), SYM_ERR_UNSUPPORTED for a tokenizer model or pre-tokenizer we
 * do not implement. On success the caller owns *out (sym_tokenizer_destroy). */
sym_status sym_tokenizer_create_gguf(const sym_gguf *g, sym_tokenizer **out);

/* From a Hugging Face tokenizer.json held in memory. config (may be NULL) is the text of
 * tokenizer_config.json, which supplies bos_token / eos_token / add_bos_token when present.
 * Same errors as above (SYM_ERR_FORMAT also for JSON that does not parse). */
sym_status sym_tokenizer_create_hf(const char *json, size_t json_len, const char *config,
                                   size_t config_len, sym_tokenizer **out);

/* Opens path: a .gguf file (vocab-only files included), a tokenizer.json file, or a directory
 * holding tokenizer.json (tokenizer_config.json next to it is read if present).
 * SYM_ERR_IO if nothing readable is there. */
sym_status sym_tokenizer_open(const char *path, sym_tokenizer **out);

void sym_tokenizer_destroy(sym_tokenizer *t); /* NULL is fine */

/* ---- vocabulary ------------------------------------------------------------------------------ */

int32_t sym_tokenizer_n_vocab(const sym_tokenizer *t);
int32_t sym_tokenizer_bos(const sym_tokenizer *t); /* -1 if the vocabulary has none */
int32_t sym_tokenizer_eos(const sym_tokenizer *t); /* -1 if none */
/* Whether the model wants BOS prepended (tokenizer.ggml.add_bos_token, or its default). */
bool sym_tokenizer_wants_bos(const sym_tokenizer *t);
/* End of generation: EOS, EOT/EOM and the end-of-turn tokens the vocabulary declares
 * ("<|eot_id|>", "<|im_end|>", "<|end|>", …). False for ids out of range. */
bool sym_tokenizer_is_eog(const sym_tokenizer *t, int32_t id);
/* "llama" (SPM) or "gpt2" (BPE), and the pre-tokenizer name ("default", "llama3", …; "hf" for a
 * tokenizer.json). Static strings. */
const char *sym_tokenizer_model(const sym_tokenizer *t);
const char *sym_tokenizer_pre(const sym_tokenizer *t);

/* Type of id; 0 for an id out of range. */
sym_token_type sym_tokenizer_token_type(const sym_tokenizer *t, int32_t id);
/* The vocabulary's spelling of id ("▁Hello", "Ġworld", "<0x0A>"). SYM_ERR_ARG if out of range.
 * The pointer stays valid until sym_tokenizer_destroy. */
sym_status sym_tokenizer_token_text(const sym_tokenizer *t, int32_t id, const char **text,
                                    size_t *len);
/* The raw bytes id stands for in decoded text (" Hello", " world", "\n"); may be a partial UTF-8
 * sequence (byte tokens, byte-level pieces). Control and unknown tokens give their text here
 * (decoding hides them unless SYM_DECODE_SPECIAL). SYM_ERR_ARG if out of range. */
sym_status sym_tokenizer_piece(const sym_tokenizer *t, int32_t id, const char **bytes, size_t *len);
/* Longest piece (or text) in bytes. A buffer of 3 * max_piece + 12 bytes always holds one
 * detokenizer step (each byte that cannot be UTF-8 becomes the 3 bytes of U+FFFD). */
size_t sym_tokenizer_max_piece(const sym_tokenizer *t);

/* ---- encode ---------------------------------------------------------------------------------- */

/* Tokenizes len bytes of text (need not be NUL-terminated or valid UTF-8). add_bos prepends BOS
 * (SYM_ERR_ARG if the vocabulary has none); parse_special matches control tokens in the text.
 * Writes at most cap ids; *n_ids always gets the full count, and SYM_ERR_RANGE says cap was too
 * small (call again with cap >= *n_ids). Allocates its working memory once per call
 * (SYM_ERR_OOM). Linear-time in len up to a log factor. */
sym_status sym_tokenizer_encode(const sym_tokenizer *t, const char *text, size_t len, bool add_bos,
                                bool parse_special, int32_t *ids, size_t cap, size_t *n_ids);

/* ---- decode ---------------------------------------------------------------------------------- */

enum {
    SYM_DECODE_SPECIAL = 1u << 0,    /* write control/unknown tokens as their text */
    SYM_DECODE_KEEP_SPACE = 1u << 1, /* keep the space an SPM prefix added (continuations) */
};

/* Concatenates the pieces of ids. Unless SYM_DECODE_KEEP_SPACE, removes the one space the
 * tokenizer's prefix added at the start and after each special token, so that
 * decode(encode(s)) == s for lossless tokenizers. Output is raw bytes (not NUL-terminated; may
 * be invalid UTF-8 if the ids spell it). *n_out gets the full length; SYM_ERR_RANGE if it exceeds
 * cap, SYM_ERR_ARG for an id out of range. */
sym_status sym_tokenizer_decode(const sym_tokenizer *t, const int32_t *ids, size_t n,
                                unsigned flags, char *out, size_t cap, size_t *n_out);

/* Streaming detokenizer: feed ids one at a time, get text that always ends on a UTF-8 character
 * boundary. Bytes of an incomplete character are held back until it completes; bytes that can
 * never be valid UTF-8 come out as U+FFFD, so everything emitted is valid UTF-8. For valid text
 * the concatenation of all outputs plus the flush equals sym_tokenizer_decode of the same ids.
 * Plain struct, no allocation; the tokenizer is borrowed and must outlive it. */
typedef struct sym_detokenizer {
    const sym_tokenizer *tok;
    unsigned flags;
    bool strip_space; /* the next text byte is a prefix space to drop */
    uint8_t n_pending;
    uint8_t pending[4]; /* start of an incomplete UTF-8 character */
} sym_detokenizer;

void sym_detokenizer_init(sym_detokenizer *d, const sym_tokenizer *t, unsigned flags);
/* Writes the complete text id makes available into out. cap >= 3 * sym_tokenizer_max_piece + 12
 * always suffices; SYM_ERR_RANGE (with *n_out = the size needed, state unchanged) if not.
 * SYM_ERR_ARG for an id out of range. */
sym_status sym_detokenizer_push(sym_detokenizer *d, int32_t id, char *out, size_t cap,
                                size_t *n_out);
/* Emits what is held back (an incomplete character becomes U+FFFD) and resets the state to
 * that of a fresh init. */
sym_status sym_detokenizer_flush(sym_detokenizer *d, char *out, size_t cap, size_t *n_out);

#endif
