/* writer_internal.h — pieces shared by writer.c (options, weights, files), writer_gguf.c,
 * writer_st.c and writer_vocab.c. Not for use outside src/model/writer*.c. */
#ifndef SYM_MODEL_WRITER_INTERNAL_H
#define SYM_MODEL_WRITER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "model/arch.h"
#include "model/gguf.h"
#include "model/writer.h"

/* ---- vocabulary (writer_vocab.c) ------------------------------------------------------------- */

enum { SYM_TOKEN_NORMAL = 1, SYM_TOKEN_UNKNOWN = 2, SYM_TOKEN_CONTROL = 3,
       SYM_TOKEN_USER_DEFINED = 4, SYM_TOKEN_BYTE = 6 };

typedef struct sym_wvocab {
    char model[16];      /* "llama" (SentencePiece) or "gpt2" (byte-level BPE) */
    uint32_t n;
    const sym_str *tokens; /* n entries: into src, or tok_store */
    float *scores;       /* n entries (gpt2 files have none: 0) */
    int32_t *types;      /* n entries (SYM_TOKEN_*) */
    uint64_t n_merges;   /* gpt2: "left right" strings, into src */
    const sym_str *merges;
    int64_t bos, eos, unk; /* -1 if absent */
    sym_gguf *src;       /* vocab_from: the source, whose tokenizer.* entries are copied raw */
    sym_str *tok_store;  /* synthetic: the token index */
    char *pool;          /* synthetic: the token text */
} sym_wvocab;

/* A SentencePiece-style vocabulary of n tokens: <unk> <s> </s>, 256 byte tokens <0xXX>, then
 * pieces ("▁the", "▁th", "ing", …) with decreasing scores, closed under BPE merges. */
sym_status sym_wvocab_synthesize(uint32_t n, sym_wvocab *v);
/* The tokenizer.ggml.* metadata of a GGUF file (kept open in v->src). */
sym_status sym_wvocab_load(const char *path, sym_wvocab *v);
void sym_wvocab_free(sym_wvocab *v);
/* An equivalent Hugging Face tokenizer.json (BPE; byte_fallback for SentencePiece vocabularies,
 * merges extracted from the pieces and scores as HF's converter does). Caller frees *text
 * (sym_free). SYM_ERR_UNSUPPORTED for other tokenizer models. */
sym_status sym_wvocab_tokenizer_json(const sym_wvocab *v, char **text, size_t *len);

/* ---- output files (writer.c) ------------------------------------------------------------------- */

typedef struct sym_wfile {
    int fd;
    char *path; /* final name */
    char *tmp;  /* where it is written until commit */
} sym_wfile;

/* Creates path's temporary sibling (exclusively). */
sym_status sym_wfile_open(sym_wfile *f, const char *path);
/* Writes everything or fails with SYM_ERR_IO naming the file and errno. */
sym_status sym_wfile_write(sym_wfile *f, const void *data, size_t n);
sym_status sym_wfile_pad(sym_wfile *f, uint64_t pos, uint64_t align);
/* fsync, close, rename over path. On failure the temporary file is removed. */
sym_status sym_wfile_commit(sym_wfile *f);
/* Closes and removes the temporary file (no-op after commit or on a zeroed struct). */
void sym_wfile_abort(sym_wfile *f);
/* Writes a whole small file (config.json, tokenizer.json, index) through a temporary name. */
sym_status sym_wfile_put(const char *path, const void *data, size_t n);

/* ---- weights (writer.c) ----------------------------------------------------------------------- */

typedef struct sym_writer {
    const sym_make_model_options *o;
    sym_hparams hp;
    sym_wvocab vocab;
    uint64_t total_bytes, done_bytes;
    uint8_t *buf;        /* the streaming buffer */
    size_t buf_bytes;
} sym_writer;

/* Bytes of a tensor in the writer's dtype. */
uint64_t sym_writer_tensor_bytes(const sym_writer *w, const sym_tensor_spec *s);
/* Generates and writes one tensor, in GGUF row order or (hf_layout) with llama Q/K rows in HF's
 * rotate_half order, chunk by chunk, reporting progress. */
sym_status sym_writer_stream(sym_writer *w, sym_wfile *f, const sym_tensor_spec *s,
                             bool hf_layout);

/* The two formats (writer_gguf.c, writer_st.c). */
sym_status sym_writer_gguf(sym_writer *w, const char *path);
sym_status sym_writer_safetensors(sym_writer *w, const char *dir);

#endif
