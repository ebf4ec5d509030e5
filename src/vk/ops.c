/* ops.c — the Vulkan backend: creation, tensor memory, binding windows, and the row-wise and
 * elementwise ops (embed, rmsnorm, rope, store_rows, silu_mul, add, softmax, argmax). Matrix
 * products are in ops_matmul.c, attention in ops_attn.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/half.h"
#include "base/log.h"
#include "vk/ops_impl.h"

/* ---- options ------------------------------------------------------------------------------- */

void sym_vk_options_init(sym_vk_options *o) {
    memset(o, 0, sizeof *o);
    o->device_index = -1;
    o->use_subgroups = 1;
    o->use_coopmat = 1;
}

void sym_vk_options_from_config(sym_vk_options *o, const sym_config *cfg) {
    sym_vk_options_init(o);
    o->workgroup_size = cfg->workgroup_size_x;
    o->matvec_rows = cfg->workgroup_size_y;
    o->use_subgroups = cfg->use_subgroup_ops;
    o->use_fp16_math = cfg->use_fp16_math;
    o->profiling = cfg->enable_profiling;
    o->shader_dir = cfg->shader_dir[0] ? cfg->shader_dir : NULL;
}

/* ---- shared helpers ------------------------------------------------------------------------- */

void sym_vkb_latch(sym_vkb *b, sym_status st) {
    if (st == SYM_OK || b->err != SYM_OK) return;
    b->err = st;
    snprintf(b->err_msg, sizeof b->err_msg, "%s", sym_last_error());
}

static uint64_t align_down(uint64_t v, uint64_t a) { return v / a * a; }
static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

sym_status sym_vkb_check_tensor(const sym_tensor *t, const char *op, const char *what,
                                sym_dtype type) {
    SYM_CHECK(t && t->buf && !t->data, SYM_ERR_ARG, "%s: %s is not a Vulkan tensor", op, what);
    SYM_CHECK(t->n_rows > 0 && t->n_cols > 0 && t->n_cols <= UINT32_MAX && t->n_rows <= UINT32_MAX,
              SYM_ERR_ARG, "%s: %s has a bad shape %lld x %lld", op, what, (long long)t->n_rows,
              (long long)t->n_cols);
    SYM_CHECK((unsigned)t->type < SYM_DT_COUNT, SYM_ERR_ARG, "%s: %s has a bad dtype", op, what);
    SYM_CHECK(type == SYM_DT_COUNT || t->type == type, SYM_ERR_ARG, "%s: %s is %s, need %s", op,
              what, sym_dtype_name(t->type), sym_dtype_name(type));
    const sym_vk_buffer *vb = t->buf;
    SYM_CHECK(t->offset % sym_dtype_size(t->type) == 0 &&
                  t->offset + sym_tensor_bytes(t) <= vb->size,
              SYM_ERR_ARG, "%s: %s lies outside its buffer", op, what);
    return SYM_OK;
}

uint64_t sym_vkb_rows_per_binding(const sym_vkb *b, uint64_t row_bytes) {
    uint64_t usable = b->max_range - b->align - 16; /* slack for alignment of the window */
    return row_bytes ? usable / row_bytes : 0;
}

sym_status sym_vkb_bind(sym_vkb *b, const sym_tensor *t, uint64_t byte_lo, uint64_t byte_hi,
                        int write, sym_vk_arg *arg, uint32_t *elem_off) {
    const sym_vk_buffer *vb = t->buf;
    uint64_t lo = t->offset + byte_lo, hi = t->offset + byte_hi;
    SYM_ASSERT(lo <= hi && hi <= vb->size);
    uint64_t win = align_down(lo, b->align);
    uint64_t end = align_up(hi, 16);
    if (end > vb->size) end = vb->size;
    SYM_CHECK(end - win <= b->max_range, SYM_ERR_UNSUPPORTED,
              "vulkan: %llu bytes must be bound at once, more than the %llu the device allows "
              "(maxStorageBufferRange)",
              (unsigned long long)(end - win), (unsigned long long)b->max_range);
    *arg = (sym_vk_arg){.buf = vb,
                        .offset = win,
                        .range = end - win,
                        .lo = align_down(lo, 4),
                        .hi = align_up(hi, 4),
                        .write = write};
    uint64_t eo = (lo - win) / sym_dtype_size(t->type);
    SYM_ASSERT(eo <= UINT32_MAX);
    *elem_off = (uint32_t)eo;
    return SYM_OK;
}

sym_vk_arg sym_vkb_dummy_arg(sym_vkb *b) {
    return (sym_vk_arg){.buf = b->dummy, .offset = 0, .range = b->dummy->size};
}

sym_status sym_vkb_stage_rope_freq(sym_vkb *b, float theta, uint64_t head_dim, sym_vk_arg *arg) {
    float freq[2048];
    SYM_ASSERT(head_dim / 2 <= sizeof freq / sizeof freq[0]);
    for (uint64_t i = 0; i < head_dim / 2; i++)
        freq[i] = powf(theta, -2.0f * (float)i / (float)head_dim);
    return sym_vk_cmd_stage(b->cmd, freq, head_dim / 2 * 4, arg);
}

sym_status sym_vkb_scratch(sym_vkb *b, uint64_t bytes, sym_vk_buffer **out) {
    if (!b->scratch || b->scratch->size < bytes) {
        uint64_t want = bytes;
        if (b->scratch && want < 2 * b->scratch->size) want = 2 * b->scratch->size;
        if (want > b->dev->caps.max_memory_allocation_size &&
            bytes <= b->dev->caps.max_memory_allocation_size)
            want = bytes;
        sym_vk_buffer *nb;
        SYM_TRY(sym_vk_buffer_create(b->dev, want, SYM_VK_MEM_DEVICE, &nb));
        sym_vk_cmd_release(b->cmd, b->scratch);
        b->scratch = nb;
    }
    *out = b->scratch;
    return SYM_OK;
}

sym_vk_spec sym_vkb_spec(const sym_vkb *b, uint32_t wg, sym_dtype dtype) {
    sym_vk_spec s;
    memset(&s, 0, sizeof s);
    s.v[0] = wg;
    s.v[1] = (uint32_t)b->use_sg;
    s.v[2] = (uint32_t)b->fp16;
    s.v[3] = (uint32_t)dtype;
    return s;
}

sym_vk_spec sym_vkb_mv_spec(const sym_vkb *b, sym_dtype dtype, uint32_t *n_groups) {
    sym_vk_spec s = sym_vkb_spec(b, b->mv_wg, dtype);
    s.v[8] = b->dev->caps.subgroup_size;
    s.v[9] = b->mv_ks;
    *n_groups = b->mv_wg / b->dev->caps.subgroup_size / b->mv_ks;
    return s;
}

void sym_vkb_grid(uint64_t n, uint32_t *gx, uint32_t *gy) {
    if (n <= 65535) {
        *gx = (uint32_t)n;
        *gy = 1;
    } else {
        *gx = 65535;
        *gy = (uint32_t)((n + 65534) / 65535);
    }
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void sym_vkb_poll_shaders(sym_vkb *b) {
    if (!sym_vk_cmd_idle(b->cmd)) return;
    int64_t now = mono_ns();
    if (b->poll_ns > 0 && now - b->last_poll_ns < b->poll_ns) return;
    b->last_poll_ns = now;
    b->n_reloads += (uint64_t)sym_vk_pipelines_reload(b->pipes);
}

static sym_status get_pipe(sym_vkb *b, sym_vk_kernel k, sym_vk_variant var, const sym_vk_spec *spec,
                           const sym_vk_pipeline **out) {
    return sym_vk_pipeline_get(b->pipes, k, var, spec, out);
}

/* ---- memory --------------------------------------------------------------------------------- */

static sym_status tensor_size(sym_dtype type, int64_t n_cols, int64_t n_rows, size_t *bytes) {
    SYM_CHECK((unsigned)type < SYM_DT_COUNT, SYM_ERR_ARG, "alloc: bad dtype %d", (int)type);
    SYM_CHECK(n_cols > 0 && n_rows > 0 && n_cols <= UINT32_MAX && n_rows <= UINT32_MAX, SYM_ERR_ARG,
              "alloc: bad shape %lld x %lld", (long long)n_rows, (long long)n_cols);
    SYM_CHECK(sym_mul_ok((size_t)n_cols, (size_t)n_rows, bytes) &&
                  sym_mul_ok(*bytes, sym_dtype_size(type), bytes),
              SYM_ERR_ARG, "alloc: size overflows");
    return SYM_OK;
}

static sym_status vk_alloc(sym_backend *bb, sym_tensor *t, sym_dtype type, int64_t n_cols,
                           int64_t n_rows) {
    sym_vkb *b = sym_vkb_of(bb);
    size_t bytes = 0;
    memset(t, 0, sizeof *t);
    sym_vkb_begin_op(b);
    SYM_TRY(tensor_size(type, n_cols, n_rows, &bytes));
    sym_vk_buffer *vb;
    SYM_TRY(sym_vk_buffer_create(b->dev, bytes, SYM_VK_MEM_DEVICE, &vb));
    sym_status st = sym_vk_cmd_zero(b->cmd, vb);
    if (st != SYM_OK) {
        sym_vk_cmd_release(b->cmd, vb);
        return st;
    }
    *t = (sym_tensor){.type = type, .n_cols = n_cols, .n_rows = n_rows, .buf = vb};
    return SYM_OK;
}

/* Clears the buffer's flag when a finite bf16 value would overflow f16 (|v| > 65504; inf and
 * NaN convert to themselves). */
static void scan_bf16(sym_vk_buffer *vb, const void *src, size_t bytes) {
    if (!vb->bf16_fits_f16) return;
    const uint16_t *h = src;
    for (size_t i = 0; i < bytes / 2; i++) {
        uint16_t a = h[i] & 0x7fffu;
        if (a > 0x477fu && a < 0x7f80u) { /* 0x477f = 65280; the next bf16 is past f16's max */
            vb->bf16_fits_f16 = 0;
            return;
        }
    }
}

static sym_status vk_write(sym_backend *bb, sym_tensor *t, const void *src, size_t bytes) {
    sym_vkb *b = sym_vkb_of(bb);
    sym_vkb_begin_op(b);
    SYM_TRY(sym_vkb_check_tensor(t, "write", "tensor", SYM_DT_COUNT));
    SYM_CHECK(bytes <= sym_tensor_bytes(t), SYM_ERR_ARG, "write: %zu bytes into a %zu-byte tensor",
              bytes, sym_tensor_bytes(t));
    if (t->type == SYM_DT_BF16) scan_bf16(t->buf, src, bytes);
    return sym_vk_cmd_upload(b->cmd, t->buf, t->offset, src, bytes);
}

static sym_status vk_load(sym_backend *bb, sym_tensor *t, const void *host, sym_dtype type,
                          int64_t n_cols, int64_t n_rows) {
    sym_vkb *b = sym_vkb_of(bb);
    size_t bytes = 0;
    memset(t, 0, sizeof *t);
    SYM_CHECK(host, SYM_ERR_ARG, "load: no data");
    SYM_TRY(tensor_size(type, n_cols, n_rows, &bytes));
    sym_vk_buffer *vb;
    SYM_TRY(sym_vk_buffer_create(b->dev, bytes, SYM_VK_MEM_DEVICE, &vb));
    sym_tensor nt = {.type = type, .n_cols = n_cols, .n_rows = n_rows, .buf = vb};
    sym_status st = vk_write(bb, &nt, host, bytes);
    if (st != SYM_OK) {
        sym_vk_cmd_release(b->cmd, vb);
        return st;
    }
    *t = nt;
    return SYM_OK;
}

static void vk_release(sym_backend *bb, sym_tensor *t) {
    if (t->buf) sym_vk_cmd_release(sym_vkb_of(bb)->cmd, t->buf);
    memset(t, 0, sizeof *t);
}

/* Returns and clears the latched error (after the batch ran). */
static sym_status take_latched(sym_vkb *b) {
    if (b->err == SYM_OK) return SYM_OK;
    sym_status st = SYM_FAIL(b->err, "%s", b->err_msg);
    b->err = SYM_OK;
    return st;
}

static sym_status vk_sync(sym_backend *bb) {
    sym_vkb *b = sym_vkb_of(bb);
    sym_status st = sym_vk_cmd_flush(b->cmd);
    if (st != SYM_OK) {
        b->err = SYM_OK;
        return st;
    }
    return take_latched(b);
}

static sym_status vk_read(sym_backend *bb, const sym_tensor *t, void *dst, size_t bytes) {
    sym_vkb *b = sym_vkb_of(bb);
    SYM_TRY(sym_vkb_check_tensor(t, "read", "tensor", SYM_DT_COUNT));
    SYM_CHECK(bytes <= sym_tensor_bytes(t), SYM_ERR_ARG, "read: %zu bytes from a %zu-byte tensor",
              bytes, sym_tensor_bytes(t));
    if (b->err != SYM_OK) SYM_TRY(vk_sync(bb)); /* returns the latched error */
    sym_status st = sym_vk_cmd_download(b->cmd, t->buf, t->offset, dst, bytes);
    if (st != SYM_OK) b->err = SYM_OK;
    return st != SYM_OK ? st : take_latched(b);
}

/* ---- row-wise and elementwise ops ---------------------------------------------------------- */

#define OP_BEGIN(bb)                                                                               \
    sym_vkb *b = sym_vkb_of(bb);                                                                   \
    sym_status st = SYM_OK;                                                                        \
    if (b->err != SYM_OK) return;                                                                  \
    sym_vkb_begin_op(b)
#define OP_TRY(expr)                                                                               \
    do {                                                                                           \
        st = (expr);                                                                               \
        if (st != SYM_OK) goto fail;                                                               \
    } while (0)
#define OP_CHECK(cond, status, ...)                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            st = SYM_FAIL((status), __VA_ARGS__);                                                  \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static sym_status rows_fit(sym_vkb *b, const char *op, uint64_t row_bytes, uint64_t *rows) {
    *rows = sym_vkb_rows_per_binding(b, row_bytes);
    SYM_CHECK(*rows > 0, SYM_ERR_UNSUPPORTED,
              "%s: a row of %llu bytes is more than one binding may cover (%llu)", op,
              (unsigned long long)row_bytes, (unsigned long long)b->max_range);
    return SYM_OK;
}

static void vk_embed(sym_backend *bb, sym_tensor *out, const sym_tensor *table, const int32_t *ids,
                     int n_tok) {
    OP_BEGIN(bb);
    OP_TRY(sym_vkb_check_tensor(table, "embed", "table", SYM_DT_COUNT));
    OP_TRY(sym_vkb_check_tensor(out, "embed", "out", SYM_DT_F32));
    OP_CHECK(n_tok > 0 && ids && out->n_rows >= n_tok && out->n_cols == table->n_cols, SYM_ERR_ARG,
             "embed: out is %lld x %lld for %d tokens of width %lld", (long long)out->n_rows,
             (long long)out->n_cols, n_tok, (long long)table->n_cols);
    for (int t = 0; t < n_tok; t++)
        OP_CHECK(ids[t] >= 0 && ids[t] < table->n_rows, SYM_ERR_RANGE,
                 "embed: token id %d outside the table's %lld rows", ids[t],
                 (long long)table->n_rows);
    uint64_t n_cols = (uint64_t)table->n_cols;
    uint64_t tab_rows, out_rows;
    OP_TRY(rows_fit(b, "embed", n_cols * sym_dtype_size(table->type), &tab_rows));
    OP_TRY(rows_fit(b, "embed", n_cols * 4, &out_rows));
    sym_vk_arg ids_arg;
    OP_TRY(sym_vk_cmd_stage(b->cmd, ids, (uint64_t)n_tok * 4, &ids_arg));
    const sym_vk_pipeline *p;
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, table->type);
    OP_TRY(get_pipe(b, SYM_VK_K_EMBED, SYM_VK_VAR_DEFAULT, &spec, &p));
    uint32_t gx = (uint32_t)((n_cols + b->wg - 1) / b->wg);
    for (uint64_t r0 = 0; r0 < (uint64_t)table->n_rows; r0 += tab_rows) {
        uint64_t r1 =
            r0 + tab_rows < (uint64_t)table->n_rows ? r0 + tab_rows : (uint64_t)table->n_rows;
        int used = 0; /* skip slices no token falls in */
        for (int t = 0; t < n_tok && !used; t++)
            used = (uint64_t)ids[t] >= r0 && (uint64_t)ids[t] < r1;
        if (!used) continue;
        for (uint64_t t0 = 0; t0 < (uint64_t)n_tok; t0 += out_rows) {
            uint64_t nt = (uint64_t)n_tok - t0 < out_rows ? (uint64_t)n_tok - t0 : out_rows;
            sym_vk_arg a[3];
            sym_vk_push_embed pc = {.n_cols = (uint32_t)n_cols,
                                    .n_tok = (uint32_t)nt,
                                    .row_lo = (uint32_t)r0,
                                    .row_hi = (uint32_t)r1,
                                    .ids_off = (uint32_t)t0};
            size_t es = sym_dtype_size(table->type);
            OP_TRY(sym_vkb_bind(b, table, r0 * n_cols * es, r1 * n_cols * es, 0, &a[0],
                                &pc.table_off));
            a[1] = ids_arg;
            OP_TRY(sym_vkb_bind(b, out, t0 * n_cols * 4, (t0 + nt) * n_cols * 4, 1, &a[2],
                                &pc.out_off));
            OP_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, gx, nt < 65535 ? (uint32_t)nt : 65535, 1,
                                       (double)nt * (double)n_cols * (double)(es + 4), 0));
        }
    }
    return;
fail:
    sym_vkb_latch(b, st);
}

static void vk_rmsnorm(sym_backend *bb, sym_tensor *out, const sym_tensor *x, const sym_tensor *w,
                       float eps) {
    OP_BEGIN(bb);
    OP_TRY(sym_vkb_check_tensor(x, "rmsnorm", "x", SYM_DT_F32));
    OP_TRY(sym_vkb_check_tensor(out, "rmsnorm", "out", SYM_DT_F32));
    if (w) OP_TRY(sym_vkb_check_tensor(w, "rmsnorm", "w", SYM_DT_COUNT));
    OP_CHECK(out->n_rows == x->n_rows && out->n_cols == x->n_cols && (!w || w->n_cols == x->n_cols),
             SYM_ERR_ARG, "rmsnorm: shapes disagree");
    uint64_t n = (uint64_t)x->n_cols, rows;
    OP_TRY(rows_fit(b, "rmsnorm", n * 4, &rows));
    const sym_vk_pipeline *p;
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, w ? w->type : SYM_DT_F32);
    OP_TRY(get_pipe(b, SYM_VK_K_RMSNORM, b->red_var, &spec, &p));
    for (uint64_t r0 = 0; r0 < (uint64_t)x->n_rows; r0 += rows) {
        uint64_t nr = (uint64_t)x->n_rows - r0 < rows ? (uint64_t)x->n_rows - r0 : rows;
        sym_vk_arg a[3];
        sym_vk_push_rmsnorm pc = {
            .n_cols = (uint32_t)n, .n_rows = (uint32_t)nr, .eps = eps, .unit_w = w == NULL};
        OP_TRY(sym_vkb_bind(b, x, r0 * n * 4, (r0 + nr) * n * 4, 0, &a[0], &pc.x_off));
        if (w)
            OP_TRY(sym_vkb_bind(b, w, 0, n * sym_dtype_size(w->type), 0, &a[1], &pc.w_off));
        else
            a[1] = sym_vkb_dummy_arg(b);
        OP_TRY(sym_vkb_bind(b, out, r0 * n * 4, (r0 + nr) * n * 4, 1, &a[2], &pc.out_off));
        uint32_t gx = nr < 65535 ? (uint32_t)nr : 65535; /* the shader loops over the rest */
        OP_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, gx, 1, 1, (double)nr * (double)n * 8, 0));
    }
    return;
fail:
    sym_vkb_latch(b, st);
}

static void vk_rope(sym_backend *bb, sym_tensor *x, int n_head, int head_dim, int pos0, float theta,
                    float freq_scale, int neox) {
    OP_BEGIN(bb);
    OP_TRY(sym_vkb_check_tensor(x, "rope", "x", SYM_DT_F32));
    OP_CHECK(n_head > 0 && head_dim > 0 && head_dim % 2 == 0 && head_dim <= 4096 && pos0 >= 0 &&
                 (int64_t)n_head * head_dim <= x->n_cols,
             SYM_ERR_ARG, "rope: %d heads of %d do not fit rows of %lld", n_head, head_dim,
             (long long)x->n_cols);
    int half = head_dim / 2;
    sym_vk_arg fa;
    OP_TRY(sym_vkb_stage_rope_freq(b, theta, (uint64_t)head_dim, &fa));
    uint64_t n = (uint64_t)x->n_cols, rows;
    OP_TRY(rows_fit(b, "rope", n * 4, &rows));
    const sym_vk_pipeline *p;
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, SYM_DT_F32);
    OP_TRY(get_pipe(b, SYM_VK_K_ROPE, SYM_VK_VAR_DEFAULT, &spec, &p));
    for (uint64_t r0 = 0; r0 < (uint64_t)x->n_rows; r0 += rows) {
        uint64_t nr = (uint64_t)x->n_rows - r0 < rows ? (uint64_t)x->n_rows - r0 : rows;
        sym_vk_arg a[2];
        sym_vk_push_rope pc = {.n_tok = (uint32_t)nr,
                               .n_head = (uint32_t)n_head,
                               .head_dim = (uint32_t)head_dim,
                               .row_stride = (uint32_t)n,
                               .pos0 = pos0 + (int32_t)r0,
                               .freq_scale = freq_scale,
                               .neox = neox ? 1u : 0u};
        OP_TRY(sym_vkb_bind(b, x, r0 * n * 4, (r0 + nr) * n * 4, 1, &a[0], &pc.x_off));
        a[1] = fa;
        uint64_t total = nr * (uint64_t)n_head * (uint64_t)half;
        uint32_t gx, gy;
        sym_vkb_grid((total + b->wg - 1) / b->wg, &gx, &gy);
        OP_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, gx, gy, 1, (double)total * 16, 0));
    }
    return;
fail:
    sym_vkb_latch(b, st);
}

static void vk_store_rows(sym_backend *bb, sym_tensor *cache, int64_t row0, const sym_tensor *src) {
    OP_BEGIN(bb);
    OP_TRY(sym_vkb_check_tensor(cache, "store_rows", "cache", SYM_DT_COUNT));
    OP_TRY(sym_vkb_check_tensor(src, "store_rows", "src", SYM_DT_F32));
    OP_CHECK(src->n_cols == cache->n_cols && row0 >= 0 && row0 + src->n_rows <= cache->n_rows,
             SYM_ERR_RANGE, "store_rows: rows [%lld, %lld) of width %lld into a %lld x %lld cache",
             (long long)row0, (long long)(row0 + src->n_rows), (long long)src->n_cols,
             (long long)cache->n_rows, (long long)cache->n_cols);
    uint64_t n = (uint64_t)src->n_cols, es = sym_dtype_size(cache->type), rows, rows2;
    OP_TRY(rows_fit(b, "store_rows", n * 4, &rows));
    OP_TRY(rows_fit(b, "store_rows", n * es, &rows2));
    if (rows2 < rows) rows = rows2;
    OP_CHECK(rows * n <= UINT32_MAX / 2, SYM_ERR_UNSUPPORTED, "store_rows: rows too wide");
    const sym_vk_pipeline *p;
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, cache->type);
    OP_TRY(get_pipe(b, SYM_VK_K_STORE_ROWS, SYM_VK_VAR_DEFAULT, &spec, &p));
    for (uint64_t r0 = 0; r0 < (uint64_t)src->n_rows; r0 += rows) {
        uint64_t nr = (uint64_t)src->n_rows - r0 < rows ? (uint64_t)src->n_rows - r0 : rows;
        uint64_t c0 = ((uint64_t)row0 + r0) * n;
        sym_vk_arg a[2];
        sym_vk_push_store pc = {.n_elems = (uint32_t)(nr * n)};
        OP_TRY(sym_vkb_bind(b, src, r0 * n * 4, (r0 + nr) * n * 4, 0, &a[0], &pc.src_off));
        OP_TRY(sym_vkb_bind(b, cache, c0 * es, (c0 + nr * n) * es, 1, &a[1], &pc.cache_off));
        uint64_t items = pc.n_elems;
        if (cache->type != SYM_DT_F32)
            items = ((pc.cache_off + pc.n_elems - 1) >> 1) - (pc.cache_off >> 1) + 1;
        uint32_t gx, gy;
        sym_vkb_grid((items + b->wg - 1) / b->wg, &gx, &gy);
        OP_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, gx, gy, 1, (double)nr * n * (4 + es), 0));
    }
    return;
fail:
    sym_vkb_latch(b, st);
}

static void binary(sym_backend *bb, sym_vk_kernel k, const char *op, sym_tensor *out,
                   const sym_tensor *x, const sym_tensor *y) {
    OP_BEGIN(bb);
    OP_TRY(sym_vkb_check_tensor(x, op, "input", SYM_DT_F32));
    OP_TRY(sym_vkb_check_tensor(y, op, "input", SYM_DT_F32));
    OP_TRY(sym_vkb_check_tensor(out, op, "out", SYM_DT_F32));
    OP_CHECK(x->n_rows == y->n_rows && x->n_cols == y->n_cols && out->n_rows == x->n_rows &&
                 out->n_cols == x->n_cols,
             SYM_ERR_ARG, "%s: shapes disagree", op);
    uint64_t n = (uint64_t)x->n_cols, rows;
    OP_TRY(rows_fit(b, op, n * 4, &rows));
    const sym_vk_pipeline *p;
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, SYM_DT_F32);
    OP_TRY(get_pipe(b, k, SYM_VK_VAR_DEFAULT, &spec, &p));
    for (uint64_t r0 = 0; r0 < (uint64_t)x->n_rows; r0 += rows) {
        uint64_t nr = (uint64_t)x->n_rows - r0 < rows ? (uint64_t)x->n_rows - r0 : rows;
        sym_vk_arg a[3];
        sym_vk_push_binary pc = {.n = (uint32_t)(nr * n)};
        OP_TRY(sym_vkb_bind(b, x, r0 * n * 4, (r0 + nr) * n * 4, 0, &a[0], &pc.a_off));
        OP_TRY(sym_vkb_bind(b, y, r0 * n * 4, (r0 + nr) * n * 4, 0, &a[1], &pc.b_off));
        OP_TRY(sym_vkb_bind(b, out, r0 * n * 4, (r0 + nr) * n * 4, 1, &a[2], &pc.out_off));
        uint32_t gx, gy;
        sym_vkb_grid((nr * n + b->wg - 1) / b->wg, &gx, &gy);
        OP_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, gx, gy, 1, (double)nr * n * 12, 0));
    }
    return;
fail:
    sym_vkb_latch(b, st);
}

static void vk_silu_mul(sym_backend *bb, sym_tensor *out, const sym_tensor *gate,
                        const sym_tensor *up) {
    binary(bb, SYM_VK_K_SILU_MUL, "silu_mul", out, gate, up);
}

static void vk_add(sym_backend *bb, sym_tensor *out, const sym_tensor *a, const sym_tensor *c) {
    binary(bb, SYM_VK_K_ADD, "add", out, a, c);
}

static void vk_set_cols(sym_backend *bb, sym_tensor *out, int64_t col0, const sym_tensor *src,
                        int accumulate) {
    OP_BEGIN(bb);
    OP_TRY(sym_vkb_check_tensor(src, "set_cols", "src", SYM_DT_F32));
    OP_TRY(sym_vkb_check_tensor(out, "set_cols", "out", SYM_DT_F32));
    OP_CHECK(src->n_rows == out->n_rows && col0 >= 0 && col0 + src->n_cols <= out->n_cols,
             SYM_ERR_ARG, "set_cols: %lld x %lld at column %lld of %lld x %lld",
             (long long)src->n_rows, (long long)src->n_cols, (long long)col0,
             (long long)out->n_rows, (long long)out->n_cols);
    uint64_t w = (uint64_t)src->n_cols, oc = (uint64_t)out->n_cols, rows;
    OP_TRY(rows_fit(b, "set_cols", oc * 4, &rows));
    const sym_vk_pipeline *p;
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, SYM_DT_F32);
    OP_TRY(get_pipe(b, SYM_VK_K_SET_COLS, SYM_VK_VAR_DEFAULT, &spec, &p));
    for (uint64_t r0 = 0; r0 < (uint64_t)src->n_rows; r0 += rows) {
        uint64_t nr = (uint64_t)src->n_rows - r0 < rows ? (uint64_t)src->n_rows - r0 : rows;
        sym_vk_arg a[2];
        sym_vk_push_set_cols pc = {.w = (uint32_t)w, .n_rows = (uint32_t)nr,
                                   .out_cols = (uint32_t)oc, .accumulate = accumulate != 0};
        OP_TRY(sym_vkb_bind(b, src, r0 * w * 4, (r0 + nr) * w * 4, 0, &a[0], &pc.src_off));
        uint64_t lo = (r0 * oc + (uint64_t)col0) * 4, hi = ((r0 + nr - 1) * oc + col0 + w) * 4;
        OP_TRY(sym_vkb_bind(b, out, lo, hi, 1, &a[1], &pc.out_off));
        uint32_t gx, gy;
        sym_vkb_grid((nr * w + b->wg - 1) / b->wg, &gx, &gy);
        OP_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, gx, gy, 1,
                                   (double)nr * w * (accumulate ? 12 : 8), 0));
    }
    return;
fail:
    sym_vkb_latch(b, st);
}

/* Entries [i0, i1) go in one dispatch when a's rows and out's rows rows[i0] .. rows[i1 - 1] each
 * fit one binding; rows and scales are staged once for the whole call. */
static void vk_add_rows_scaled(sym_backend *bb, sym_tensor *out, const sym_tensor *a,
                               const int32_t *rows, const float *scales) {
    OP_BEGIN(bb);
    OP_TRY(sym_vkb_check_tensor(a, "add_rows_scaled", "a", SYM_DT_F32));
    OP_TRY(sym_vkb_check_tensor(out, "add_rows_scaled", "out", SYM_DT_F32));
    OP_CHECK(a->n_cols == out->n_cols && a->n_rows <= out->n_rows, SYM_ERR_ARG,
             "add_rows_scaled: (%lld x %lld) into (%lld x %lld)", (long long)a->n_rows,
             (long long)a->n_cols, (long long)out->n_rows, (long long)out->n_cols);
    uint64_t n = (uint64_t)a->n_rows, n_cols = (uint64_t)a->n_cols, fit;
    for (uint64_t i = 0; i < n; i++)
        OP_CHECK(rows[i] >= 0 && rows[i] < out->n_rows && (i == 0 || rows[i] > rows[i - 1]),
                 SYM_ERR_ARG,
                 "add_rows_scaled: row %d (entry %llu) is out of range (%lld rows) "
                 "or not increasing",
                 rows[i], (unsigned long long)i, (long long)out->n_rows);
    OP_TRY(rows_fit(b, "add_rows_scaled", n_cols * 4, &fit));
    sym_vk_arg rows_arg, scales_arg;
    OP_TRY(sym_vk_cmd_stage(b->cmd, rows, n * 4, &rows_arg));
    OP_TRY(sym_vk_cmd_stage(b->cmd, scales, n * 4, &scales_arg));
    const sym_vk_pipeline *p;
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, SYM_DT_F32);
    OP_TRY(get_pipe(b, SYM_VK_K_ADD_ROWS_SCALED, SYM_VK_VAR_DEFAULT, &spec, &p));
    uint32_t gx = (uint32_t)((n_cols + b->wg - 1) / b->wg);
    for (uint64_t i0 = 0, i1; i0 < n; i0 = i1) {
        uint64_t r0 = (uint64_t)rows[i0];
        for (i1 = i0 + 1; i1 < n && i1 - i0 < fit && (uint64_t)rows[i1] - r0 < fit; i1++) {
        }
        uint64_t nr = i1 - i0, r1 = (uint64_t)rows[i1 - 1] + 1;
        sym_vk_arg arg[4];
        sym_vk_push_add_rows pc = {.n_cols = (uint32_t)n_cols,
                                   .n = (uint32_t)nr,
                                   .idx_off = (uint32_t)i0,
                                   .row0 = (uint32_t)r0};
        OP_TRY(sym_vkb_bind(b, a, i0 * n_cols * 4, i1 * n_cols * 4, 0, &arg[0], &pc.a_off));
        arg[1] = rows_arg;
        arg[2] = scales_arg;
        OP_TRY(sym_vkb_bind(b, out, r0 * n_cols * 4, r1 * n_cols * 4, 1, &arg[3], &pc.out_off));
        OP_TRY(sym_vk_cmd_dispatch(b->cmd, p, arg, &pc, gx, nr < 65535 ? (uint32_t)nr : 65535, 1,
                                   (double)nr * (double)n_cols * 12, (double)nr * n_cols * 2));
    }
    return;
fail:
    sym_vkb_latch(b, st);
}

/* One pass of scale_cols over w's row windows (apply 0: only the overflow flag). */
static sym_status scale_pass(sym_vkb *b, sym_tensor *w, const sym_tensor *g, int apply) {
    uint64_t n_cols = (uint64_t)w->n_cols, es = sym_dtype_size(w->type), fit;
    SYM_TRY(rows_fit(b, "scale_cols", n_cols * es, &fit));
    const sym_vk_pipeline *p;
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, w->type);
    spec.v[4] = (uint32_t)g->type;
    SYM_TRY(get_pipe(b, SYM_VK_K_SCALE_COLS, SYM_VK_VAR_DEFAULT, &spec, &p));
    uint64_t words = w->type == SYM_DT_F32 ? n_cols : n_cols / 2;
    uint32_t gx = (uint32_t)((words + b->wg - 1) / b->wg);
    for (uint64_t r0 = 0; r0 < (uint64_t)w->n_rows; r0 += fit) {
        uint64_t nr = (uint64_t)w->n_rows - r0 < fit ? (uint64_t)w->n_rows - r0 : fit;
        sym_vk_arg a[3];
        sym_vk_push_scale_cols pc = {
            .n_cols = (uint32_t)n_cols, .n_rows = (uint32_t)nr, .apply = apply != 0};
        SYM_TRY(sym_vkb_bind(b, w, r0 * n_cols * es, (r0 + nr) * n_cols * es, apply, &a[0],
                             &pc.w_off));
        SYM_TRY(sym_vkb_bind(b, g, 0, n_cols * sym_dtype_size(g->type), 0, &a[1], &pc.g_off));
        SYM_CHECK(w->type == SYM_DT_F32 || pc.w_off % 2 == 0, SYM_ERR_INTERNAL,
                  "scale_cols: f16 window at an odd element");
        a[2] = (sym_vk_arg){.buf = b->flag, .offset = 0, .range = b->flag->size, .lo = 0,
                            .hi = 4, .write = 1};
        SYM_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, gx, nr < 65535 ? (uint32_t)nr : 65535, 1,
                                    (double)nr * (double)n_cols * (double)es * (1 + apply),
                                    (double)nr * (double)n_cols));
    }
    return SYM_OK;
}

/* w[r][i] = round(w[r][i] * g[i]): a checking pass, the flag read back, then (apply) the
 * scaling pass. An invocation per 32-bit word of w. */
static sym_status vk_scale_cols(sym_backend *bb, sym_tensor *w, const sym_tensor *g, int apply) {
    sym_vkb *b = sym_vkb_of(bb);
    if (b->err != SYM_OK) return b->err;
    sym_vkb_begin_op(b);
    SYM_TRY(sym_vkb_check_tensor(w, "scale_cols", "w", SYM_DT_COUNT));
    SYM_TRY(sym_vkb_check_tensor(g, "scale_cols", "g", SYM_DT_COUNT));
    SYM_CHECK(g->n_cols * g->n_rows == w->n_cols, SYM_ERR_ARG,
              "scale_cols: g of %lld for rows of %lld", (long long)(g->n_cols * g->n_rows),
              (long long)w->n_cols);
    SYM_CHECK(w->type == SYM_DT_F32 || (w->type == SYM_DT_F16 && w->n_cols % 2 == 0),
              SYM_ERR_UNSUPPORTED,
              "scale_cols: %s weights of %lld columns (f32, or f16 rows of an even length)",
              sym_dtype_name(w->type), (long long)w->n_cols);
    SYM_TRY(sym_vk_cmd_zero(b->cmd, b->flag));
    SYM_TRY(scale_pass(b, w, g, 0));
    uint32_t flag = 0;
    SYM_TRY(sym_vk_cmd_download(b->cmd, b->flag, 0, &flag, sizeof flag));
    SYM_CHECK(!flag, SYM_ERR_RANGE,
              "scale_cols: a %lld x %lld %s weight times its norm overflows %s (left as it is)",
              (long long)w->n_rows, (long long)w->n_cols, sym_dtype_name(w->type),
              sym_dtype_name(w->type));
    if (apply) SYM_TRY(scale_pass(b, w, g, 1));
    return SYM_OK;
}

/* softmax (out NULL: in place on x) and argmax (out: (n_rows, 1) f32). */
static void row_op(sym_backend *bb, sym_vk_kernel k, const char *op, sym_tensor *x,
                   sym_tensor *out) {
    OP_BEGIN(bb);
    OP_TRY(sym_vkb_check_tensor(x, op, "x", SYM_DT_F32));
    if (out) {
        OP_TRY(sym_vkb_check_tensor(out, op, "out", SYM_DT_F32));
        OP_CHECK(out->n_rows == x->n_rows && out->n_cols == 1, SYM_ERR_ARG,
                 "%s: out must be (%lld, 1)", op, (long long)x->n_rows);
    }
    uint64_t n = (uint64_t)x->n_cols, rows;
    OP_TRY(rows_fit(b, op, n * 4, &rows));
    const sym_vk_pipeline *p;
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, SYM_DT_F32);
    OP_TRY(get_pipe(b, k, k == SYM_VK_K_SOFTMAX ? b->red_var : SYM_VK_VAR_DEFAULT, &spec, &p));
    for (uint64_t r0 = 0; r0 < (uint64_t)x->n_rows; r0 += rows) {
        uint64_t nr = (uint64_t)x->n_rows - r0 < rows ? (uint64_t)x->n_rows - r0 : rows;
        sym_vk_arg a[2];
        sym_vk_push_rows pc = {.n_cols = (uint32_t)n, .n_rows = (uint32_t)nr};
        OP_TRY(sym_vkb_bind(b, x, r0 * n * 4, (r0 + nr) * n * 4, !out, &a[0], &pc.x_off));
        if (out) OP_TRY(sym_vkb_bind(b, out, r0 * 4, (r0 + nr) * 4, 1, &a[1], &pc.out_off));
        uint32_t gx = nr < 65535 ? (uint32_t)nr : 65535; /* the shader loops over the rest */
        OP_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, gx, 1, 1, (double)nr * n * (out ? 4 : 8), 0));
    }
    return;
fail:
    sym_vkb_latch(b, st);
}

static void vk_softmax(sym_backend *bb, sym_tensor *x) {
    row_op(bb, SYM_VK_K_SOFTMAX, "softmax", x, NULL);
}

static void vk_argmax(sym_backend *bb, sym_tensor *out, const sym_tensor *x) {
    row_op(bb, SYM_VK_K_ARGMAX, "argmax", (sym_tensor *)x, out);
}

/* topk (shaders/topk.comp): one dispatch; each workgroup keeps the best k of SN - k values (one
 * sort), and the last to finish merges their G * k keys. */
#define TOPK_SN 2048 /* keys sorted at once in shared memory (16 KiB) */

static void vk_topk(sym_backend *bb, sym_tensor *out, const sym_tensor *x, int k) {
    OP_BEGIN(bb);
    OP_TRY(sym_vkb_check_tensor(x, "topk", "x", SYM_DT_F32));
    OP_TRY(sym_vkb_check_tensor(out, "topk", "out", SYM_DT_F32));
    OP_CHECK(k >= 1 && k <= SYM_TOPK_MAX && x->n_rows == 1 && out->n_rows == 1 &&
                 out->n_cols == 2 * (int64_t)k && x->n_cols >= 1 && x->n_cols < (1 << 24),
             SYM_ERR_ARG, "topk: k %d of a (%lld, %lld) row into (%lld, %lld)", k,
             (long long)x->n_rows, (long long)x->n_cols, (long long)out->n_rows,
             (long long)out->n_cols);
    OP_CHECK(TOPK_SN * 8 + 64 <= b->dev->caps.max_shared_bytes, SYM_ERR_UNSUPPORTED,
             "topk: %s has %u bytes of shared memory, %d needed", b->dev->caps.name,
             b->dev->caps.max_shared_bytes, TOPK_SN * 8 + 64);
    uint64_t n = (uint64_t)x->n_cols, per = TOPK_SN - (uint64_t)k;
    uint64_t groups = (n + per - 1) / per;
    OP_CHECK(groups <= 65535, SYM_ERR_UNSUPPORTED, "topk: a row of %llu values",
             (unsigned long long)n);
    sym_vk_buffer *scr;
    uint64_t part_bytes = groups * (uint64_t)k * 8;
    OP_TRY(sym_vkb_scratch(b, part_bytes, &scr));
    sym_tensor part = {
        .type = SYM_DT_F32, .n_cols = 1, .n_rows = (int64_t)(part_bytes / 4), .buf = scr};
    sym_tensor cnt = {.type = SYM_DT_F32, .n_cols = 1, .n_rows = 1, .buf = b->counters};
    sym_vk_spec spec = sym_vkb_spec(b, b->wg, SYM_DT_F32);
    spec.v[4] = TOPK_SN;
    const sym_vk_pipeline *p;
    OP_TRY(get_pipe(b, SYM_VK_K_TOPK, SYM_VK_VAR_DEFAULT, &spec, &p));
    sym_vk_arg a[4];
    sym_vk_push_topk pc = {.n = (uint32_t)n, .k = (uint32_t)k, .per_group = (uint32_t)per};
    OP_TRY(sym_vkb_bind(b, x, 0, n * 4, 0, &a[0], &pc.x_off));
    OP_TRY(sym_vkb_bind(b, out, 0, (uint64_t)k * 8, 1, &a[1], &pc.out_off));
    OP_TRY(sym_vkb_bind(b, &part, 0, part_bytes, 1, &a[2], &pc.part_off));
    pc.part_off /= 2; /* in uvec2 */
    OP_TRY(sym_vkb_bind(b, &cnt, 0, 4, 1, &a[3], &pc.cnt_off));
    OP_TRY(sym_vk_cmd_dispatch(b->cmd, p, a, &pc, (uint32_t)groups, 1, 1, (double)n * 4, 0));
    return;
fail:
    sym_vkb_latch(b, st);
}

/* ---- creation ------------------------------------------------------------------------------- */

static uint64_t vk_fence(sym_backend *bb) {
    sym_vkb *b = sym_vkb_of(bb);
    sym_status st;
    uint64_t m = sym_vk_cmd_mark(b->cmd, &st);
    if (st != SYM_OK) sym_vkb_latch(b, st);
    return m;
}

static int vk_fence_done(sym_backend *bb, uint64_t ticket, int wait) {
    sym_vkb *b = sym_vkb_of(bb);
    if (!ticket) return 1;
    sym_status st;
    int done = sym_vk_cmd_mark_done(b->cmd, ticket, wait, &st);
    if (st != SYM_OK) sym_vkb_latch(b, st);
    return done;
}

static uint64_t vk_held_bytes(sym_backend *bb) {
    (void)bb;
    return sym_vk_buffer_device_bytes();
}

sym_status sym_vk_backend_xfer(sym_backend *bb, sym_vk_xfer **out) {
    sym_vkb *b = sym_vkb_of(bb);
    if (!b->xfer) {
        SYM_TRY(sym_vk_cmd_flush(b->cmd));
        SYM_TRY(sym_vk_xfer_create(b->dev, &b->xfer));
        sym_vk_cmd_set_wait(b->cmd, sym_vk_xfer_semaphore(b->xfer),
                            sym_vk_xfer_completed(b->xfer));
    }
    *out = b->xfer;
    return SYM_OK;
}

sym_status sym_vk_backend_upload(void *user, sym_backend *bb, sym_tensor *dst, const void *src,
                                 size_t bytes) {
    (void)user;
    sym_vkb *b = sym_vkb_of(bb);
    SYM_CHECK(b->xfer && dst->buf, SYM_ERR_ARG, "vulkan: upload without an upload queue");
    return sym_vk_xfer_upload(b->xfer, dst->buf, dst->offset, src, bytes);
}

uint64_t sym_vk_backend_scratch_bound(const sym_backend *bb, uint64_t n_batch, uint64_t max_k,
                                      uint64_t n_head, uint64_t head_dim) {
    (void)bb;
    /* the cooperative-matrix GEMM's split activations: 4 bytes per token and padded column
     * plus a scale per token (ops_matmul.c gemm_coop) */
    uint64_t k_pad = (max_k + 31) / 32 * 32;
    uint64_t gemm = 4 * n_batch * k_pad + 256 + 4 * n_batch;
    /* decode attention's partials (ops_attn.c): at most ~1024 chunks of up to 8 heads, plus one
     * per head and token */
    uint64_t attn = (8 * 1024 + 4 * n_head) * (head_dim + 2) * 4;
    uint64_t need = gemm > attn ? gemm : attn;
    return need + (64 << 10);
}

sym_status sym_vk_backend_reserve_scratch(sym_backend *bb, uint64_t bytes) {
    sym_vkb *b = sym_vkb_of(bb);
    if (b->scratch && b->scratch->size >= bytes) return SYM_OK;
    SYM_TRY(sym_vk_cmd_flush(b->cmd));
    sym_vk_buffer *nb;
    SYM_TRY(sym_vk_buffer_create(b->dev, bytes, SYM_VK_MEM_DEVICE, &nb));
    sym_vk_buffer_destroy(b->dev, b->scratch);
    b->scratch = nb;
    return SYM_OK;
}

const sym_vk_device *sym_vk_backend_device(const sym_backend *bb) {
    return ((const sym_vkb *)bb)->dev;
}

static void vk_destroy(sym_backend *bb) {
    if (!bb) return;
    sym_vkb *b = sym_vkb_of(bb);
    if (b->cmd) sym_vk_cmd_destroy(b->cmd); /* waits for the GPU */
    sym_vk_xfer_destroy(b->xfer);
    if (b->dev) {
        sym_vk_buffer_destroy(b->dev, b->scratch);
        sym_vk_buffer_destroy(b->dev, b->dummy);
        sym_vk_buffer_destroy(b->dev, b->flag);
        sym_vk_buffer_destroy(b->dev, b->counters);
    }
    sym_vk_pipelines_destroy(b->pipes);
    sym_vk_device_close(b->dev);
    sym_free(b);
}

static uint64_t vk_peak_bytes(sym_backend *b) {
    (void)b;
    return sym_vk_buffer_device_peak();
}

static const sym_backend_ops k_vk_ops = {
    .name = "vulkan",
    .destroy = vk_destroy,
    .alloc = vk_alloc,
    .load = vk_load,
    .release = vk_release,
    .write = vk_write,
    .read = vk_read,
    .sync = vk_sync,
    .embed = vk_embed,
    .rmsnorm = vk_rmsnorm,
    .matmul = sym_vkb_matmul,
    .rope = vk_rope,
    .store_rows = vk_store_rows,
    .attention = sym_vkb_attention,
    .silu_mul = vk_silu_mul,
    .add = vk_add,
    .softmax = vk_softmax,
    .argmax = vk_argmax,
    .topk = vk_topk,
    .set_cols = vk_set_cols,
    .fence = vk_fence,
    .fence_done = vk_fence_done,
    .held_bytes = vk_held_bytes,
    .peak_bytes = vk_peak_bytes,
    .attn_in = sym_vkb_attn_in,
    .matmul_add = sym_vkb_matmul_add,
    .ffn_in = sym_vkb_ffn_in,
    .norm_matmul = sym_vkb_norm_matmul,
    .add_rows_scaled = vk_add_rows_scaled,
    .scale_cols = vk_scale_cols,
};

int sym_vk_backend_is(const sym_backend *b) { return b && b->ops == &k_vk_ops; }

const sym_vk_caps *sym_vk_backend_caps(const sym_backend *b) {
    return &((const sym_vkb *)b)->dev->caps;
}

int sym_vk_backend_uses_coopmat(const sym_backend *b) { return ((const sym_vkb *)b)->coopmat; }

int sym_vk_backend_f32_gemm_act(const sym_backend *b) {
    return sym_vkb_gemm_lo((const sym_vkb *)b);
}

int sym_vk_backend_profile(const sym_backend *b, sym_vk_profile_entry *out, int cap) {
    return sym_vk_cmd_profile(((const sym_vkb *)b)->cmd, out, cap);
}

void sym_vk_backend_profile_reset(sym_backend *b) { sym_vk_cmd_profile_reset(sym_vkb_of(b)->cmd); }

sym_status sym_vk_backend_set_profiling(sym_backend *b, int on) {
    return sym_vk_cmd_set_profiling(sym_vkb_of(b)->cmd, on);
}

void sym_vk_backend_set_fence_spin(sym_backend *b, double us) {
    sym_vk_cmd_set_spin(sym_vkb_of(b)->cmd, us);
}

void sym_vk_backend_stats(const sym_backend *b, sym_vk_cmd_stats *out) {
    sym_vk_cmd_get_stats(((const sym_vkb *)b)->cmd, out);
}

uint64_t sym_vk_backend_shader_reloads(const sym_backend *b) {
    return ((const sym_vkb *)b)->n_reloads;
}

sym_status sym_vk_backend_create(const sym_vk_options *opts, sym_backend **out) {
    *out = NULL;
    sym_vk_options o;
    if (opts)
        o = *opts;
    else
        sym_vk_options_init(&o);
    SYM_CHECK(o.workgroup_size >= 0 && o.workgroup_size <= 1024, SYM_ERR_ARG,
              "vulkan: workgroup size %d is not in 1..1024", o.workgroup_size);
    SYM_CHECK(o.matvec_rows >= 0 && o.matvec_rows <= 8, SYM_ERR_ARG,
              "vulkan: matvec rows per workgroup %d is not in 1..8", o.matvec_rows);
    sym_status st = SYM_OK;
    sym_vkb *b = sym_calloc(1, sizeof *b);
    if (!b) return SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    b->base.ops = &k_vk_ops;
    b->o = o;
    sym_vk_device_request req;
    sym_vk_device_request_init(&req);
    req.index = o.device_index;
    req.name = o.device_name;
    req.force_integrated = o.force_integrated;
    req.enable_fp16 = o.use_fp16_math;
    req.enable_coopmat = o.use_coopmat;
    req.validation = o.validation;
    SYM_TRY_GOTO(sym_vk_device_open(&req, &b->dev));
    const sym_vk_caps *c = &b->dev->caps;

    /* Workgroup sizes: one given size applies to every kernel that takes it. Else (0) 256
     * threads for the row and elementwise kernels and decode attention, and 64 for decode's
     * matrix-vector products: in whole decoded tokens on an H100, 64 beat 256 by 8-19%,
     * although one large product alone streams best with 128 (docs/VULKAN.md); attention lost
     * with 64. */
    b->wg = o.workgroup_size ? (uint32_t)o.workgroup_size : 256;
    if (b->wg > c->max_workgroup_invocations || b->wg > c->max_workgroup_size[0])
        SYM_FAIL_GOTO(SYM_ERR_ARG, "vulkan: workgroup size %u exceeds the device's %u", b->wg,
                      c->max_workgroup_invocations);
    b->matvec_wg = o.workgroup_size ? b->wg : 64;
    b->nr = o.matvec_rows ? (uint32_t)o.matvec_rows : 1;
    {
        uint32_t sgs = c->subgroup_size ? c->subgroup_size : 1;
        b->mv_wg = b->matvec_wg / sgs * sgs;
        if (b->mv_wg < sgs) b->mv_wg = sgs;
        /* (SYM_VK_ATTN_WG, SYM_VK_ATTN_TARGET: decode attention's workgroup size and the
         * workgroups its chunks aim at, for measurements; docs/VULKAN.md) */
        const char *aw = getenv("SYM_VK_ATTN_WG"), *at = getenv("SYM_VK_ATTN_TARGET");
        b->attn_wg = (aw && *aw && !o.workgroup_size ? (uint32_t)atoi(aw) : b->wg) / sgs * sgs;
        if (b->attn_wg < sgs) b->attn_wg = sgs;
        b->attn_target = at && *at && atoi(at) > 0 ? (uint32_t)atoi(at) : 1024;
        b->mv_nr = o.matvec_rows ? (uint32_t)(o.matvec_rows < 4 ? o.matvec_rows : 4) : 1;
        /* default: the whole workgroup strides along each row (measured fastest on an H100) */
        b->mv_ks = o.mv_split > 0 ? (uint32_t)o.mv_split : b->mv_wg / sgs;
        while (b->mv_ks > 1 && (b->mv_wg / sgs) % b->mv_ks)
            b->mv_ks /= 2;
        const char *env = getenv("SYM_VK_PLAIN_MATVEC");
        b->plain_matvec = o.plain_matvec ? o.plain_matvec > 0 : (env && *env ? atoi(env) > 0 : 1);
        env = getenv("SYM_VK_NO_FUSED");
        b->no_fused = o.no_fused || (env && atoi(env) > 0);
        env = getenv("SYM_VK_NORM_FUSE_MAX_MB");
        b->norm_fuse_max = o.norm_fuse_max_bytes ? o.norm_fuse_max_bytes
                           : env && *env         ? (uint64_t)strtoull(env, NULL, 10) << 20
                                                 : 64ull << 20;
    }
    b->use_sg = o.use_subgroups && c->subgroup_arithmetic && c->subgroup_size >= 4 &&
                b->mv_wg <= c->max_workgroup_invocations &&
                b->attn_wg <= c->max_workgroup_invocations;
    b->red_var = c->subgroup_arithmetic ? SYM_VK_VAR_DEFAULT : SYM_VK_VAR_NOSG;
    if (o.use_fp16_math && !b->dev->fp16_enabled)
        SYM_FAIL_GOTO(SYM_ERR_UNSUPPORTED,
                      "vulkan: fp16 math asked of %s, which lacks "
                      "shaderFloat16",
                      c->name);
    b->fp16 = o.use_fp16_math && c->subgroup_arithmetic;
    b->f32_gemm_act = o.f32_gemm_act;
    {
        const char *env = getenv("SYM_VK_NO_RT_ATTN");
        b->no_rt_attn = env && atoi(env) > 0;
        env = getenv("SYM_VK_NO_TC_ATTN");
        b->no_tc_attn = env && atoi(env) > 0;
    }
    b->coopmat =
        b->dev->coopmat_enabled && c->subgroup_size == 32 && c->max_workgroup_invocations >= 128;
    /* default shapes, the fastest measured on an H100 (docs/VULKAN.md): with f16 activations 16
     * subgroups (4 x 4) of 32 x 32 (2 x 2 blocks), a 128 x 128 tile, 64 of K per step (146-176
     * TFLOP/s on a 7B's products, 20% more than 8 subgroups of 64 x 32); with f32 ones, whose
     * lo tile also takes shared memory, the same with 48 of K per step (51-60 TFLOP/s counting
     * one product, against 41-51 for 8 subgroups of 32 x 64). Where a workgroup cannot have 512
     * invocations: 8 subgroups, 128 x 128 / 64 of K and 64 x 256 / 32 of K. */
    static const uint32_t k_coop_default[4][4] = {{2, 2, 1, 8}, {2, 2, 1, 6}, {4, 2, 1, 8},
                                                  {2, 4, 1, 4}},
                          k_warps_default[4][2] = {{4, 4}, {4, 4}, {2, 4}, {2, 4}};
    int coop_lo = sym_vkb_gemm_lo(b);
    int coop_def = (c->max_workgroup_invocations >= 512 ? 0 : 2) + coop_lo;
    {
        /* $SYM_VK_COOP_TILE "SM SN PAD BK8 WM WN": a tile for measurements, as the options */
        const char *env = getenv("SYM_VK_COOP_TILE");
        int t[6];
        if (!o.coop_tile[0] && env && *env &&
            sscanf(env, "%d %d %d %d %d %d", &t[0], &t[1], &t[2], &t[3], &t[4], &t[5]) == 6) {
            memcpy(o.coop_tile, t, sizeof o.coop_tile);
            memcpy(o.coop_warps, t + 4, sizeof o.coop_warps);
        }
    }
    for (int i = 0; i < 4; i++)
        b->coop_tile[i] = o.coop_tile[0] ? (uint32_t)o.coop_tile[i] : k_coop_default[coop_def][i];
    for (int i = 0; i < 2; i++)
        b->coop_warps[i] =
            o.coop_warps[0] ? (uint32_t)o.coop_warps[i] : k_warps_default[coop_def][i];
    {
        /* a tile the caller chose stays; else grids of fewer workgroups than 3/4 of the
         * multiprocessors (where the device says how many) take smaller tiles (coop_shape). On
         * an H100 (132): a 1.1B prefill's 64-workgroup products gain 16% with 64 x 64 tiles,
         * while a 7B's 128-workgroup products lose 17% with 64 x 128 (docs/VULKAN.md). */
        const char *env = getenv("SYM_VK_COOP_MIN_GROUPS");
        b->coop_min_groups = o.coop_tile[0] || o.coop_warps[0] ? 0
                             : env && *env                      ? (uint32_t)atoi(env)
                                                                : c->sm_count * 3 / 4;
    }
    {
        uint32_t sm = b->coop_tile[0], sn = b->coop_tile[1], pad = b->coop_tile[2],
                 bk8 = b->coop_tile[3], wm = b->coop_warps[0], wn = b->coop_warps[1];
        if (sm < 1 || sm > 4 || sn < 1 || sn > 4 || pad > 2 || bk8 < 2 || bk8 > 16 || bk8 % 2 ||
            wm < 1 || wn < 1 || wm * wn > 16)
            SYM_FAIL_GOTO(SYM_ERR_ARG, "vulkan: bad cooperative-matrix tile %u %u %u %u / %u %u",
                          sm, sn, pad, bk8, wm, wn);
        uint32_t lo = (uint32_t)coop_lo; /* an Al tile too (matmul_coop's LO) */
        /* Ah (which also stages the results: 1 KiB per subgroup), Al, Bt */
        uint32_t ah = 16 * sm * wm * (bk8 + pad) * 16;
        if (ah < wm * wn * 1024) ah = wm * wn * 1024;
        uint32_t shared = ah + (lo * 16 * sm * wm + 16 * sn * wn) * (bk8 + pad) * 16;
        if (b->coopmat &&
            (shared > c->max_shared_bytes || 32 * wm * wn > c->max_workgroup_invocations)) {
            SYM_WARN("vulkan: cooperative-matrix tile needs %u bytes of shared memory and %u "
                     "threads; not used",
                     shared, 32 * wm * wn);
            b->coopmat = 0;
        }
    }
    b->align =
        c->min_storage_buffer_offset_alignment < 16 ? 16 : c->min_storage_buffer_offset_alignment;
    b->max_range = c->max_storage_buffer_range;
    if (o.max_binding_bytes && o.max_binding_bytes < b->max_range)
        b->max_range = o.max_binding_bytes;
    if (b->max_range < 4 * b->align + 64)
        SYM_FAIL_GOTO(SYM_ERR_ARG, "vulkan: binding limit of %llu bytes is too small",
                      (unsigned long long)b->max_range);
    int push = b->dev->push_descriptor_enabled && !o.force_descriptor_pool;
    SYM_TRY_GOTO(sym_vk_pipelines_create(b->dev, push, o.pipeline_cache_dir, &b->pipes));
    if (o.shader_dir && *o.shader_dir) {
        SYM_TRY_GOTO(sym_vk_pipelines_use_shader_dir(b->pipes, o.shader_dir));
        b->hot = 1;
        b->poll_ns = o.shader_poll_ms < 0    ? 0
                     : o.shader_poll_ms == 0 ? 500000000
                                             : (int64_t)o.shader_poll_ms * 1000000;
        b->last_poll_ns = mono_ns();
        SYM_INFO("vulkan: kernels compiled at run time from %s, rebuilt when their sources "
                 "change",
                 o.shader_dir);
    }
    b->o.shader_dir = NULL; /* borrowed from the caller; the pipelines keep a copy */
    int every = o.submit_every;
    if (every == 0) {
        const char *env = getenv("SYM_VK_SUBMIT_EVERY");
        every = env && *env ? atoi(env) : 32;
    }
    sym_vk_cmd_options co = {.staging_bytes = o.staging_bytes,
                             .push_descriptors = push,
                             .profiling = o.profiling,
                             .submit_every = every > 0 ? every : 0};
    SYM_TRY_GOTO(sym_vk_cmd_create(b->dev, &co, &b->cmd));
    SYM_TRY_GOTO(sym_vk_buffer_create(b->dev, 64, SYM_VK_MEM_DEVICE, &b->dummy));
    SYM_TRY_GOTO(sym_vk_buffer_create(b->dev, 64, SYM_VK_MEM_DEVICE, &b->flag));
    SYM_TRY_GOTO(sym_vk_buffer_create(b->dev, 64 << 10, SYM_VK_MEM_DEVICE, &b->counters));
    SYM_TRY_GOTO(sym_vk_cmd_zero(b->cmd, b->counters));
    SYM_INFO("vulkan: backend on %s: workgroup %u, matvec rows %u, subgroups %s, fp16 math %s, "
             "cooperative matrix %s, binding limit %llu",
             c->name, b->wg, b->nr, b->use_sg ? "on" : "off", b->fp16 ? "on" : "off",
             b->coopmat ? "on" : "off", (unsigned long long)b->max_range);
    *out = &b->base;
    return SYM_OK;
fail:
    vk_destroy(&b->base);
    return st;
}
