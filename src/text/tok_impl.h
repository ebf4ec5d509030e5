/* tok_impl.h — the inside of sym_tokenizer, shared by the files of src/text that build and run it
 * (tokenizer.c: finishing + encode driver + decode; tok_gguf.c, tok_hf.c: loaders; vocab.c: hash
 * tables; pretok.c: regex pre-tokenizers; spm.c, bpe.c: the merge loops). Not a public header. */
#ifndef SYM_TEXT_TOK_IMPL_H
#define SYM_TEXT_TOK_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text/tokenizer.h"

#define SYM_TOK_MAX_STEPS 8 /* pre-tokenizer regexes per tokenizer */
#define SYM_TOK_MAX_EOG   16

typedef enum tok_algo { TOK_ALGO_SPM, TOK_ALGO_BPE } tok_algo;

/* Where a prefix ("▁" or " ") goes in front of a text fragment. */
typedef enum tok_prefix {
    TOK_PREFIX_NEVER,
    TOK_PREFIX_FIRST,  /* only in front of the fragment that starts the text */
    TOK_PREFIX_ALWAYS, /* also after every special token (llama.cpp's SPM, HF Prepend) */
} tok_prefix;

enum { TOKF_LSTRIP = 1, TOKF_RSTRIP = 2, TOKF_EOG = 4 };

typedef struct tok_entry {
    uint32_t text_off, text_len;   /* vocabulary spelling, in arena */
    uint32_t piece_off, piece_len; /* decoded bytes, in arena */
    float score;                   /* SPM merge priority */
    uint8_t type;                  /* sym_token_type */
    uint8_t flags;                 /* TOKF_* */
} tok_entry;

/* Open-addressing map from byte strings to token ids. The keys live in the tokenizer's arena (a
 * token's text or its piece); a slot holds hash bits and the id (vocab.c). */
typedef struct tok_map {
    uint64_t *slots;
    uint32_t mask;
    bool by_piece; /* key is the piece (byte-level raw bytes), not the text */
} tok_map;

/* BPE merges: (left id, right id) -> (rank, merged id). */
typedef struct tok_merge_slot {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank;
    int32_t out;
} tok_merge_slot;

typedef struct tok_merges {
    tok_merge_slot *slots;
    uint64_t mask;
    size_t n;
} tok_merges;

/* Sparse byte trie over the special (control / user-defined / unknown) tokens. */
typedef struct tok_trie_node {
    int32_t child;   /* first child, -1 none */
    int32_t sibling; /* next sibling, -1 none */
    int32_t token;   /* token ending here, -1 none */
    uint8_t byte;
} tok_trie_node;

struct sym_tokenizer {
    tok_algo algo;
    bool byte_level;        /* GPT-2 byte alphabet (pieces are the decoded raw bytes) */
    bool byte_fallback;     /* unknown characters become <0xXX> tokens */
    bool escape_spaces;     /* ' ' -> U+2581 before merging */
    bool ignore_merges;     /* a word that is itself a token is taken whole (llama3) */
    bool fuse_unk;          /* consecutive unknowns give one <unk> */
    bool spm_word_split;    /* SPM: no token has "▁" after its leading ones (see spm.c) */
    bool add_bos;           /* the model's default */
    tok_prefix prefix;      /* where "▁" (escape_spaces) or " " (byte-level) is prepended */
    tok_prefix strip;       /* where decode removes the prefix space again */
    const char *model_name; /* "llama", "gpt2" (static) */
    char pre_name[48];

    int32_t n_vocab;
    tok_entry *tokens; /* [n_vocab] */
    char *arena;       /* texts and pieces */
    size_t arena_len, arena_cap;
    size_t max_piece;

    tok_map by_text;         /* text -> id, every token with a non-empty text (first id wins) */
    tok_map by_piece;        /* byte-level only: raw bytes -> id, normal tokens */
    int32_t byte_token[256]; /* token for a raw byte (<0xXX>, or the byte-level char), -1 none */
    tok_merges merges;

    int32_t bos, eos, unk;
    int32_t eog[SYM_TOK_MAX_EOG];
    int n_eog;

    int n_steps; /* pre-tokenizer: each regex splits every piece into matches and gaps */
    void *steps[SYM_TOK_MAX_STEPS]; /* pcre2_code_8 * */

    tok_trie_node *trie;
    int32_t n_trie, cap_trie;
    int32_t trie_root[256]; /* child of the root for each first byte, -1 none */
    bool has_specials;
};

/* ---- building (tokenizer.c) ---- */

/* An empty tokenizer with n_vocab zeroed entries (type UNUSED, empty text). */
sym_status sym_tok_alloc(int32_t n_vocab, sym_tokenizer **out);
/* Copies bytes into the arena; *off gets their offset. */
sym_status sym_tok_arena_add(sym_tokenizer *t, const void *bytes, size_t len, uint32_t *off);
/* Sets token id's text (copied). */
sym_status sym_tok_set_text(sym_tokenizer *t, int32_t id, const char *text, size_t len);
/* After the loader filled texts, types, scores, flags, algo and options: builds the text map,
 * pieces, byte tokens, the special-token trie and the EOG set. Merges come after this (they need
 * the text map). */
sym_status sym_tok_finish(sym_tokenizer *t);
/* Adds id to the end-of-generation set (ignored when full or already there). */
void sym_tok_add_eog(sym_tokenizer *t, int32_t id);

static inline const char *sym_tok_text(const sym_tokenizer *t, int32_t id) {
    return t->arena + t->tokens[id].text_off;
}
static inline const char *sym_tok_piece(const sym_tokenizer *t, int32_t id) {
    return t->arena + t->tokens[id].piece_off;
}

/* ---- maps (vocab.c) ---- */

sym_status sym_tok_map_build(sym_tokenizer *t, tok_map *m, bool by_piece);
int32_t sym_tok_map_find(const sym_tokenizer *t, const tok_map *m, const char *key, size_t len);
void sym_tok_map_free(tok_map *m);

sym_status sym_tok_merges_init(tok_merges *m, size_t n_expected);
/* Adds a merge unless the pair is already there (the first, lowest rank wins). */
sym_status sym_tok_merges_add(tok_merges *m, int32_t left, int32_t right, int32_t rank,
                              int32_t out);
const tok_merge_slot *sym_tok_merges_find(const tok_merges *m, int32_t left, int32_t right);
void sym_tok_merges_free(tok_merges *m);
/* Parses merge strings "left right" (the split is at the first space after the first byte, as
 * llama.cpp does) into the table. Merges naming a token the vocabulary lacks, or whose result is
 * not in it, are skipped and counted in *n_skipped. */
sym_status sym_tok_merges_add_str(sym_tokenizer *t, const char *s, size_t len, int32_t rank,
                                  size_t *n_skipped);

/* ---- pre-tokenizer (pretok.c) ---- */

/* Compiles the regexes of a named llama.cpp pre-tokenizer ("gpt-2", "llama3", …) into t->steps
 * and sets the flags that go with it. SYM_ERR_UNSUPPORTED for a name we do not know. */
sym_status sym_pretok_init_named(sym_tokenizer *t, const char *name, size_t name_len);
/* Appends one regex step (PCRE2 syntax, UTF + UCP). SYM_ERR_FORMAT if it does not compile. */
sym_status sym_pretok_add_regex(sym_tokenizer *t, const char *pattern, size_t len);
void sym_pretok_free(sym_tokenizer *t);

typedef sym_status (*sym_word_fn)(void *ctx, const char *word, size_t len);

/* Per-call state of the splitter. */
typedef struct sym_pretok_state {
    void *match_data; /* pcre2_match_data_8 * */
} sym_pretok_state;

sym_status sym_pretok_state_init(const sym_tokenizer *t, sym_pretok_state *s);
void sym_pretok_state_free(sym_pretok_state *s);
/* Cuts text into words and calls fn on each, in order. Invalid UTF-8 bytes are words of their
 * own; valid runs go through every regex step (matches and the gaps between them both become
 * pieces, like Hugging Face's "Isolated" split). */
sym_status sym_pretok_split(const sym_tokenizer *t, sym_pretok_state *s, const char *text,
                            size_t len, sym_word_fn fn, void *ctx);

/* ---- merging (spm.c, bpe.c) ---- */

/* Where ids go: writes while there is room, always counts. */
typedef struct sym_tok_sink {
    int32_t *ids;
    size_t cap, n;
} sym_tok_sink;

static inline void sym_tok_sink_push(sym_tok_sink *s, int32_t id) {
    if (s->n < s->cap) s->ids[s->n] = id;
    s->n++;
}

typedef struct tok_symbol {
    int32_t prev, next;  /* neighbours in the live list, -1 at the ends */
    uint32_t start, len; /* bytes of the word; len 0 once merged into its left neighbour */
    int32_t id;          /* token for these bytes, -1 if none */
} tok_symbol;

/* A candidate merge. key orders the queue, smallest first: priority in the high 32 bits (BPE:
 * the rank; SPM: the score mapped so that higher scores come first), the left symbol's index in
 * the low 32 bits (ties go to the leftmost pair). One integer compare per heap step. */
typedef struct tok_bigram {
    uint64_t key;
    int32_t right;         /* symbol index; the left one is (int32_t)(key & 0xffffffff) */
    uint32_t len_l, len_r; /* their lengths when queued (stale entries are skipped) */
    int32_t out;           /* token of the merged symbol */
} tok_bigram;

static inline int32_t sym_tok_bigram_left(const tok_bigram *b) { return (int32_t)(uint32_t)b->key; }

/* Per-call scratch of the merge loops, grown as needed and freed by sym_tok_work_free. */
typedef struct sym_tok_work {
    tok_symbol *sym;
    size_t cap_sym;
    tok_bigram *heap;
    size_t n_heap, cap_heap;
} sym_tok_work;

sym_status sym_tok_work_reserve(sym_tok_work *w, size_t n_sym);
void sym_tok_work_free(sym_tok_work *w);
sym_status sym_tok_heap_push(sym_tok_work *w, tok_bigram b);
tok_bigram sym_tok_heap_pop(sym_tok_work *w);

/* SPM: merges a whole (already escaped) fragment by score and emits its ids. */
sym_status sym_spm_encode(const sym_tokenizer *t, sym_tok_work *w, const char *text, size_t len,
                          sym_tok_sink *out);
/* BPE: merges one pre-tokenized word by rank and emits its ids. */
sym_status sym_bpe_encode_word(const sym_tokenizer *t, sym_tok_work *w, const char *word,
                               size_t len, sym_tok_sink *out);
/* The bytes one id adds to decoded text under d's flags (control tokens hidden unless
 * SYM_DECODE_SPECIAL, the prefix space stripped where the encoder added one); updates d's strip
 * state. SYM_ERR_ARG for an id out of range. (detokenizer.c) */
sym_status sym_detokenizer_piece(sym_detokenizer *d, int32_t id, const char **bytes, size_t *len);

/* Emits the ids for bytes no token covers: <0xXX> / byte tokens, else <unk>, else nothing. */
void sym_tok_emit_bytes(const sym_tokenizer *t, const uint8_t *p, size_t len, sym_tok_sink *out);

#endif
