#include "model/arch.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- architectures ----------------------------------------------------------------------------- */

bool sym_arch_supported(const char *arch) {
    return !strcmp(arch, "llama") || !strcmp(arch, "qwen2");
}

/* Prints at most 40 bytes of an untrusted name, replacing non-printable bytes. */
static const char *show(const char *s, size_t len, char buf[48]) {
    size_t n = len < 40 ? len : 40;
    for (size_t i = 0; i < n; i++) buf[i] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
    strcpy(buf + n, len > 40 ? "..." : "");
    return buf;
}

sym_status sym_arch_init(sym_hparams *hp, const char *arch) {
    char nb[48];
    if (!sym_arch_supported(arch))
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "unknown architecture '%s' (Symbiote runs llama, "
                        "mistral and qwen2)", show(arch, strlen(arch), nb));
    snprintf(hp->arch, sizeof hp->arch, "%s", arch);
    hp->qkv_bias = !strcmp(arch, "qwen2");
    /* llama.cpp's converter permutes llama Q/K rows into interleaved pairs; qwen2 keeps HF's
     * halves layout (it runs with NEOX rope). */
    hp->rope_neox = !strcmp(arch, "qwen2");
    return SYM_OK;
}

/* ---- hyperparameters from GGUF ------------------------------------------------------------------ */

/* Reads <arch>.<suffix> as a dimension in [1, max] (absent and !required: *out unchanged). */
static sym_status rd_dim(const sym_gguf *g, const char *arch, const char *suffix, int64_t max,
                         bool required, int *out) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!required && !sym_gguf_find(g, key)) return SYM_OK;
    uint32_t v;
    SYM_TRY(sym_gguf_get_u32(g, key, &v));
    if (v == 0 || (int64_t)v > max)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: %s = %u is out of range (1..%lld)", key, v,
                        (long long)max);
    *out = (int)v;
    return SYM_OK;
}

static sym_status rd_f32(const sym_gguf *g, const char *arch, const char *suffix, float *out) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return sym_gguf_get_f32_opt(g, key, out);
}

static sym_status rope_scaling_from_gguf(const sym_gguf *g, const char *arch, sym_hparams *hp) {
    char key[96], nb[48];
    sym_str type = {NULL, 0};
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    SYM_TRY(sym_gguf_get_str_opt(g, key, &type));
    float factor = 0.0f;
    if (type.ptr && sym_str_eq(type, "linear")) {
        snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
        SYM_TRY(sym_gguf_get_f32(g, key, &factor));
    } else if (type.ptr && !sym_str_eq(type, "none")) {
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "gguf: RoPE scaling type '%s' is not supported "
                        "(only linear)", show(type.ptr, type.len, nb));
    } else if (!type.ptr) {
        /* older files: <arch>.rope.scale_linear holds the factor */
        SYM_TRY(rd_f32(g, arch, "rope.scale_linear", &factor));
    }
    if (factor != 0.0f) {
        if (!(factor > 0.0f) || !isfinite(factor))
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: RoPE linear scaling factor %g is not a "
                            "positive number", (double)factor);
        hp->rope_freq_scale = 1.0f / factor;
    }
    return SYM_OK;
}

/* <arch>.expert_count / expert_used_count (absent or 0: dense), and the layout of the experts:
 * stacked (blk.N.ffn_gate_exps) unless the file holds the split form (blk.0.ffn_gate.0). */
static sym_status experts_from_gguf(const sym_gguf *g, const char *arch, sym_hparams *hp) {
    char key[96], used_key[96];
    uint32_t n = 0, used = 0;
    snprintf(key, sizeof key, "%s.expert_count", arch);
    snprintf(used_key, sizeof used_key, "%s.expert_used_count", arch);
    SYM_TRY(sym_gguf_get_u32_opt(g, key, &n));
    SYM_TRY(sym_gguf_get_u32_opt(g, used_key, &used));
    if (n == 0) {
        if (used != 0)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: %s = %u without %s", used_key, used, key);
        if (sym_gguf_find_tensor(g, "blk.0.ffn_gate_inp.weight"))
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: the file has expert routers "
                            "(blk.0.ffn_gate_inp.weight) but no %s", key);
        return SYM_OK;
    }
    if (n > SYM_ARCH_MAX_EXPERTS)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: %s = %u is out of range (1..%d)", key, n,
                        SYM_ARCH_MAX_EXPERTS);
    if (used == 0 || used > n)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: %s = %u is out of range (1..%s = %u)", used_key,
                        used, key, n);
    hp->n_expert = (int)n;
    hp->n_expert_used = (int)used;
    hp->expert_split = !sym_gguf_find_tensor(g, "blk.0.ffn_gate_exps.weight") &&
                       sym_gguf_find_tensor(g, "blk.0.ffn_gate.0.weight");
    return SYM_OK;
}

sym_status sym_arch_hparams_from_gguf(const sym_gguf *g, sym_hparams *hp) {
    memset(hp, 0, sizeof *hp);
    sym_str arch;
    char a[32], nb[48], key[96];
    SYM_TRY(sym_gguf_get_str(g, "general.architecture", &arch));
    if (arch.len == 0 || arch.len >= sizeof a || memchr(arch.ptr, 0, arch.len))
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "gguf: unknown architecture '%s'",
                        show(arch.ptr, arch.len, nb));
    memcpy(a, arch.ptr, arch.len);
    a[arch.len] = '\0';
    SYM_TRY(sym_arch_init(hp, a));

    SYM_TRY(rd_dim(g, a, "embedding_length", SYM_ARCH_MAX_DIM, true, &hp->n_embd));
    SYM_TRY(rd_dim(g, a, "block_count", SYM_ARCH_MAX_LAYERS, true, &hp->n_layer));
    SYM_TRY(rd_dim(g, a, "attention.head_count", SYM_ARCH_MAX_DIM, true, &hp->n_head));
    hp->n_head_kv = hp->n_head;
    SYM_TRY(rd_dim(g, a, "attention.head_count_kv", SYM_ARCH_MAX_DIM, false, &hp->n_head_kv));
    SYM_TRY(rd_dim(g, a, "feed_forward_length", SYM_ARCH_MAX_DIM, true, &hp->n_ff));
    SYM_TRY(rd_dim(g, a, "context_length", SYM_ARCH_MAX_CTX, true, &hp->n_ctx_train));
    hp->rope_theta = 10000.0f;
    SYM_TRY(rd_f32(g, a, "rope.freq_base", &hp->rope_theta));
    hp->rms_eps = 1e-5f;
    SYM_TRY(rd_f32(g, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps));
    hp->rope_freq_scale = 1.0f;
    SYM_TRY(rope_scaling_from_gguf(g, a, hp));

    hp->head_dim = 0;
    SYM_TRY(rd_dim(g, a, "attention.key_length", SYM_ARCH_MAX_HEAD_DIM, false, &hp->head_dim));
    if (hp->head_dim == 0) {
        if (hp->n_embd % hp->n_head != 0)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: embedding_length %d is not a multiple of "
                            "head_count %d (and no attention.key_length)", hp->n_embd,
                            hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    int v_len = hp->head_dim, rot = hp->head_dim;
    SYM_TRY(rd_dim(g, a, "attention.value_length", SYM_ARCH_MAX_HEAD_DIM, false, &v_len));
    if (v_len != hp->head_dim)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "gguf: attention.value_length %d differs from "
                        "key_length %d", v_len, hp->head_dim);
    SYM_TRY(rd_dim(g, a, "rope.dimension_count", SYM_ARCH_MAX_HEAD_DIM, false, &rot));
    if (rot != hp->head_dim)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "gguf: partial rotary embeddings "
                        "(rope.dimension_count %d, head_dim %d) are not supported", rot,
                        hp->head_dim);
    if (sym_gguf_find_tensor(g, "rope_freqs.weight"))
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "gguf: per-dimension RoPE frequencies "
                        "(rope_freqs.weight, llama 3.1 scaling) are not supported");

    /* n_vocab: the rows of the embedding table (its shape is checked again with the others) */
    const sym_gguf_tensor *te = sym_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return SYM_FAIL(SYM_ERR_FORMAT, "gguf: missing tensor 'token_embd.weight'");
    if (te->n_dims != 2 || te->ne[1] > SYM_ARCH_MAX_DIM)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensor 'token_embd.weight' has %u dimensions "
                        "and %llu rows (2 dimensions, at most %d rows expected)", te->n_dims,
                        (unsigned long long)te->ne[1], SYM_ARCH_MAX_DIM);
    hp->n_vocab = (int)te->ne[1];
    const sym_gguf_kv *tokens = sym_gguf_find(g, "tokenizer.ggml.tokens");
    if (tokens && (tokens->type != SYM_GGUF_ARRAY || tokens->arr_type != SYM_GGUF_STRING))
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tokenizer.ggml.tokens is not an array of strings");
    if (tokens && tokens->arr_n != (uint64_t)hp->n_vocab)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: token_embd.weight has %d rows but "
                        "tokenizer.ggml.tokens has %llu tokens", hp->n_vocab,
                        (unsigned long long)tokens->arr_n);
    int vs = hp->n_vocab;
    SYM_TRY(rd_dim(g, a, "vocab_size", SYM_ARCH_MAX_DIM, false, &vs));
    snprintf(key, sizeof key, "%s.vocab_size", a);
    if (vs != hp->n_vocab)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: %s = %d but token_embd.weight has %d rows", key,
                        vs, hp->n_vocab);
    hp->tied_embeddings = sym_gguf_find_tensor(g, "output.weight") == NULL;
    SYM_TRY(experts_from_gguf(g, a, hp));
    SYM_TRY(sym_arch_check_hparams(hp));
    return SYM_OK;
}

sym_status sym_arch_check_hparams(const sym_hparams *hp) {
    const struct { const char *name; int v; int max; } dims[] = {
        {"n_embd", hp->n_embd, SYM_ARCH_MAX_DIM},       {"n_layer", hp->n_layer, SYM_ARCH_MAX_LAYERS},
        {"n_head", hp->n_head, SYM_ARCH_MAX_DIM},       {"n_head_kv", hp->n_head_kv, SYM_ARCH_MAX_DIM},
        {"head_dim", hp->head_dim, SYM_ARCH_MAX_HEAD_DIM}, {"n_ff", hp->n_ff, SYM_ARCH_MAX_DIM},
        {"n_vocab", hp->n_vocab, SYM_ARCH_MAX_DIM},     {"n_ctx_train", hp->n_ctx_train, SYM_ARCH_MAX_CTX},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < 1 || dims[i].v > dims[i].max)
            return SYM_FAIL(SYM_ERR_FORMAT, "%s = %d is out of range (1..%d)", dims[i].name,
                            dims[i].v, dims[i].max);
    if ((int64_t)hp->n_head * hp->head_dim > SYM_ARCH_MAX_DIM)
        return SYM_FAIL(SYM_ERR_FORMAT, "n_head * head_dim = %lld is too large (max %d)",
                        (long long)hp->n_head * hp->head_dim, SYM_ARCH_MAX_DIM);
    if (hp->n_head_kv > hp->n_head || hp->n_head % hp->n_head_kv != 0)
        return SYM_FAIL(SYM_ERR_FORMAT, "n_head %d is not a multiple of n_head_kv %d",
                        hp->n_head, hp->n_head_kv);
    if (hp->head_dim % 2 != 0)
        return SYM_FAIL(SYM_ERR_FORMAT, "head_dim %d is odd (RoPE rotates pairs)", hp->head_dim);
    if (!(hp->rope_theta > 0.0f) || !isfinite(hp->rope_theta))
        return SYM_FAIL(SYM_ERR_FORMAT, "rope_theta %g is not a positive number",
                        (double)hp->rope_theta);
    if (!(hp->rope_freq_scale > 0.0f) || !isfinite(hp->rope_freq_scale))
        return SYM_FAIL(SYM_ERR_FORMAT, "rope_freq_scale %g is not a positive number",
                        (double)hp->rope_freq_scale);
    if (!(hp->rms_eps > 0.0f) || !(hp->rms_eps <= 1.0f))
        return SYM_FAIL(SYM_ERR_FORMAT, "rms_eps %g is not in (0, 1]", (double)hp->rms_eps);
    if (hp->n_expert < 0 || hp->n_expert > SYM_ARCH_MAX_EXPERTS)
        return SYM_FAIL(SYM_ERR_FORMAT, "n_expert = %d is out of range (0..%d)", hp->n_expert,
                        SYM_ARCH_MAX_EXPERTS);
    if (hp->n_expert == 0 && (hp->n_expert_used != 0 || hp->expert_split))
        return SYM_FAIL(SYM_ERR_FORMAT, "n_expert_used = %d (or an expert layout) in a model "
                        "without experts", hp->n_expert_used);
    if (hp->n_expert > 0 && (hp->n_expert_used < 1 || hp->n_expert_used > hp->n_expert))
        return SYM_FAIL(SYM_ERR_FORMAT, "n_expert_used = %d is out of range (1..n_expert = %d)",
                        hp->n_expert_used, hp->n_expert);
    if (!sym_arch_supported(hp->arch))
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "unknown architecture '%s'", hp->arch);
    return SYM_OK;
}

/* ---- the tensor table ----------------------------------------------------------------------------- */

typedef struct role_info {
    const char *suffix;    /* internal name after "blk.N." (or the whole global name); for the
                              per-expert roles the part before the expert number */
    const char *hf_suffix; /* HF name after "model.layers.N." (or the whole global name); NULL:
                              none; per-expert roles: the part before the expert number */
    const char *tail;      /* per-expert roles: internal name after the expert number */
    const char *hf_tail;   /* per-expert roles: HF name after the expert number */
    bool vector, bias;
} role_info;

static const role_info k_roles[SYM_ROLE_COUNT] = {
    [SYM_ROLE_TOKEN_EMBD] = {"token_embd.weight", "model.embed_tokens.weight", NULL, NULL, false,
                             false},
    [SYM_ROLE_OUTPUT_NORM] = {"output_norm.weight", "model.norm.weight", NULL, NULL, true, false},
    [SYM_ROLE_OUTPUT] = {"output.weight", "lm_head.weight", NULL, NULL, false, false},
    [SYM_ROLE_ATTN_NORM] = {"attn_norm.weight", "input_layernorm.weight", NULL, NULL, true, false},
    [SYM_ROLE_WQ] = {"attn_q.weight", "self_attn.q_proj.weight", NULL, NULL, false, false},
    [SYM_ROLE_BQ] = {"attn_q.bias", "self_attn.q_proj.bias", NULL, NULL, true, true},
    [SYM_ROLE_WK] = {"attn_k.weight", "self_attn.k_proj.weight", NULL, NULL, false, false},
    [SYM_ROLE_BK] = {"attn_k.bias", "self_attn.k_proj.bias", NULL, NULL, true, true},
    [SYM_ROLE_WV] = {"attn_v.weight", "self_attn.v_proj.weight", NULL, NULL, false, false},
    [SYM_ROLE_BV] = {"attn_v.bias", "self_attn.v_proj.bias", NULL, NULL, true, true},
    [SYM_ROLE_WO] = {"attn_output.weight", "self_attn.o_proj.weight", NULL, NULL, false, false},
    [SYM_ROLE_FFN_NORM] = {"ffn_norm.weight", "post_attention_layernorm.weight", NULL, NULL, true,
                           false},
    [SYM_ROLE_W_GATE] = {"ffn_gate.weight", "mlp.gate_proj.weight", NULL, NULL, false, false},
    [SYM_ROLE_W_UP] = {"ffn_up.weight", "mlp.up_proj.weight", NULL, NULL, false, false},
    [SYM_ROLE_W_DOWN] = {"ffn_down.weight", "mlp.down_proj.weight", NULL, NULL, false, false},
    [SYM_ROLE_FFN_GATE_INP] = {"ffn_gate_inp.weight", "block_sparse_moe.gate.weight", NULL, NULL,
                               false, false},
    [SYM_ROLE_GATE_EXPS] = {"ffn_gate_exps.weight", NULL, NULL, NULL, false, false},
    [SYM_ROLE_UP_EXPS] = {"ffn_up_exps.weight", NULL, NULL, NULL, false, false},
    [SYM_ROLE_DOWN_EXPS] = {"ffn_down_exps.weight", NULL, NULL, NULL, false, false},
    /* Mixtral's w1 is the gate, w3 the up projection, w2 the down projection */
    [SYM_ROLE_GATE_EXP] = {"ffn_gate.", "block_sparse_moe.experts.", ".weight", ".w1.weight",
                           false, false},
    [SYM_ROLE_UP_EXP] = {"ffn_up.", "block_sparse_moe.experts.", ".weight", ".w3.weight", false,
                         false},
    [SYM_ROLE_DOWN_EXP] = {"ffn_down.", "block_sparse_moe.experts.", ".weight", ".w2.weight",
                           false, false},
};
#define N_GLOBAL 3

static bool per_expert(sym_tensor_role r) {
    return r == SYM_ROLE_GATE_EXP || r == SYM_ROLE_UP_EXP || r == SYM_ROLE_DOWN_EXP;
}
static bool stacked(sym_tensor_role r) {
    return r == SYM_ROLE_GATE_EXPS || r == SYM_ROLE_UP_EXPS || r == SYM_ROLE_DOWN_EXPS;
}

/* The roles of one layer up to ffn_norm: 6, or 9 with Q/K/V biases. */
static int n_attn_roles(const sym_hparams *hp) { return hp->qkv_bias ? 9 : 6; }

/* The MLP roles after ffn_norm (see arch.h). */
static int n_mlp_roles(const sym_hparams *hp) {
    if (hp->n_expert == 0) return 3;
    return hp->expert_split ? 1 + 3 * hp->n_expert : 4;
}

uint64_t sym_arch_n_specs(const sym_hparams *hp) {
    return N_GLOBAL + (uint64_t)hp->n_layer * (uint64_t)(n_attn_roles(hp) + n_mlp_roles(hp));
}

/* Is role (with expert) one of the tensors a model of hp holds in layer 0.. (not checked)? */
static bool role_in_model(const sym_hparams *hp, sym_tensor_role role, int expert) {
    if (k_roles[role].bias && !hp->qkv_bias) return false;
    switch (role) {
    case SYM_ROLE_W_GATE: case SYM_ROLE_W_UP: case SYM_ROLE_W_DOWN: return hp->n_expert == 0;
    case SYM_ROLE_FFN_GATE_INP: return hp->n_expert > 0;
    case SYM_ROLE_GATE_EXPS: case SYM_ROLE_UP_EXPS: case SYM_ROLE_DOWN_EXPS:
        return hp->n_expert > 0 && !hp->expert_split;
    case SYM_ROLE_GATE_EXP: case SYM_ROLE_UP_EXP: case SYM_ROLE_DOWN_EXP:
        return hp->n_expert > 0 && hp->expert_split && expert >= 0 && expert < hp->n_expert;
    default: return true;
    }
}

static void fill_spec(const sym_hparams *hp, sym_tensor_role role, int layer, int expert,
                      sym_tensor_spec *s) {
    int64_t q = (int64_t)hp->n_head * hp->head_dim, kv = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t rows = 1, cols = hp->n_embd, ne = hp->n_expert;
    switch (role) {
    case SYM_ROLE_TOKEN_EMBD: case SYM_ROLE_OUTPUT: rows = hp->n_vocab; break;
    case SYM_ROLE_OUTPUT_NORM: case SYM_ROLE_ATTN_NORM: case SYM_ROLE_FFN_NORM: break;
    case SYM_ROLE_WQ: rows = q; break;
    case SYM_ROLE_WK: case SYM_ROLE_WV: rows = kv; break;
    case SYM_ROLE_BQ: cols = q; break;
    case SYM_ROLE_BK: case SYM_ROLE_BV: cols = kv; break;
    case SYM_ROLE_WO: rows = hp->n_embd; cols = q; break;
    case SYM_ROLE_W_GATE: case SYM_ROLE_W_UP: case SYM_ROLE_GATE_EXP: case SYM_ROLE_UP_EXP:
        rows = hp->n_ff;
        break;
    case SYM_ROLE_W_DOWN: case SYM_ROLE_DOWN_EXP: rows = hp->n_embd; cols = hp->n_ff; break;
    case SYM_ROLE_FFN_GATE_INP: rows = ne; break;
    case SYM_ROLE_GATE_EXPS: case SYM_ROLE_UP_EXPS: rows = ne * hp->n_ff; break;
    case SYM_ROLE_DOWN_EXPS: rows = ne * hp->n_embd; cols = hp->n_ff; break;
    case SYM_ROLE_COUNT: SYM_ASSERT(0);
    }
    memset(s, 0, sizeof *s);
    s->role = role;
    s->layer = layer;
    s->expert = per_expert(role) ? expert : -1;
    s->n_rows = rows;
    s->n_cols = cols;
    s->n_stack = stacked(role) ? hp->n_expert : 0;
    s->vector = k_roles[role].vector;
    s->optional = role == SYM_ROLE_OUTPUT;
    if (layer < 0) snprintf(s->name, sizeof s->name, "%s", k_roles[role].suffix);
    else if (per_expert(role))
        snprintf(s->name, sizeof s->name, "blk.%d.%s%d%s", layer, k_roles[role].suffix, expert,
                 k_roles[role].tail);
    else snprintf(s->name, sizeof s->name, "blk.%d.%s", layer, k_roles[role].suffix);
}

void sym_arch_spec_at(const sym_hparams *hp, uint64_t i, sym_tensor_spec *out) {
    SYM_ASSERT(i < sym_arch_n_specs(hp));
    if (i < N_GLOBAL) {
        fill_spec(hp, (sym_tensor_role)i, -1, -1, out);
        return;
    }
    int n_attn = n_attn_roles(hp), per = n_attn + n_mlp_roles(hp);
    int layer = (int)((i - N_GLOBAL) / (uint64_t)per), k = (int)((i - N_GLOBAL) % (uint64_t)per);
    int role = SYM_ROLE_ATTN_NORM, expert = -1;
    if (k < n_attn) {
        /* the k-th per-layer role, skipping biases when the model has none */
        for (;; role++) {
            if (k_roles[role].bias && !hp->qkv_bias) continue;
            if (k-- == 0) break;
        }
    } else {
        k -= n_attn;
        if (hp->n_expert == 0) role = SYM_ROLE_W_GATE + k;
        else if (k == 0) role = SYM_ROLE_FFN_GATE_INP;
        else if (!hp->expert_split) role = SYM_ROLE_GATE_EXPS + (k - 1);
        else role = SYM_ROLE_GATE_EXP + (k - 1) % 3, expert = (k - 1) / 3;
    }
    fill_spec(hp, (sym_tensor_role)role, layer, expert, out);
}

void sym_arch_spec_of(const sym_hparams *hp, sym_tensor_role role, int layer, int expert,
                      sym_tensor_spec *out) {
    SYM_ASSERT((unsigned)role < SYM_ROLE_COUNT);
    fill_spec(hp, role, layer, expert, out);
}

/* Parses a canonical decimal (no sign, no leading zero) below max at the start of s, followed by
 * a '.'. Returns the rest of the name from that '.' or NULL. */
static const char *parse_index(const char *s, int max, int *out) {
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '.')) return NULL;
    int v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
        if (v >= max) return NULL;
    }
    if (*s != '.') return NULL;
    *out = v;
    return s;
}

/* Parses "<prefix>N." at the start of s, N below SYM_ARCH_MAX_LAYERS. Returns the rest of the
 * name or NULL. */
static const char *parse_layer(const char *s, const char *prefix, int *layer) {
    size_t pl = strlen(prefix);
    if (strncmp(s, prefix, pl) != 0) return NULL;
    s = parse_index(s + pl, SYM_ARCH_MAX_LAYERS, layer);
    return s ? s + 1 : NULL;
}

/* Finds role, layer and expert (-1 unless per-expert) of a name (internal when hf is false). */
static bool split_name(const char *name, bool hf, sym_tensor_role *role, int *layer,
                       int *expert) {
    *expert = -1;
    for (int r = 0; r < N_GLOBAL; r++)
        if (!strcmp(name, hf ? k_roles[r].hf_suffix : k_roles[r].suffix)) {
            *role = (sym_tensor_role)r;
            *layer = -1;
            return true;
        }
    const char *rest = parse_layer(name, hf ? "model.layers." : "blk.", layer);
    if (!rest) return false;
    for (int r = N_GLOBAL; r < SYM_ROLE_COUNT; r++) {
        const char *suffix = hf ? k_roles[r].hf_suffix : k_roles[r].suffix;
        if (!suffix) continue;
        if (!per_expert((sym_tensor_role)r)) {
            if (strcmp(rest, suffix) != 0) continue;
            *role = (sym_tensor_role)r;
            return true;
        }
        size_t sl = strlen(suffix);
        const char *tail;
        if (strncmp(rest, suffix, sl) != 0 ||
            !(tail = parse_index(rest + sl, SYM_ARCH_MAX_EXPERTS, expert)) ||
            strcmp(tail, hf ? k_roles[r].hf_tail : k_roles[r].tail) != 0)
            continue;
        *role = (sym_tensor_role)r;
        return true;
    }
    *expert = -1;
    return false;
}

bool sym_arch_find_spec(const sym_hparams *hp, const char *name, sym_tensor_spec *out) {
    sym_tensor_role role;
    int layer, expert;
    if (!split_name(name, false, &role, &layer, &expert)) return false;
    if (layer >= hp->n_layer || !role_in_model(hp, role, expert)) return false;
    fill_spec(hp, role, layer, expert, out);
    return true;
}

sym_weight *sym_arch_slot(sym_model_weights *w, const sym_tensor_spec *s) {
    switch (s->role) {
    case SYM_ROLE_TOKEN_EMBD: return &w->token_embd;
    case SYM_ROLE_OUTPUT_NORM: return &w->output_norm;
    case SYM_ROLE_OUTPUT: return &w->output;
    default: break;
    }
    sym_layer_weights *l = &w->layers[s->layer];
    switch (s->role) {
    case SYM_ROLE_ATTN_NORM: return &l->attn_norm;
    case SYM_ROLE_WQ: return &l->wq;
    case SYM_ROLE_BQ: return &l->bq;
    case SYM_ROLE_WK: return &l->wk;
    case SYM_ROLE_BK: return &l->bk;
    case SYM_ROLE_WV: return &l->wv;
    case SYM_ROLE_BV: return &l->bv;
    case SYM_ROLE_WO: return &l->wo;
    case SYM_ROLE_FFN_NORM: return &l->ffn_norm;
    case SYM_ROLE_W_GATE: return &l->w_gate;
    case SYM_ROLE_W_UP: return &l->w_up;
    case SYM_ROLE_W_DOWN: return &l->w_down;
    case SYM_ROLE_FFN_GATE_INP: return &l->ffn_gate_inp;
    case SYM_ROLE_GATE_EXPS: return &l->ffn_gate_exps;
    case SYM_ROLE_UP_EXPS: return &l->ffn_up_exps;
    case SYM_ROLE_DOWN_EXPS: return &l->ffn_down_exps;
    case SYM_ROLE_GATE_EXP: return &l->exp_gate[s->expert];
    case SYM_ROLE_UP_EXP: return &l->exp_up[s->expert];
    case SYM_ROLE_DOWN_EXP: return &l->exp_down[s->expert];
    default: SYM_ASSERT(0);
    }
    return NULL;
}

uint32_t sym_arch_spec_dims(const sym_tensor_spec *s, bool ggml_order, uint64_t dims[3]) {
    if (s->vector) {
        dims[0] = (uint64_t)s->n_cols;
        return 1;
    }
    uint64_t d[3] = {(uint64_t)s->n_cols, (uint64_t)s->n_rows, 1};
    uint32_t n = 2;
    if (s->n_stack > 0) {
        d[1] = (uint64_t)(s->n_rows / s->n_stack);
        d[2] = (uint64_t)s->n_stack;
        n = 3;
    }
    for (uint32_t i = 0; i < n; i++) dims[i] = ggml_order ? d[i] : d[n - 1 - i];
    return n;
}

static bool map_name(const char *in, bool from_hf, char *out, size_t cap) {
    sym_tensor_role role;
    int layer, expert, n;
    if (!split_name(in, from_hf, &role, &layer, &expert)) return false;
    const role_info *ri = &k_roles[role];
    const char *suffix = from_hf ? ri->suffix : ri->hf_suffix;
    if (!suffix) return false;
    if (layer < 0) n = snprintf(out, cap, "%s", suffix);
    else if (expert >= 0)
        n = snprintf(out, cap, "%s%d.%s%d%s", from_hf ? "blk." : "model.layers.", layer, suffix,
                     expert, from_hf ? ri->tail : ri->hf_tail);
    else n = snprintf(out, cap, "%s%d.%s", from_hf ? "blk." : "model.layers.", layer, suffix);
    return n > 0 && (size_t)n < cap;
}

bool sym_arch_hf_to_internal(const char *hf, char *out, size_t cap) {
    return map_name(hf, true, out, cap);
}

bool sym_arch_internal_to_hf(const char *internal, char *out, size_t cap) {
    return map_name(internal, false, out, cap);
}

bool sym_arch_dtype_from_ggml(uint32_t ggml_type, sym_dtype *out) {
    switch (ggml_type) {
    case SYM_GGML_F32: *out = SYM_DT_F32; return true;
    case SYM_GGML_F16: *out = SYM_DT_F16; return true;
    case SYM_GGML_BF16: *out = SYM_DT_BF16; return true;
    default: return false;
    }
}

uint32_t sym_arch_dtype_to_ggml(sym_dtype t) {
    return t == SYM_DT_F32 ? SYM_GGML_F32 : t == SYM_DT_F16 ? SYM_GGML_F16 : SYM_GGML_BF16;
}
