/* model_impl.h — the model object's insides, shared by model.c (GGUF, safetensors) and
 * model_store.c (.sympack). Internal to model/: nothing outside it includes this. */
#ifndef SYM_MODEL_MODEL_IMPL_H
#define SYM_MODEL_MODEL_IMPL_H

#include "model/arch.h"
#include "model/model.h"
#include "model/safetensors.h"

#define NAME_CAP 48

struct sym_model {
    sym_model_format format;
    sym_hparams hp;
    sym_model_weights w;
    sym_weight *exp_views;   /* n_layer * 3 * n_expert: the layers' exp_gate/up/down arrays */
    char (*names)[NAME_CAP]; /* one per spec: the names the weights point at */
    sym_weight *table;       /* the distinct weights in file order */
    uint64_t n_weights;
    uint64_t *by_name;       /* table indices sorted by name */
    sym_gguf *gguf;          /* GGUF: the file; owned unless store is set (then the store's) */
    sym_st_file **st;        /* safetensors: one per file */
    char **paths;
    int n_files;
    char *tokenizer_json;
    int64_t bos_id, eos_id;  /* config.json (safetensors) */
    uint64_t n_params, weight_bytes;
    /* .sympack: the store and the anonymous mapping the packs are decompressed into */
    sym_store *store;
    void *image;
    uint64_t image_bytes;
    uint64_t *image_offsets;  /* per store plan weight: its place in the image */
    sym_model_load loaded;    /* what of the image holds its weights (NONE: a lazy open) */
    uint64_t committed_bytes; /* bytes of weights in it */
};

/* A tensor found in a file, before validation against its spec. */
typedef struct found {
    const char *file_name; /* as named in the file (HF or GGUF name) */
    const char *type_name; /* "F32", "Q4_K", "I8", … */
    bool runnable;         /* type is f32/f16/bf16 */
    sym_dtype type;
    uint32_t n_dims;
    uint64_t dims[SYM_ST_MAX_DIMS]; /* in the file's order: GGUF ne (columns first) or HF shape */
    bool ggml_order;
    const void *data;
    uint64_t n_bytes, file_offset;
    int file_idx;
} found;

/* Sizes the weight tables for m->hp. SYM_ERR_OOM. */
sym_status sym_model_alloc_tables(sym_model *m);
/* Checks f against spec i (dtype, exact shape) and records it. SYM_ERR_UNSUPPORTED /
 * SYM_ERR_FORMAT naming the tensor. */
sym_status sym_model_bind(sym_model *m, uint64_t i, const sym_tensor_spec *s, const found *f);
/* Tied embeddings, the per-expert views of stacked expert tensors, totals, file order and the
 * name index. */
void sym_model_finish_tables(sym_model *m);

/* model_store.c: opens a .sympack into m (hyperparameters, tokenizer, the weights' views into one
 * anonymous mapping, decompressed there now unless lazy); sym_model_load_store fills it later;
 * sym_model_close_store releases what they made. */
sym_status sym_model_open_store(sym_model *m, const char *path, bool lazy);
sym_status sym_model_load_store(sym_model *m, sym_model_load what);
void sym_model_close_store(sym_model *m);

#endif
