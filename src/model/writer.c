/* writer.c — synthetic models: options and presets, the deterministic weight generator, streaming
 * tensors to disk, and files written under a temporary name then renamed into place. */
#include "model/writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/half.h"
#include "model/writer_internal.h"

#define CHUNK_BYTES (4u << 20)

/* ---- presets ------------------------------------------------------------------------------------ */

typedef struct preset {
    const char *name, *arch;
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    float theta, eps;
    bool tied;
    const char *summary;
    int n_expert, n_expert_used; /* 0, 0: dense */
} preset;

/* The tiny ones have awkward sizes on purpose: nothing is a multiple of a workgroup. */
static const preset k_presets[] = {
    {"tiny", "llama", 80, 2, 4, 2, 216, 515, 256, 10000.0f, 1e-5f, false,
     "llama, 80 wide, 2 layers, 4/2 heads (head_dim 20), n_ff 216, vocab 515 (~0.2M params)",
     0, 0},
    {"tiny-qwen2", "qwen2", 96, 2, 6, 2, 232, 600, 256, 1e6f, 1e-6f, true,
     "qwen2 (Q/K/V biases, tied embeddings), 96 wide, 2 layers, 6/2 heads, vocab 600", 0, 0},
    {"tinyllama-1.1b", "llama", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.0f, 1e-5f, false,
     "TinyLlama 1.1B shapes", 0, 0},
    {"llama2-7b", "llama", 4096, 32, 32, 32, 11008, 32000, 4096, 10000.0f, 1e-5f, false,
     "Llama 2 7B shapes", 0, 0},
    {"llama3-8b", "llama", 4096, 32, 32, 8, 14336, 128256, 8192, 500000.0f, 1e-5f, false,
     "Llama 3 8B shapes (GQA 32/8, vocab 128256, theta 500000)", 0, 0},
    {"mistral-7b", "llama", 4096, 32, 32, 8, 14336, 32000, 32768, 1e6f, 1e-5f, false,
     "Mistral 7B v0.2 shapes (GQA 32/8, ctx 32768, theta 1e6)", 0, 0},
    {"qwen2-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1e6f, 1e-6f, true,
     "Qwen2 0.5B shapes (biases, tied embeddings, vocab 151936)", 0, 0},
    /* mixtures of experts (llama with Mixtral's routed MLP) */
    {"tiny-moe", "llama", 80, 2, 4, 2, 216, 515, 256, 10000.0f, 1e-5f, false,
     "like tiny, with 8 experts of n_ff 216 per layer, top-2 (~0.9M params)", 8, 2},
    {"mini-moe", "llama", 512, 8, 8, 4, 768, 8000, 2048, 1e6f, 1e-5f, false,
     "512 wide, 8 layers, 8/4 heads, 8 experts of n_ff 768, top-2, vocab 8000 (~90M params, "
     "180 MB in f16)", 8, 2},
    {"mixtral-8x7b", "llama", 4096, 32, 32, 8, 14336, 32000, 32768, 1e6f, 1e-5f, false,
     "Mixtral 8x7B shapes (8 experts of n_ff 14336, top-2, GQA 32/8, 46.7B params)", 8, 2},
};
#define N_PRESETS (int)(sizeof k_presets / sizeof k_presets[0])

const char *sym_make_model_preset_name(int i) {
    return i >= 0 && i < N_PRESETS ? k_presets[i].name : NULL;
}
const char *sym_make_model_preset_summary(int i) {
    return i >= 0 && i < N_PRESETS ? k_presets[i].summary : NULL;
}

sym_status sym_make_model_preset(sym_make_model_options *o, const char *name) {
    for (int i = 0; i < N_PRESETS; i++) {
        const preset *p = &k_presets[i];
        if (strcmp(p->name, name) != 0) continue;
        snprintf(o->preset, sizeof o->preset, "%s", p->name);
        snprintf(o->arch, sizeof o->arch, "%s", p->arch);
        o->n_embd = p->n_embd;
        o->n_layer = p->n_layer;
        o->n_head = p->n_head;
        o->n_head_kv = p->n_head_kv;
        o->n_ff = p->n_ff;
        o->n_vocab = p->n_vocab;
        o->n_ctx = p->n_ctx;
        o->head_dim = 0;
        o->rope_theta = p->theta;
        o->rms_eps = p->eps;
        o->tied_embeddings = p->tied;
        o->n_expert = p->n_expert;
        o->n_expert_used = p->n_expert_used;
        return SYM_OK;
    }
    char list[512] = "";
    for (int i = 0; i < N_PRESETS; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", k_presets[i].name);
    }
    return SYM_FAIL(SYM_ERR_ARG, "make-model: unknown preset '%s' (%s)", name, list);
}

void sym_make_model_options_init(sym_make_model_options *o) {
    memset(o, 0, sizeof *o);
    sym_status st = sym_make_model_preset(o, "tiny");
    SYM_ASSERT(st == SYM_OK);
    o->dtype = SYM_DT_F16;
    o->seed = 1;
    o->format = SYM_MODEL_GGUF;
}

/* n_vocab_src: the vocabulary's size when it comes from a file (0: o->n_vocab). */
static sym_status hparams_from_options(const sym_make_model_options *o, uint32_t n_vocab_src,
                                       sym_hparams *hp) {
    memset(hp, 0, sizeof *hp);
    sym_status st = sym_arch_init(hp, o->arch);
    if (st != SYM_OK) {
        sym_error_prefix("make-model");
        return SYM_ERR_ARG;
    }
    hp->n_embd = o->n_embd;
    hp->n_layer = o->n_layer;
    hp->n_head = o->n_head;
    hp->n_head_kv = o->n_head_kv;
    hp->n_ff = o->n_ff;
    hp->n_vocab = n_vocab_src ? (int)n_vocab_src : o->n_vocab;
    hp->n_ctx_train = o->n_ctx;
    hp->head_dim = o->head_dim;
    if (hp->head_dim == 0) {
        if (o->n_head <= 0 || o->n_embd % o->n_head != 0)
            return SYM_FAIL(SYM_ERR_ARG, "make-model: n_embd %d is not a multiple of n_head %d",
                            o->n_embd, o->n_head);
        hp->head_dim = o->n_embd / o->n_head;
    }
    hp->rope_theta = o->rope_theta;
    hp->rope_freq_scale = 1.0f;
    hp->rms_eps = o->rms_eps;
    hp->tied_embeddings = o->tied_embeddings;
    hp->n_expert = o->n_expert;
    hp->n_expert_used = o->n_expert_used;
    /* Hugging Face stores experts apart (block_sparse_moe.experts.E.w1/w2/w3) */
    hp->expert_split = o->n_expert > 0 && (o->split_experts || o->format == SYM_MODEL_SAFETENSORS);
    if (o->n_expert > 0 && strcmp(o->arch, "llama") != 0)
        return SYM_FAIL(SYM_ERR_ARG, "make-model: experts are written for llama models only "
                        "(Mixtral), not %s", o->arch);
    if (o->n_expert == 0 && (o->n_expert_used != 0 || o->split_experts))
        return SYM_FAIL(SYM_ERR_ARG, "make-model: n_expert_used %d or split experts without "
                        "experts (n_expert 0)", o->n_expert_used);
    if ((unsigned)o->dtype >= SYM_DT_COUNT)
        return SYM_FAIL(SYM_ERR_ARG, "make-model: unknown dtype %d", (int)o->dtype);
    if (o->format != SYM_MODEL_GGUF && o->format != SYM_MODEL_SAFETENSORS)
        return SYM_FAIL(SYM_ERR_ARG, "make-model: unknown format %d", (int)o->format);
    if (!n_vocab_src && hp->n_vocab < 260)
        return SYM_FAIL(SYM_ERR_ARG, "make-model: a synthetic vocabulary needs at least 260 "
                        "tokens (3 special + 256 bytes + 1), not %d", hp->n_vocab);
    if ((st = sym_arch_check_hparams(hp)) != SYM_OK) {
        sym_error_prefix("make-model");
        return SYM_ERR_ARG;
    }
    return SYM_OK;
}

sym_status sym_make_model_hparams(const sym_make_model_options *o, sym_hparams *out) {
    if (!o->vocab_from) return hparams_from_options(o, 0, out);
    sym_wvocab v;
    SYM_TRY(sym_wvocab_load(o->vocab_from, &v));
    sym_status st = hparams_from_options(o, v.n, out);
    sym_wvocab_free(&v);
    return st;
}

/* ---- the weight generator -------------------------------------------------------------------------
 * Counter-based: element i of tensor `name` is a function of (seed, name, i) alone, so any row can
 * be produced in any order, by the writer or by a test. */

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t tensor_key(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    return mix64(h ^ mix64(seed + 0x9e3779b97f4a7c15ull));
}

/* Near-normal, mean 0, variance 1, within ±3.47: the sum of four 16-bit uniforms. */
static inline float gen_unit(uint64_t key, uint64_t i) {
    uint64_t z = mix64(key + i * 0x9e3779b97f4a7c15ull);
    uint32_t s = (uint32_t)(z & 0xffff) + (uint32_t)((z >> 16) & 0xffff) +
                 (uint32_t)((z >> 32) & 0xffff) + (uint32_t)(z >> 48);
    return ((float)s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

static void role_params(const sym_hparams *hp, const sym_tensor_spec *s, float *mean,
                        float *std) {
    *mean = 0.0f;
    switch (s->role) {
    case SYM_ROLE_OUTPUT_NORM: case SYM_ROLE_ATTN_NORM: case SYM_ROLE_FFN_NORM:
        *mean = 1.0f;
        *std = 0.1f;
        break;
    case SYM_ROLE_BQ: case SYM_ROLE_BK: case SYM_ROLE_BV: *std = 0.1f; break;
    case SYM_ROLE_TOKEN_EMBD:
        /* untied: unit rows, so the input matters next to the layers' outputs; tied: smaller,
         * so the logits (rows · normalized state) stay within a few units */
        *std = hp->tied_embeddings ? 1.0f / sqrtf(sqrtf((float)hp->n_embd)) : 1.0f;
        break;
    default: *std = 1.0f / sqrtf((float)s->n_cols); break;
    }
}

static void gen_row(uint64_t key, float mean, float std, int64_t n_cols, int64_t row,
                    sym_dtype type, void *dst) {
    uint64_t base = (uint64_t)row * (uint64_t)n_cols;
    if (type == SYM_DT_F32) {
        float *d = dst;
        for (int64_t c = 0; c < n_cols; c++) d[c] = mean + std * gen_unit(key, base + (uint64_t)c);
    } else if (type == SYM_DT_F16) {
        uint16_t *d = dst;
        for (int64_t c = 0; c < n_cols; c++)
            d[c] = sym_f32_to_f16(mean + std * gen_unit(key, base + (uint64_t)c));
    } else {
        uint16_t *d = dst;
        for (int64_t c = 0; c < n_cols; c++)
            d[c] = sym_f32_to_bf16(mean + std * gen_unit(key, base + (uint64_t)c));
    }
}

/* ---- routers and experts ---------------------------------------------------------------------
 * Expert matrices are ordinary random matrices keyed by their per-expert name
 * ("blk.L.ffn_gate.E.weight"), so the stacked GGUF tensor (ffn_gate_exps), the split GGUF
 * tensors and Hugging Face's experts.E.w1 hold the same numbers.
 *
 * A router with rows like every other matrix would route uniformly. Real routers do not, and a
 * streaming engine needs skewed, input-dependent routing to have something to predict, so row e
 * of layer L's router (ffn_gate_inp, (n_expert, n_embd)) is
 *     W[e][c] = g_e / sqrt(n_embd) * (0.8 * u_{e mod D}[c] + 0.6 * z_e[c])
 * with u_0 .. u_{D-1} (D = clamp(n_expert / 2, 1, 4)) shared random directions and z_e the
 * expert's own noise (both near-normal, unit variance, keyed by the router's name) and a
 * Zipf-like gain g_e = ROUTER_GAIN / (rank_e + 1)^ROUTER_ZIPF, where rank_e is e's place in a
 * per-layer random order of the experts. For an input with unit-variance entries expert e's
 * logit is then about N(0, g_e^2): high-gain experts win far more often (the hottest one takes
 * about 40% of top-1 wins among 8 experts, 3x its uniform share) yet which one wins depends on
 * the input, experts sharing a direction tend to be chosen together, and the hottest expert
 * differs from layer to layer. */

#define ROUTER_GAIN 2.0f
#define ROUTER_ZIPF 1.2f

static void router_row(const sym_hparams *hp, uint64_t seed, const sym_tensor_spec *s, int64_t e,
                       sym_dtype type, void *dst) {
    uint64_t key = tensor_key(seed, s->name), dir_key = mix64(key ^ 0x6469726563746eull);
    /* rank: how many experts come before e in the layer's random order */
    uint64_t he = mix64(key + (uint64_t)e * 0x9e3779b97f4a7c15ull);
    int rank = 0;
    for (int64_t j = 0; j < hp->n_expert; j++) {
        uint64_t hj = mix64(key + (uint64_t)j * 0x9e3779b97f4a7c15ull);
        rank += hj < he || (hj == he && j < e);
    }
    int n_dir = hp->n_expert / 2 < 1 ? 1 : hp->n_expert / 2 > 4 ? 4 : hp->n_expert / 2;
    float g = ROUTER_GAIN / powf((float)(rank + 1), ROUTER_ZIPF) / sqrtf((float)hp->n_embd);
    uint64_t n = (uint64_t)hp->n_embd, d0 = (uint64_t)(e % n_dir) * n, z0 = (uint64_t)e * n;
    for (uint64_t c = 0; c < n; c++) {
        float v = g * (0.8f * gen_unit(dir_key, d0 + c) + 0.6f * gen_unit(key, z0 + c));
        if (type == SYM_DT_F32) ((float *)dst)[c] = v;
        else if (type == SYM_DT_F16) ((uint16_t *)dst)[c] = sym_f32_to_f16(v);
        else ((uint16_t *)dst)[c] = sym_f32_to_bf16(v);
    }
}

/* Row `row` of the tensor of spec s (GGUF row order), converted to type. */
static void spec_row(const sym_hparams *hp, uint64_t seed, const sym_tensor_spec *s, int64_t row,
                     sym_dtype type, void *dst) {
    if (s->role == SYM_ROLE_FFN_GATE_INP) {
        router_row(hp, seed, s, row, type, dst);
        return;
    }
    float mean, std;
    role_params(hp, s, &mean, &std);
    if (s->n_stack > 0) { /* expert e's row r, keyed like the split layout's tensor */
        int64_t per = s->n_rows / s->n_stack;
        sym_tensor_spec one;
        sym_tensor_role r = s->role == SYM_ROLE_GATE_EXPS ? SYM_ROLE_GATE_EXP
                            : s->role == SYM_ROLE_UP_EXPS ? SYM_ROLE_UP_EXP
                                                          : SYM_ROLE_DOWN_EXP;
        sym_arch_spec_of(hp, r, s->layer, (int)(row / per), &one);
        gen_row(tensor_key(seed, one.name), mean, std, s->n_cols, row % per, type, dst);
        return;
    }
    gen_row(tensor_key(seed, s->name), mean, std, s->n_cols, row, type, dst);
}

int64_t sym_make_model_gguf_row(int64_t hf_row, int head_dim) {
    int64_t half = head_dim / 2, head = hf_row / head_dim, r = hf_row % head_dim;
    return head * head_dim + 2 * (r % half) + r / half;
}

sym_status sym_make_model_rows(const sym_hparams *hp, uint64_t seed, const char *name,
                               int64_t row0, int64_t n_rows, sym_dtype type, void *dst) {
    sym_tensor_spec s;
    if (!sym_arch_find_spec(hp, name, &s))
        return SYM_FAIL(SYM_ERR_ARG, "make-model: '%s' is not a tensor of this model", name);
    if (row0 < 0 || n_rows < 0 || row0 > s.n_rows || n_rows > s.n_rows - row0)
        return SYM_FAIL(SYM_ERR_ARG, "make-model: rows [%lld, %lld) of '%s' (it has %lld)",
                        (long long)row0, (long long)(row0 + n_rows), name, (long long)s.n_rows);
    size_t row_bytes = (size_t)s.n_cols * sym_dtype_size(type);
    for (int64_t r = 0; r < n_rows; r++)
        spec_row(hp, seed, &s, row0 + r, type, (uint8_t *)dst + (size_t)r * row_bytes);
    return SYM_OK;
}

/* ---- streaming ------------------------------------------------------------------------------------ */

uint64_t sym_writer_tensor_bytes(const sym_writer *w, const sym_tensor_spec *s) {
    return (uint64_t)s->n_rows * (uint64_t)s->n_cols * sym_dtype_size(w->o->dtype);
}

sym_status sym_writer_stream(sym_writer *w, sym_wfile *f, const sym_tensor_spec *s,
                             bool hf_layout) {
    bool permute = hf_layout && !strcmp(w->hp.arch, "llama") &&
                   (s->role == SYM_ROLE_WQ || s->role == SYM_ROLE_WK);
    size_t row_bytes = (size_t)s->n_cols * sym_dtype_size(w->o->dtype);
    int64_t per_chunk = (int64_t)(w->buf_bytes / row_bytes); /* buf holds at least one row */
    for (int64_t r0 = 0; r0 < s->n_rows; r0 += per_chunk) {
        int64_t n = s->n_rows - r0 < per_chunk ? s->n_rows - r0 : per_chunk;
        for (int64_t r = 0; r < n; r++) {
            int64_t src = permute ? sym_make_model_gguf_row(r0 + r, w->hp.head_dim) : r0 + r;
            spec_row(&w->hp, w->o->seed, s, src, w->o->dtype, w->buf + (size_t)r * row_bytes);
        }
        SYM_TRY(sym_wfile_write(f, w->buf, (size_t)n * row_bytes));
        w->done_bytes += (uint64_t)n * row_bytes;
        if (w->o->progress) w->o->progress(w->o->progress_user, w->done_bytes, w->total_bytes);
    }
    return SYM_OK;
}

/* ---- files ---------------------------------------------------------------------------------------- */

sym_status sym_wfile_open(sym_wfile *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    size_t n = strlen(path) + 32;
    f->path = sym_strdup(path);
    f->tmp = sym_malloc(n);
    if (!f->path || !f->tmp) {
        sym_wfile_abort(f);
        return SYM_FAIL(SYM_ERR_OOM, "make-model: out of memory");
    }
    snprintf(f->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;
        sym_free(f->tmp);
        f->tmp = NULL; /* not ours: never unlink it */
        sym_wfile_abort(f);
        return SYM_FAIL(SYM_ERR_IO, "make-model: cannot create '%s': %s", path, strerror(e));
    }
    return SYM_OK;
}

sym_status sym_wfile_write(sym_wfile *f, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return SYM_FAIL(SYM_ERR_IO, "make-model: cannot write '%s': %s", f->path,
                            w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
    }
    return SYM_OK;
}

sym_status sym_wfile_pad(sym_wfile *f, uint64_t pos, uint64_t align) {
    static const uint8_t zeros[64];
    uint64_t pad = (align - pos % align) % align;
    SYM_ASSERT(pad <= sizeof zeros);
    return pad ? sym_wfile_write(f, zeros, (size_t)pad) : SYM_OK;
}

sym_status sym_wfile_commit(sym_wfile *f) {
    sym_status st = SYM_OK;
    if (fsync(f->fd) != 0)
        st = SYM_FAIL(SYM_ERR_IO, "make-model: cannot flush '%s': %s", f->path, strerror(errno));
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0 && st == SYM_OK)
        st = SYM_FAIL(SYM_ERR_IO, "make-model: cannot close '%s': %s", f->path, strerror(errno));
    if (st == SYM_OK && rename(f->tmp, f->path) != 0)
        st = SYM_FAIL(SYM_ERR_IO, "make-model: cannot rename '%s' to '%s': %s", f->tmp, f->path,
                      strerror(errno));
    if (st == SYM_OK) {
        sym_free(f->tmp);
        f->tmp = NULL;
    }
    sym_wfile_abort(f);
    return st;
}

void sym_wfile_abort(sym_wfile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp) unlink(f->tmp);
    sym_free(f->tmp);
    sym_free(f->path);
    f->tmp = f->path = NULL;
}

sym_status sym_wfile_put(const char *path, const void *data, size_t n) {
    sym_wfile f;
    SYM_TRY(sym_wfile_open(&f, path));
    sym_status st = sym_wfile_write(&f, data, n);
    if (st == SYM_OK) return sym_wfile_commit(&f);
    sym_wfile_abort(&f);
    return st;
}

/* ---- the entry point ---------------------------------------------------------------------------- */

/* Refuses outputs that would destroy something: the vocab_from input, a directory in place of a
 * GGUF file, a non-empty directory or a file in place of a safetensors directory. */
static sym_status check_output(const sym_make_model_options *o, const char *out_path) {
    struct stat out_sb, voc_sb;
    if (stat(out_path, &out_sb) != 0) return SYM_OK;
    if (o->vocab_from && stat(o->vocab_from, &voc_sb) == 0 && voc_sb.st_dev == out_sb.st_dev &&
        voc_sb.st_ino == out_sb.st_ino)
        return SYM_FAIL(SYM_ERR_ARG, "make-model: refusing to overwrite '%s', the --vocab-from "
                        "input", out_path);
    if (o->format == SYM_MODEL_GGUF) {
        if (S_ISDIR(out_sb.st_mode))
            return SYM_FAIL(SYM_ERR_ARG, "make-model: output '%s' is a directory", out_path);
        return SYM_OK;
    }
    if (!S_ISDIR(out_sb.st_mode))
        return SYM_FAIL(SYM_ERR_ARG, "make-model: output '%s' exists and is not a directory "
                        "(safetensors models are directories)", out_path);
    /* rename() replaces an empty directory atomically; anything else is the user's */
    DIR *d = opendir(out_path);
    if (!d) return SYM_FAIL(SYM_ERR_IO, "make-model: cannot read '%s': %s", out_path,
                            strerror(errno));
    const struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    if (!empty)
        return SYM_FAIL(SYM_ERR_ARG, "make-model: output directory '%s' is not empty; remove it "
                        "first", out_path);
    return SYM_OK;
}

sym_status sym_make_model(const sym_make_model_options *o, const char *out_path) {
    SYM_CHECK(o && out_path && *out_path, SYM_ERR_ARG, "make-model: no output path");
    sym_status st = SYM_OK;
    sym_writer w;
    memset(&w, 0, sizeof w);
    w.o = o;
    if (o->vocab_from) SYM_TRY_GOTO(sym_wvocab_load(o->vocab_from, &w.vocab));
    SYM_TRY_GOTO(hparams_from_options(o, o->vocab_from ? w.vocab.n : 0, &w.hp));
    if (!o->vocab_from) SYM_TRY_GOTO(sym_wvocab_synthesize((uint32_t)w.hp.n_vocab, &w.vocab));
    SYM_TRY_GOTO(check_output(o, out_path));

    uint64_t n_specs = sym_arch_n_specs(&w.hp);
    size_t max_row = 0;
    for (uint64_t i = 0; i < n_specs; i++) {
        sym_tensor_spec s;
        sym_arch_spec_at(&w.hp, i, &s);
        if (s.optional && w.hp.tied_embeddings) continue;
        w.total_bytes += sym_writer_tensor_bytes(&w, &s);
        size_t rb = (size_t)s.n_cols * sym_dtype_size(o->dtype);
        if (rb > max_row) max_row = rb;
    }
    w.buf_bytes = max_row > CHUNK_BYTES ? max_row : CHUNK_BYTES;
    if (!(w.buf = sym_malloc(w.buf_bytes))) SYM_FAIL_GOTO(SYM_ERR_OOM, "make-model: out of memory");
    if (o->format == SYM_MODEL_GGUF) st = sym_writer_gguf(&w, out_path);
    else st = sym_writer_safetensors(&w, out_path);
fail:
    sym_free(w.buf);
    sym_wvocab_free(&w.vocab);
    return st;
}
