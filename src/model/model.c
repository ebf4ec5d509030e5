/* model.c — opening a model: find the files, read the hyperparameters, bind and validate every
 * tensor the architecture needs (presence, dtype, exact shape), reject anything unexpected.
 * GGUF: one file. safetensors: a file or directory with config.json, optionally sharded through
 * model.safetensors.index.json. Weights stay in the read-only file mappings. */
#include "model/model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "model/hf.h"
#include "model/json.h"
#include "model/model_impl.h"

#define TOKENIZER_JSON_MAX_BYTES (512u << 20)

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = sym_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static bool is_regular_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static const char *fmt_dims(const uint64_t *d, uint32_t n, char *buf, size_t cap) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%llu", i ? ", " : "",
                                 (unsigned long long)d[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

/* ---- binding tensors to their specs ------------------------------------------------------------ */

sym_status sym_model_alloc_tables(sym_model *m) {
    uint64_t n = sym_arch_n_specs(&m->hp); /* at most 3 + 4096 * (10 + 3 * 256) */
    m->w.layers = sym_calloc((size_t)m->hp.n_layer, sizeof *m->w.layers);
    m->names = sym_calloc((size_t)n, sizeof *m->names);
    m->table = sym_calloc((size_t)n, sizeof *m->table);
    m->by_name = sym_calloc((size_t)n, sizeof *m->by_name);
    if (!m->w.layers || !m->names || !m->table || !m->by_name)
        return SYM_FAIL(SYM_ERR_OOM, "model: out of memory for %llu tensors",
                        (unsigned long long)n);
    size_t ne = (size_t)m->hp.n_expert;
    if (ne == 0) return SYM_OK;
    m->exp_views = sym_calloc((size_t)m->hp.n_layer * 3 * ne, sizeof *m->exp_views);
    if (!m->exp_views)
        return SYM_FAIL(SYM_ERR_OOM, "model: out of memory for %d x %d expert views",
                        m->hp.n_layer, m->hp.n_expert);
    for (int l = 0; l < m->hp.n_layer; l++) {
        sym_layer_weights *lw = &m->w.layers[l];
        lw->exp_gate = m->exp_views + (size_t)l * 3 * ne;
        lw->exp_up = lw->exp_gate + ne;
        lw->exp_down = lw->exp_up + ne;
    }
    return SYM_OK;
}

sym_status sym_model_bind(sym_model *m, uint64_t i, const sym_tensor_spec *s, const found *f) {
    const char *fmt = sym_model_format_name(m->format);
    char alias[NAME_CAP + 8] = "";
    if (strcmp(f->file_name, s->name) != 0) snprintf(alias, sizeof alias, " (%s)", s->name);
    if (!f->runnable)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "%s: tensor %s%s is %s: Symbiote runs unquantized "
                        "models (f32, f16, bf16)", fmt, f->file_name, alias, f->type_name);
    uint64_t want[3];
    uint32_t want_dims = sym_arch_spec_dims(s, f->ggml_order, want);
    bool ok = f->n_dims == want_dims;
    for (uint32_t d = 0; ok && d < want_dims; d++) ok = f->dims[d] == want[d];
    if (!ok) {
        char a[160], b[64];
        return SYM_FAIL(SYM_ERR_FORMAT, "%s: tensor '%s'%s has shape %s but %s is expected%s",
                        fmt, f->file_name, alias, fmt_dims(f->dims, f->n_dims, a, sizeof a),
                        fmt_dims(want, want_dims, b, sizeof b),
                        f->ggml_order ? " (ggml order: columns first)" : "");
    }
    snprintf(m->names[i], NAME_CAP, "%s", s->name);
    sym_weight *w = sym_arch_slot(&m->w, s);
    w->name = m->names[i];
    w->type = f->type;
    w->n_cols = s->n_cols;
    w->n_rows = s->n_rows;
    w->data = f->data;
    w->n_bytes = f->n_bytes;
    w->file_offset = f->file_offset;
    w->file_idx = f->file_idx;
    m->table[m->n_weights++] = *w;
    return SYM_OK;
}

static int cmp_file_order(const void *a, const void *b) {
    const sym_weight *x = a, *y = b;
    if (x->file_idx != y->file_idx) return x->file_idx < y->file_idx ? -1 : 1;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

static int cmp_by_name(const void *a, const void *b, void *ctx) {
    const sym_model *m = ctx;
    return strcmp(m->table[*(const uint64_t *)a].name, m->table[*(const uint64_t *)b].name);
}

/* Expert e of a stacked tensor: rows [e * rows, (e + 1) * rows), named after the tensor. */
static sym_weight expert_view(const sym_weight *all, int e, int n_expert) {
    sym_weight v = *all;
    v.n_rows = all->n_rows / n_expert;
    v.n_bytes = all->n_bytes / (uint64_t)n_expert;
    v.data = (const uint8_t *)all->data + (uint64_t)e * v.n_bytes;
    v.file_offset = all->file_offset + (uint64_t)e * v.n_bytes;
    return v;
}

void sym_model_finish_tables(sym_model *m) {
    if (m->hp.tied_embeddings) m->w.output = m->w.token_embd;
    for (int l = 0; m->hp.n_expert > 0 && !m->hp.expert_split && l < m->hp.n_layer; l++) {
        sym_layer_weights *lw = &m->w.layers[l];
        for (int e = 0; e < m->hp.n_expert; e++) {
            lw->exp_gate[e] = expert_view(&lw->ffn_gate_exps, e, m->hp.n_expert);
            lw->exp_up[e] = expert_view(&lw->ffn_up_exps, e, m->hp.n_expert);
            lw->exp_down[e] = expert_view(&lw->ffn_down_exps, e, m->hp.n_expert);
        }
    }
    qsort(m->table, m->n_weights, sizeof *m->table, cmp_file_order);
    for (uint64_t i = 0; i < m->n_weights; i++) {
        m->by_name[i] = i;
        m->n_params += (uint64_t)m->table[i].n_rows * (uint64_t)m->table[i].n_cols;
        m->weight_bytes += m->table[i].n_bytes;
    }
    qsort_r(m->by_name, m->n_weights, sizeof *m->by_name, cmp_by_name, m);
}

/* ---- GGUF -------------------------------------------------------------------------------------- */

static void found_from_gguf(const sym_gguf *g, const sym_gguf_tensor *t, const char *name,
                            found *f) {
    memset(f, 0, sizeof *f);
    f->file_name = name;
    f->type_name = sym_ggml_type_name(t->type);
    f->runnable = sym_arch_dtype_from_ggml(t->type, &f->type);
    f->n_dims = t->n_dims;
    for (uint32_t d = 0; d < t->n_dims; d++) f->dims[d] = t->ne[d];
    f->ggml_order = true;
    f->data = t->data;
    f->n_bytes = t->n_bytes;
    f->file_offset = sym_gguf_data_offset(g) + t->offset;
}

static sym_status open_gguf(sym_model *m, const char *path) {
    m->format = SYM_MODEL_GGUF;
    SYM_TRY(sym_gguf_open(path, &m->gguf));
    m->paths = sym_calloc(1, sizeof *m->paths);
    if (!m->paths || !(m->paths[0] = sym_strdup(path)))
        return SYM_FAIL(SYM_ERR_OOM, "model: out of memory");
    m->n_files = 1;
    SYM_TRY(sym_arch_hparams_from_gguf(m->gguf, &m->hp));
    /* before sizing large tables by the hyperparameters (thousands of layers or experts), the
     * file must hold that many tensors; small models report the first missing one below */
    uint64_t n_specs = sym_arch_n_specs(&m->hp), n_need = n_specs - m->hp.tied_embeddings;
    uint64_t n_views = (uint64_t)m->hp.n_layer * 3 * (uint64_t)m->hp.n_expert;
    if ((n_need > 65536 || n_views > 65536) && sym_gguf_n_tensors(m->gguf) < n_need)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: the file holds %llu tensors, a %s model of these "
                        "dimensions (%d layers%s) has %llu",
                        (unsigned long long)sym_gguf_n_tensors(m->gguf), m->hp.arch,
                        m->hp.n_layer, m->hp.n_expert ? ", experts" : "",
                        (unsigned long long)n_need);
    SYM_TRY(sym_model_alloc_tables(m));
    for (uint64_t i = 0; i < n_specs; i++) {
        sym_tensor_spec s;
        sym_arch_spec_at(&m->hp, i, &s);
        const sym_gguf_tensor *t = sym_gguf_find_tensor(m->gguf, s.name);
        if (!t && s.optional) continue;
        if (!t) return SYM_FAIL(SYM_ERR_FORMAT, "gguf: missing tensor '%s'", s.name);
        found f;
        found_from_gguf(m->gguf, t, s.name, &f);
        SYM_TRY(sym_model_bind(m, i, &s, &f));
    }
    /* names are unique: any tensor left over is one this architecture does not have */
    uint64_t n_tensors = sym_gguf_n_tensors(m->gguf);
    for (uint64_t i = 0; m->n_weights != n_tensors && i < n_tensors; i++) {
        const sym_gguf_tensor *t = sym_gguf_tensor_at(m->gguf, i);
        char name[NAME_CAP], nb[48];
        sym_tensor_spec s;
        size_t l = t->name.len < NAME_CAP - 1 ? (size_t)t->name.len : NAME_CAP - 1;
        memcpy(name, t->name.ptr, l);
        name[l] = '\0';
        if (t->name.len >= NAME_CAP || memchr(name, 0, l) ||
            !sym_arch_find_spec(&m->hp, name, &s))
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: unexpected tensor '%s' for architecture %s",
                            sym_json_show(name, nb), m->hp.arch);
    }
    sym_model_finish_tables(m);
    return SYM_OK;
}

/* ---- safetensors --------------------------------------------------------------------------------- */

typedef struct st_entry {
    char name[NAME_CAP]; /* internal name */
    int file_idx;
    const sym_st_tensor *t;
} st_entry;

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

/* HF tensors that carry no weights: older llama checkpoints store RoPE's inverse frequencies. */
static bool ignorable_hf(const char *name) { return ends_with(name, ".rotary_emb.inv_freq"); }

/* Maps every tensor of every file to its internal name, checking it against the index. */
static sym_status collect_st(sym_model *m, const sym_hf_index *ix, st_entry **out, uint64_t *n) {
    char nb[48], nb2[48];
    uint64_t total = 0;
    for (int fi = 0; fi < m->n_files; fi++) total += sym_st_n_tensors(m->st[fi]);
    st_entry *e = sym_calloc(total ? (size_t)total : 1, sizeof *e);
    if (!e) return SYM_FAIL(SYM_ERR_OOM, "model: out of memory");
    *out = e;
    *n = 0;
    for (int fi = 0; fi < m->n_files; fi++) {
        for (uint64_t i = 0; i < sym_st_n_tensors(m->st[fi]); i++) {
            const sym_st_tensor *t = sym_st_tensor_at(m->st[fi], i);
            if (ix) {
                int mapped = sym_hf_index_lookup(ix, t->name);
                if (mapped != fi)
                    return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s' is in '%s' but "
                                    "the index %s%s", sym_json_show(t->name, nb), m->paths[fi],
                                    mapped < 0 ? "does not list it" : "maps it to ",
                                    mapped < 0 ? "" : sym_json_show(sym_hf_index_file(ix, mapped), nb2));
            }
            if (ignorable_hf(t->name)) continue;
            if (!sym_arch_hf_to_internal(t->name, e[*n].name, NAME_CAP))
                return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: unexpected tensor '%s' in '%s' "
                                "(not a %s weight)", sym_json_show(t->name, nb), m->paths[fi],
                                m->hp.arch);
            e[*n].file_idx = fi;
            e[*n].t = t;
            ++*n;
        }
    }
    qsort(e, (size_t)*n, sizeof *e, cmp_entry);
    for (uint64_t i = 1; i < *n; i++)
        if (!strcmp(e[i - 1].name, e[i].name))
            return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s' appears twice (in '%s' "
                            "and '%s')", e[i].t->name, m->paths[e[i - 1].file_idx],
                            m->paths[e[i].file_idx]);
    /* every tensor of every shard is in the index under its own shard, and names are unique:
     * fewer tensors than index entries means the index lists one no shard holds */
    if (ix && total != sym_hf_index_n_entries(ix))
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: the index lists %llu tensors but its "
                        "shards hold %llu", (unsigned long long)sym_hf_index_n_entries(ix),
                        (unsigned long long)total);
    return SYM_OK;
}

static void found_from_st(const st_entry *e, found *f) {
    const sym_st_tensor *t = e->t;
    memset(f, 0, sizeof *f);
    f->file_name = t->name;
    f->type_name = sym_st_dtype_name(t->dtype);
    f->runnable = true;
    if (t->dtype == SYM_ST_F32) f->type = SYM_DT_F32;
    else if (t->dtype == SYM_ST_F16) f->type = SYM_DT_F16;
    else if (t->dtype == SYM_ST_BF16) f->type = SYM_DT_BF16;
    else f->runnable = false;
    f->n_dims = t->n_dims;
    memcpy(f->dims, t->shape, sizeof f->dims);
    f->data = t->data;
    f->n_bytes = t->n_bytes;
    f->file_offset = t->file_offset;
    f->file_idx = e->file_idx;
}

static sym_status bind_st(sym_model *m, const st_entry *e, uint64_t n) {
    SYM_TRY(sym_model_alloc_tables(m));
    uint64_t n_specs = sym_arch_n_specs(&m->hp), used = 0;
    for (uint64_t i = 0; i < n_specs; i++) {
        sym_tensor_spec s;
        sym_arch_spec_at(&m->hp, i, &s);
        st_entry key;
        memcpy(key.name, s.name, NAME_CAP);
        const st_entry *hit = bsearch(&key, e, (size_t)n, sizeof key, cmp_entry);
        char hf[96];
        if (!sym_arch_internal_to_hf(s.name, hf, sizeof hf)) snprintf(hf, sizeof hf, "?");
        if (hit) used++;
        if (s.role == SYM_ROLE_OUTPUT && m->hp.tied_embeddings) continue; /* HF ties: ignored */
        if (!hit)
            return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: missing tensor '%s' (%s)%s", hf,
                            s.name, s.role == SYM_ROLE_OUTPUT ? "; config.json says "
                            "tie_word_embeddings is false" : "");
        found f;
        found_from_st(hit, &f);
        SYM_TRY(sym_model_bind(m, i, &s, &f));
    }
    for (uint64_t i = 0; used != n && i < n; i++) {
        sym_tensor_spec s;
        if (!sym_arch_find_spec(&m->hp, e[i].name, &s))
            return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: unexpected tensor '%s' for this "
                            "config.json (%d layers%s)", e[i].t->name, m->hp.n_layer,
                            m->hp.qkv_bias ? "" : ", no attention biases");
    }
    sym_model_finish_tables(m);
    return SYM_OK;
}

/* dir: the model directory; index: the index path or NULL; single: the one file or NULL. */
static sym_status open_safetensors(sym_model *m, const char *dir, const char *index,
                                   const char *single) {
    sym_status st = SYM_OK;
    sym_hf_index *ix = NULL;
    st_entry *entries = NULL;
    uint64_t n_entries = 0;
    char *cfg = NULL, *tok = NULL;
    m->format = SYM_MODEL_SAFETENSORS;
    if (!(cfg = join_path(dir, "config.json")) || !(tok = join_path(dir, "tokenizer.json")))
        SYM_FAIL_GOTO(SYM_ERR_OOM, "model: out of memory");
    if (!is_regular_file(cfg))
        SYM_FAIL_GOTO(SYM_ERR_IO, "safetensors: no config.json in '%s' (it holds the "
                      "hyperparameters)", dir);
    sym_hf_config hc;
    SYM_TRY_GOTO(sym_hf_config_load(cfg, &hc));
    m->hp = hc.hp;
    m->bos_id = hc.bos_id;
    m->eos_id = hc.eos_id;
    if (is_regular_file(tok)) {
        m->tokenizer_json = tok;
        tok = NULL;
    }
    int n_files = 1;
    if (index) {
        SYM_TRY_GOTO(sym_hf_index_load(index, &ix));
        n_files = sym_hf_index_n_files(ix);
    }
    m->paths = sym_calloc((size_t)n_files, sizeof *m->paths);
    m->st = sym_calloc((size_t)n_files, sizeof *m->st);
    if (!m->paths || !m->st) SYM_FAIL_GOTO(SYM_ERR_OOM, "model: out of memory");
    for (int i = 0; i < n_files; i++) {
        m->paths[i] = index ? join_path(dir, sym_hf_index_file(ix, i)) : sym_strdup(single);
        if (!m->paths[i]) SYM_FAIL_GOTO(SYM_ERR_OOM, "model: out of memory");
        m->n_files = i + 1;
        SYM_TRY_GOTO(sym_st_open(m->paths[i], &m->st[i]));
    }
    SYM_TRY_GOTO(collect_st(m, ix, &entries, &n_entries));
    SYM_TRY_GOTO(bind_st(m, entries, n_entries));
fail:
    sym_free(entries);
    sym_hf_index_destroy(ix);
    sym_free(cfg);
    sym_free(tok);
    return st;
}

/* ---- open / close -------------------------------------------------------------------------------- */

static sym_status open_path(sym_model *m, const char *path, bool lazy) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return SYM_FAIL(SYM_ERR_IO, "model: cannot open '%s': %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        char *index = join_path(path, "model.safetensors.index.json");
        char *single = join_path(path, "model.safetensors");
        sym_status st;
        if (!index || !single) st = SYM_FAIL(SYM_ERR_OOM, "model: out of memory");
        else if (is_regular_file(index)) st = open_safetensors(m, path, index, NULL);
        else if (is_regular_file(single)) st = open_safetensors(m, path, NULL, single);
        else st = SYM_FAIL(SYM_ERR_IO, "model: directory '%s' holds neither model.safetensors "
                           "nor model.safetensors.index.json", path);
        sym_free(index);
        sym_free(single);
        return st;
    }
    if (!S_ISREG(sb.st_mode))
        return SYM_FAIL(SYM_ERR_IO, "model: '%s' is not a regular file or directory", path);
    char magic[8] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SYM_FAIL(SYM_ERR_IO, "model: cannot open '%s': %s", path, strerror(errno));
    ssize_t got = read(fd, magic, 8);
    close(fd);
    if ((got == 8 && !memcmp(magic, "SYMPACK", 8)) || ends_with(path, ".sympack"))
        return sym_model_open_store(m, path, lazy);
    if ((got >= 4 && !memcmp(magic, "GGUF", 4)) || ends_with(path, ".gguf"))
        return open_gguf(m, path);
    bool is_index = ends_with(path, ".index.json"), is_st = ends_with(path, ".safetensors");
    if (!is_index && !is_st)
        return SYM_FAIL(SYM_ERR_FORMAT, "model: '%s' is neither a GGUF file (no GGUF magic), a "
                        "pack store (no SYMPACK magic) nor a .safetensors file or index", path);
    const char *slash = strrchr(path, '/');
    char *dir = slash ? sym_strndup(path, (size_t)(slash - path) + (slash == path))
                      : sym_strdup(".");
    if (!dir) return SYM_FAIL(SYM_ERR_OOM, "model: out of memory");
    sym_status st = open_safetensors(m, dir, is_index ? path : NULL, is_index ? NULL : path);
    sym_free(dir);
    return st;
}

static sym_status open_model(const char *path, bool lazy, sym_model **out) {
    SYM_CHECK(path && out, SYM_ERR_ARG, "model: NULL argument");
    *out = NULL;
    sym_model *m = sym_calloc(1, sizeof *m);
    if (!m) return SYM_FAIL(SYM_ERR_OOM, "model: out of memory");
    m->bos_id = m->eos_id = -1;
    sym_status st = open_path(m, path, lazy);
    if (st != SYM_OK) {
        sym_model_close(m);
        return st;
    }
    *out = m;
    return SYM_OK;
}

sym_status sym_model_open(const char *path, sym_model **out) {
    return open_model(path, false, out);
}
sym_status sym_model_open_lazy(const char *path, sym_model **out) {
    return open_model(path, true, out);
}

sym_status sym_model_load_weights(sym_model *m, sym_model_load what) {
    SYM_CHECK(what >= SYM_MODEL_LOAD_NONE && what <= SYM_MODEL_LOAD_ALL, SYM_ERR_ARG,
              "model: unknown load request %d", (int)what);
    return m->store ? sym_model_load_store(m, what) : SYM_OK;
}

sym_model_load sym_model_loaded(const sym_model *m) {
    return m->store ? m->loaded : SYM_MODEL_LOAD_ALL;
}

void sym_model_close(sym_model *m) {
    if (!m) return;
    if (m->store) sym_model_close_store(m); /* its gguf is the store's */
    else sym_gguf_close(m->gguf);
    for (int i = 0; m->st && i < m->n_files; i++) sym_st_close(m->st[i]);
    for (int i = 0; m->paths && i < m->n_files; i++) sym_free(m->paths[i]);
    sym_free(m->st);
    sym_free(m->paths);
    sym_free(m->tokenizer_json);
    sym_free(m->w.layers);
    sym_free(m->exp_views);
    sym_free(m->names);
    sym_free(m->table);
    sym_free(m->by_name);
    sym_free(m);
}

/* ---- accessors ----------------------------------------------------------------------------------- */

const char *sym_model_format_name(sym_model_format f) {
    switch (f) {
    case SYM_MODEL_GGUF: return "gguf";
    case SYM_MODEL_SAFETENSORS: return "safetensors";
    case SYM_MODEL_SYMPACK: return "sympack";
    }
    return "?";
}

sym_model_format sym_model_format_of(const sym_model *m) { return m->format; }
const sym_store *sym_model_store(const sym_model *m) { return m->store; }
uint64_t sym_model_host_bytes(const sym_model *m) { return m->committed_bytes; }
const sym_hparams *sym_model_hparams(const sym_model *m) { return &m->hp; }
const sym_model_weights *sym_model_weights_of(const sym_model *m) { return &m->w; }
uint64_t sym_model_n_weights(const sym_model *m) { return m->n_weights; }
uint64_t sym_model_n_params(const sym_model *m) { return m->n_params; }
uint64_t sym_model_weight_bytes(const sym_model *m) { return m->weight_bytes; }
const sym_gguf *sym_model_gguf(const sym_model *m) { return m->gguf; }
const char *sym_model_tokenizer_json(const sym_model *m) { return m->tokenizer_json; }
int sym_model_n_files(const sym_model *m) { return m->n_files; }

const char *sym_model_file_path(const sym_model *m, int file_idx) {
    return file_idx >= 0 && file_idx < m->n_files ? m->paths[file_idx] : NULL;
}

const sym_weight *sym_model_weight_at(const sym_model *m, uint64_t i) {
    return i < m->n_weights ? &m->table[i] : NULL;
}

const sym_weight *sym_model_find_weight(const sym_model *m, const char *name) {
    uint64_t lo = 0, hi = m->n_weights;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->table[m->by_name[mid]].name, name);
        if (c == 0) return &m->table[m->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ---- tokenizer summary ----------------------------------------------------------------------------- */

static int64_t gguf_token_id(const sym_gguf *g, const char *key) {
    uint32_t v = UINT32_MAX;
    if (sym_gguf_get_u32_opt(g, key, &v) != SYM_OK || v == UINT32_MAX) return -1;
    return v;
}

static sym_status summary_from_json(const char *text, size_t len, sym_tokenizer_summary *out) {
    json_object *root = NULL;
    sym_status st = sym_json_parse("tokenizer.json", text, len, &root);
    if (st != SYM_OK) return st;
    json_object *model = NULL, *vocab = NULL, *added = NULL;
    const char *type = NULL;
    if (!json_object_object_get_ex(root, "model", &model) ||
        !json_object_is_type(model, json_type_object)) {
        json_object_put(root);
        return SYM_FAIL(SYM_ERR_FORMAT, "tokenizer.json: no \"model\" object");
    }
    st = sym_json_get_str("tokenizer.json model", model, "type", &type);
    if (st == SYM_OK) snprintf(out->model, sizeof out->model, "%s", type);
    int64_t n = 0;
    if (json_object_object_get_ex(model, "vocab", &vocab)) {
        if (json_object_is_type(vocab, json_type_array)) {
            n = (int64_t)json_object_array_length(vocab);
        } else if (json_object_is_type(vocab, json_type_object)) {
            struct json_object_iter it;
            json_object_object_foreachC(vocab, it) {
                int64_t id = json_object_get_int64(it.val);
                if (json_object_is_type(it.val, json_type_int) && id >= n) n = id + 1;
            }
        }
    }
    if (json_object_object_get_ex(root, "added_tokens", &added) &&
        json_object_is_type(added, json_type_array))
        for (size_t i = 0; i < json_object_array_length(added); i++) {
            json_object *id = NULL;
            if (json_object_object_get_ex(json_object_array_get_idx(added, i), "id", &id) &&
                json_object_is_type(id, json_type_int) && json_object_get_int64(id) >= n)
                n = json_object_get_int64(id) + 1;
        }
    out->n_tokens = n;
    json_object_put(root);
    return st;
}

sym_status sym_model_tokenizer_summary(const sym_model *m, sym_tokenizer_summary *out) {
    memset(out, 0, sizeof *out);
    out->n_tokens = out->bos_id = out->eos_id = -1;
    if (m->gguf) {
        sym_str model = {NULL, 0};
        SYM_TRY(sym_gguf_get_str_opt(m->gguf, "tokenizer.ggml.model", &model));
        if (model.ptr)
            snprintf(out->model, sizeof out->model, "%.*s",
                     (int)(model.len < 31 ? model.len : 31), model.ptr);
        const sym_gguf_kv *tokens = sym_gguf_find(m->gguf, "tokenizer.ggml.tokens");
        if (tokens && tokens->type == SYM_GGUF_ARRAY) out->n_tokens = (int64_t)tokens->arr_n;
        out->bos_id = gguf_token_id(m->gguf, "tokenizer.ggml.bos_token_id");
        out->eos_id = gguf_token_id(m->gguf, "tokenizer.ggml.eos_token_id");
        return SYM_OK;
    }
    out->bos_id = m->bos_id;
    out->eos_id = m->eos_id;
    sym_str json, config;
    if (sym_model_tokenizer_text(m, &json, &config))
        return json.ptr ? summary_from_json(json.ptr, (size_t)json.len, out) : SYM_OK;
    if (!m->tokenizer_json) return SYM_OK;
    char *text = NULL;
    size_t len = 0;
    SYM_TRY(sym_json_read_file(m->tokenizer_json, TOKENIZER_JSON_MAX_BYTES, &text, &len));
    sym_status st = summary_from_json(text, len, out);
    sym_free(text);
    return st;
}
