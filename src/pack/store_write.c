/* store_write.c — writing a pack store (layout: store.c). Packs are built from the model's
 * mapped weights, compressed in batches on a thread pool (one pack per task), checked by
 * decompressing again, and written in id order; the tables and the header go last, then the
 * temporary file is fsynced and renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/threadpool.h"
#include "model/json.h"
#include "pack/store.h"
#include "pack/store_format.h"

#define SAMPLE_SLICES 4
#define SAMPLE_SLICE_BYTES (256u << 10)
#define TOKENIZER_MAX_BYTES (512u << 20)
#define MAX_CANDIDATES 6

void sym_store_write_options_init(sym_store_write_options *o) {
    memset(o, 0, sizeof *o);
    o->auto_codec = true;
    o->codec = sym_codec_default(SYM_CODEC_ZSTD);
    o->max_pack_bytes = (uint64_t)SYM_PACK_DEFAULT_MB << 20;
    o->cut = SYM_PACK_CUT_BUDDY;
    o->min_saving = 0.05;
    o->disk_bytes_per_s = 2e9;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* ---- per-pack work (worker threads) ------------------------------------------------------------ */

typedef struct slot {
    uint32_t pack_id;
    uint8_t *raw, *out, *check; /* each the largest pack's buffer */
    const uint8_t *stored;      /* raw or out */
    sym_store_pack sp;
    bool not_applicable, not_smaller;
    sym_status st;
    char err[512];
} slot;

typedef struct per_thread {
    sym_codec_ctx *ctx;
    uint8_t *sample; /* 3 x sample bytes: sample, stream, decoded */
} per_thread;

typedef struct writer {
    const sym_model *m;
    sym_pack_plan *plan;
    const sym_store_write_options *o;
    int n_threads;
    per_thread *threads;
    slot *slots;
    uint32_t batch0;
    uint64_t sample_cap;
} writer;

/* The pack's buffer: pieces at their offsets, zeros between ranges. */
static void fill_raw(const writer *w, uint32_t id, uint8_t *raw) {
    const sym_pack *k = &w->plan->packs[id];
    const sym_pack_range *rg = sym_pack_ranges(w->plan, k);
    uint64_t end = 0;
    for (uint32_t r = 0; r < k->n_ranges; r++) {
        memset(raw + end, 0, (size_t)(rg[r].pack_offset - end));
        end = rg[r].pack_offset + rg[r].n_bytes;
    }
    const sym_pack_piece *pc = sym_pack_pieces(w->plan, k);
    for (uint32_t j = 0; j < k->n_pieces; j++) {
        const sym_weight *wt = sym_model_weight_at(w->m, pc[j].weight_idx);
        const sym_pack_weight *pw = &w->plan->weights[pc[j].weight_idx];
        memcpy(raw + pc[j].pack_offset,
               (const uint8_t *)wt->data + (uint64_t)pc[j].row0 * pw->row_bytes,
               (size_t)pc[j].n_bytes);
    }
}

/* The element size of the dtype holding most of the pack's bytes. */
static uint32_t elem_size_of(const writer *w, uint32_t id) {
    const sym_pack *k = &w->plan->packs[id];
    const sym_pack_piece *pc = sym_pack_pieces(w->plan, k);
    uint64_t by[SYM_DT_COUNT] = {0};
    for (uint32_t j = 0; j < k->n_pieces; j++) by[w->plan->weights[pc[j].weight_idx].type] +=
        pc[j].n_bytes;
    int best = 0;
    for (int t = 1; t < SYM_DT_COUNT; t++)
        if (by[t] > by[best]) best = t;
    return (uint32_t)sym_dtype_size((sym_dtype)best);
}

static int candidates(const writer *w, uint32_t es, sym_codec *c) {
    int n = 0, level = w->o->codec.level > 0 ? w->o->codec.level : SYM_CODEC_ZSTD_DEFAULT_LEVEL;
    c[n++] = (sym_codec){SYM_CODEC_BYTESPLIT, level, 0, 0};
    c[n++] = (sym_codec){SYM_CODEC_ZSTD, level, 0, 0};
    if (sym_codec_available(SYM_CODEC_BLOSC)) {
        c[n++] = (sym_codec){SYM_CODEC_BLOSC, 5, SYM_BLOSC_BYTE, SYM_BLOSC_ZSTD};
        c[n++] = (sym_codec){SYM_CODEC_BLOSC, 5, SYM_BLOSC_BIT, SYM_BLOSC_LZ4};
    }
    if (es == 4 && sym_codec_available(SYM_CODEC_ZFP)) c[n++] = sym_codec_default(SYM_CODEC_ZFP);
    return n;
}

/* auto: measures every candidate on a sample of the pack (up to 4 slices of 256 KiB spread over
 * it) and returns the one that brings the pack in fastest, or none. */
static sym_status choose(writer *w, per_thread *t, const uint8_t *raw, uint64_t n, uint32_t es,
                         sym_codec *best) {
    uint8_t *sample = t->sample, *z = sample + w->sample_cap, *back = z + w->sample_cap;
    uint64_t sn = 0;
    if (n <= (uint64_t)SAMPLE_SLICES * SAMPLE_SLICE_BYTES) {
        memcpy(sample, raw, (size_t)n);
        sn = n;
    } else {
        for (int i = 0; i < SAMPLE_SLICES; i++) {
            uint64_t at = (n - SAMPLE_SLICE_BYTES) / (SAMPLE_SLICES - 1) * (uint64_t)i;
            at -= at % 256; /* element-aligned: ranges start at 256-byte offsets */
            memcpy(sample + sn, raw + at, SAMPLE_SLICE_BYTES);
            sn += SAMPLE_SLICE_BYTES;
        }
    }
    const sym_store_write_options *o = w->o;
    double disk = o->disk_bytes_per_s, best_cost = (double)sn / disk;
    size_t best_size = (size_t)sn;
    *best = sym_codec_default(SYM_CODEC_NONE);
    sym_codec c[MAX_CANDIDATES];
    int nc = candidates(w, es, c);
    for (int i = 0; i < nc; i++) {
        size_t zn;
        sym_status st = sym_codec_compress(t->ctx, &c[i], es, sample, (size_t)sn, z, (size_t)sn, &zn);
        if (st == SYM_ERR_RANGE) continue;
        SYM_TRY(st);
        if ((double)zn > (1.0 - o->min_saving) * (double)sn) continue;
        double t0 = now_s();
        SYM_TRY(sym_codec_decompress(t->ctx, &c[i], es, z, zn, back, (size_t)sn));
        double dt = now_s() - t0, rate = dt > 0 ? (double)sn / dt : 1e12;
        double read = (double)zn / disk, decode = (double)sn / (rate * w->n_threads);
        double cost = read > decode ? read : decode;
        if (cost < best_cost || (cost == best_cost && zn < best_size)) {
            best_cost = cost;
            best_size = zn;
            *best = c[i];
        }
    }
    return SYM_OK;
}

static sym_status encode(writer *w, per_thread *t, slot *s) {
    const sym_pack *k = &w->plan->packs[s->pack_id];
    uint64_t n = k->buffer_bytes;
    s->sp.elem_size = elem_size_of(w, s->pack_id);
    fill_raw(w, s->pack_id, s->raw);
    s->sp.raw_bytes = s->sp.stored_bytes = n;
    s->sp.raw_hash = s->sp.stored_hash = XXH3_64bits(s->raw, (size_t)n);
    s->stored = s->raw;
    sym_codec c = w->o->codec;
    uint64_t cap = n - 1;
    if (w->o->auto_codec) {
        SYM_TRY(choose(w, t, s->raw, n, s->sp.elem_size, &c));
        cap = (uint64_t)((1.0 - w->o->min_saving) * (double)n);
    } else if (sym_codec_check(&c, s->sp.elem_size) != SYM_OK) {
        s->not_applicable = true; /* zfp on a 16-bit pack */
        c = sym_codec_default(SYM_CODEC_NONE);
    }
    s->sp.codec = sym_codec_default(SYM_CODEC_NONE);
    if (c.id == SYM_CODEC_NONE || cap == 0) return SYM_OK;
    size_t zn;
    sym_status st = sym_codec_compress(t->ctx, &c, s->sp.elem_size, s->raw, (size_t)n, s->out,
                                       (size_t)cap, &zn);
    if (st == SYM_ERR_RANGE) {
        s->not_smaller = true;
        return SYM_OK;
    }
    SYM_TRY(st);
    /* lossless is checked, not assumed */
    char name[64], why[256] = "different bytes";
    st = sym_codec_decompress(t->ctx, &c, s->sp.elem_size, s->out, zn, s->check, (size_t)n);
    if (st != SYM_OK) snprintf(why, sizeof why, "%s", sym_last_error());
    if (st != SYM_OK || memcmp(s->check, s->raw, (size_t)n) != 0)
        return SYM_FAIL(SYM_ERR_INTERNAL, "pack: pack %u does not round-trip through %s (%s)",
                        s->pack_id, sym_codec_describe(&c, name, sizeof name), why);
    s->sp.codec = c;
    s->sp.stored_bytes = zn;
    s->sp.stored_hash = XXH3_64bits(s->out, zn);
    s->stored = s->out;
    return SYM_OK;
}

static void encode_task(void *ctx, int64_t task_idx, int thread_idx) {
    writer *w = ctx;
    slot *s = &w->slots[task_idx];
    s->pack_id = w->batch0 + (uint32_t)task_idx;
    s->not_applicable = s->not_smaller = false;
    s->st = encode(w, &w->threads[thread_idx], s);
    if (s->st != SYM_OK) snprintf(s->err, sizeof s->err, "%s", sym_last_error());
}

/* ---- tables ------------------------------------------------------------------------------------ */

typedef struct blob {
    uint32_t kind;
    const void *data;
    uint64_t bytes;
    void *owned;
} blob;

/* A GGUF v3 file with no tensors holding the source's key/values as they were. */
static sym_status gguf_meta(const sym_gguf *g, blob *b) {
    uint64_t n = sym_gguf_n_kv(g), bytes = 24;
    for (uint64_t i = 0; i < n; i++) bytes += sym_gguf_kv_at(g, i)->raw_len;
    uint8_t *p = sym_malloc((size_t)bytes);
    if (!p) return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory for the metadata");
    memcpy(p, "GGUF", 4);
    st_put_u32(p + 4, 3);
    st_put_u64(p + 8, 0);
    st_put_u64(p + 16, n);
    uint64_t at = 24;
    for (uint64_t i = 0; i < n; i++) {
        const sym_gguf_kv *kv = sym_gguf_kv_at(g, i);
        memcpy(p + at, kv->raw, (size_t)kv->raw_len);
        at += kv->raw_len;
    }
    *b = (blob){ST_BLOB_GGUF_META, p, bytes, p};
    return SYM_OK;
}

static sym_status read_text(const char *path, uint32_t kind, blob *b) {
    char *text = NULL;
    size_t len = 0;
    SYM_TRY(sym_json_read_file(path, TOKENIZER_MAX_BYTES, &text, &len));
    *b = (blob){kind, text, len, text};
    return SYM_OK;
}

/* The source's tokenizer: GGUF metadata, or tokenizer.json (+ tokenizer_config.json). */
static sym_status source_blobs(const sym_model *m, blob *b, uint32_t *n, uint32_t *source) {
    *n = 0;
    const sym_store *st = sym_model_store(m);
    if (sym_model_gguf(m)) {
        *source = SYM_STORE_FROM_GGUF;
        SYM_TRY(gguf_meta(sym_model_gguf(m), &b[(*n)++]));
        return SYM_OK;
    }
    *source = SYM_STORE_FROM_SAFETENSORS;
    if (st) { /* a store made from safetensors: its texts */
        sym_str j = sym_store_tokenizer_json(st), c = sym_store_tokenizer_config(st);
        if (j.ptr) b[(*n)++] = (blob){ST_BLOB_TOKENIZER_JSON, j.ptr, j.len, NULL};
        if (c.ptr) b[(*n)++] = (blob){ST_BLOB_TOKENIZER_CONFIG, c.ptr, c.len, NULL};
        return SYM_OK;
    }
    const char *tj = sym_model_tokenizer_json(m);
    if (!tj) return SYM_OK;
    SYM_TRY(read_text(tj, ST_BLOB_TOKENIZER_JSON, &b[(*n)++]));
    char cfg[4200];
    const char *slash = strrchr(tj, '/');
    snprintf(cfg, sizeof cfg, "%.*s/tokenizer_config.json", slash ? (int)(slash - tj) : 1,
             slash ? tj : ".");
    struct stat sb;
    if (stat(cfg, &sb) == 0 && S_ISREG(sb.st_mode))
        SYM_TRY(read_text(cfg, ST_BLOB_TOKENIZER_CONFIG, &b[(*n)++]));
    return SYM_OK;
}

static void put_hparams(uint8_t *r, const sym_hparams *hp, int64_t bos, int64_t eos) {
    snprintf((char *)r + HP_ARCH, ST_ARCH_BYTES, "%s", hp->arch);
    const int ints[] = {hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim,
                        hp->n_ff, hp->n_vocab, hp->n_ctx_train};
    for (int i = 0; i < 8; i++) st_put_u32(r + HP_N_EMBD + 4 * i, (uint32_t)ints[i]);
    const float fl[] = {hp->rope_theta, hp->rope_freq_scale, hp->rms_eps};
    for (int i = 0; i < 3; i++) {
        uint32_t u;
        memcpy(&u, &fl[i], 4);
        st_put_u32(r + HP_ROPE_THETA + 4 * i, u);
    }
    r[HP_ROPE_NEOX] = (uint8_t)hp->rope_neox;
    r[HP_TIED] = hp->tied_embeddings;
    r[HP_QKV_BIAS] = hp->qkv_bias;
    r[HP_EXPERT_SPLIT] = hp->expert_split;
    st_put_u32(r + HP_N_EXPERT, (uint32_t)hp->n_expert);
    st_put_u32(r + HP_N_EXPERT_USED, (uint32_t)hp->n_expert_used);
    st_put_u64(r + HP_BOS, (uint64_t)bos);
    st_put_u64(r + HP_EOS, (uint64_t)eos);
}

/* Every record but the packs' storage fields (filled as packs are written). */
static void put_plan(uint8_t *r, const sym_pack_plan *p) {
    for (uint32_t i = 0; i < p->n_weights; i++, r += ST_WEIGHT_BYTES) {
        const sym_pack_weight *w = &p->weights[i];
        memcpy(r + W_NAME, w->name, ST_NAME_BYTES);
        st_put_u32(r + W_ROLE, (uint32_t)w->role);
        st_put_u32(r + W_LAYER, (uint32_t)w->layer);
        st_put_u32(r + W_DTYPE, (uint32_t)w->type);
        st_put_u32(r + W_SRC_FILE, (uint32_t)w->file_idx);
        st_put_u64(r + W_N_ROWS, (uint64_t)w->n_rows);
        st_put_u64(r + W_N_COLS, (uint64_t)w->n_cols);
        st_put_u64(r + W_SRC_OFFSET, w->file_offset);
    }
    for (uint32_t i = 0; i < p->n_packs; i++, r += ST_PACK_BYTES) {
        const sym_pack *k = &p->packs[i];
        st_put_u32(r + P_ID, k->id);
        st_put_u32(r + P_TYPE, (uint32_t)k->type);
        st_put_u32(r + P_LAYER, (uint32_t)k->layer);
        st_put_u32(r + P_FLAGS, k->oversized ? ST_PACK_OVERSIZED : 0);
        st_put_u32(r + P_PIECE0, k->piece0);
        st_put_u32(r + P_N_PIECES, k->n_pieces);
        st_put_u32(r + P_RANGE0, k->range0);
        st_put_u32(r + P_N_RANGES, k->n_ranges);
        st_put_u32(r + P_FIRST_USE, k->first_use);
        st_put_u64(r + P_N_BYTES, k->n_bytes);
        st_put_u64(r + P_RAW_BYTES, k->buffer_bytes);
    }
    for (uint32_t i = 0; i < p->n_pieces; i++, r += ST_PIECE_BYTES) {
        st_put_u32(r + PC_WEIGHT, p->pieces[i].weight_idx);
        st_put_u64(r + PC_ROW0, (uint64_t)p->pieces[i].row0);
        st_put_u64(r + PC_N_ROWS, (uint64_t)p->pieces[i].n_rows);
        st_put_u64(r + PC_PACK_OFFSET, p->pieces[i].pack_offset);
    }
    for (uint32_t i = 0; i < p->n_ranges; i++, r += ST_RANGE_BYTES) {
        st_put_u32(r + R_SRC_FILE, (uint32_t)p->ranges[i].file_idx);
        st_put_u64(r + R_SRC_OFFSET, p->ranges[i].file_offset);
        st_put_u64(r + R_N_BYTES, p->ranges[i].n_bytes);
        st_put_u64(r + R_PACK_OFFSET, p->ranges[i].pack_offset);
    }
    for (uint32_t i = 0; i < p->n_uses; i++, r += ST_USE_BYTES) {
        st_put_u32(r + U_PACK, p->schedule[i].pack_id);
        st_put_u32(r + U_KIND, (uint32_t)p->schedule[i].kind);
    }
}

static void put_storage(uint8_t *r, const sym_store_pack *sp) {
    r[P_CODEC] = (uint8_t)sp->codec.id;
    bool blosc = sp->codec.id == SYM_CODEC_BLOSC;
    r[P_SHUFFLE] = blosc ? (uint8_t)sp->codec.shuffle : 0;
    r[P_INNER] = blosc ? (uint8_t)sp->codec.inner : 0;
    r[P_LEVEL] = blosc || sp->codec.id == SYM_CODEC_ZSTD || sp->codec.id == SYM_CODEC_BYTESPLIT
                     ? (uint8_t)sp->codec.level : 0;
    st_put_u32(r + P_ELEM_SIZE, sp->elem_size);
    st_put_u64(r + P_STORED_BYTES, sp->stored_bytes);
    st_put_u64(r + P_FILE_OFFSET, sp->file_offset);
    st_put_u64(r + P_RAW_HASH, sp->raw_hash);
    st_put_u64(r + P_STORED_HASH, sp->stored_hash);
}

/* ---- the file ---------------------------------------------------------------------------------- */

static sym_status pwrite_all(int fd, const char *path, const void *data, uint64_t n, uint64_t off) {
    const uint8_t *p = data;
    while (n) {
        ssize_t got = pwrite(fd, p, n > (1u << 30) ? (1u << 30) : (size_t)n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            return SYM_FAIL(SYM_ERR_IO, "pack: cannot write '%s': %s", path,
                            got < 0 ? strerror(errno) : "no progress");
        p += got;
        off += (uint64_t)got;
        n -= (uint64_t)got;
    }
    return SYM_OK;
}

static sym_status check_target(const sym_model *m, const char *out) {
    struct stat so, ss;
    if (stat(out, &so) != 0) return SYM_OK;
    if (S_ISDIR(so.st_mode)) return SYM_FAIL(SYM_ERR_ARG, "pack: output '%s' is a directory", out);
    for (int i = 0; i < sym_model_n_files(m); i++)
        if (stat(sym_model_file_path(m, i), &ss) == 0 && ss.st_dev == so.st_dev &&
            ss.st_ino == so.st_ino)
            return SYM_FAIL(SYM_ERR_ARG, "pack: output '%s' is the model's own file '%s'", out,
                            sym_model_file_path(m, i));
    return SYM_OK;
}

static sym_status check_options(const sym_store_write_options *o) {
    SYM_CHECK(o->max_pack_bytes > 0, SYM_ERR_ARG, "pack: the pack size limit is 0");
    SYM_CHECK(o->min_saving >= 0 && o->min_saving < 1 && o->disk_bytes_per_s > 0, SYM_ERR_ARG,
              "pack: min_saving %g (0..1) or disk rate %g (> 0) out of range", o->min_saving,
              o->disk_bytes_per_s);
    if (o->auto_codec) {
        sym_codec c = sym_codec_default(SYM_CODEC_ZSTD);
        if (o->codec.level > 0) c.level = o->codec.level;
        return sym_codec_check(&c, 4);
    }
    /* any element size the codec takes: zfp is checked per pack */
    return sym_codec_check(&o->codec, o->codec.id == SYM_CODEC_ZFP ? 4 : 2);
}

typedef struct job {
    writer w;
    int fd;
    char *tmp;
    uint8_t *tables;
    uint64_t tables_bytes;
    blob blobs[3];
    uint32_t n_blobs;
    sym_threadpool *pool;
} job;

static sym_status write_packs(job *j, const char *out, uint8_t *pack_rec, uint64_t *pos,
                              sym_store_write_stats *stats) {
    writer *w = &j->w;
    const sym_pack_plan *p = w->plan;
    uint64_t done = 0, total = 0;
    for (uint32_t i = 0; i < p->n_packs; i++) total += p->packs[i].buffer_bytes;
    for (uint32_t b0 = 0; b0 < p->n_packs; b0 += (uint32_t)w->n_threads) {
        uint32_t nb = p->n_packs - b0 < (uint32_t)w->n_threads ? p->n_packs - b0
                                                               : (uint32_t)w->n_threads;
        w->batch0 = b0;
        sym_threadpool_parallel_for(j->pool, nb, encode_task, w);
        for (uint32_t t = 0; t < nb; t++) {
            slot *s = &w->slots[t];
            if (s->st != SYM_OK) return SYM_FAIL(s->st, "%s", s->err);
            s->sp.file_offset = align_up(*pos, SYM_STORE_ALIGN);
            SYM_TRY(pwrite_all(j->fd, out, s->stored, s->sp.stored_bytes, s->sp.file_offset));
            *pos = s->sp.file_offset + s->sp.stored_bytes;
            put_storage(pack_rec + (uint64_t)s->pack_id * ST_PACK_BYTES, &s->sp);
            stats->n_by_codec[s->sp.codec.id]++;
            stats->raw_by_codec[s->sp.codec.id] += s->sp.raw_bytes;
            stats->stored_by_codec[s->sp.codec.id] += s->sp.stored_bytes;
            stats->n_not_applicable += s->not_applicable;
            stats->n_not_smaller += s->not_smaller;
            stats->raw_bytes += s->sp.raw_bytes;
            stats->stored_bytes += s->sp.stored_bytes;
            done += s->sp.raw_bytes;
            if (w->o->progress && w->o->progress(w->o->progress_user, done, total))
                return SYM_FAIL(SYM_ERR_IO, "pack: interrupted after %u of %u packs; '%s' was "
                                "not written", s->pack_id + 1, p->n_packs, out);
        }
    }
    return SYM_OK;
}

static sym_status run(job *j, const sym_model *m, const char *out, sym_store_write_stats *stats) {
    writer *w = &j->w;
    const sym_pack_plan *p = w->plan;
    uint32_t source;
    SYM_TRY(source_blobs(m, j->blobs, &j->n_blobs, &source));
    int64_t bos = -1, eos = -1;
    if (source == SYM_STORE_FROM_SAFETENSORS) {
        sym_tokenizer_summary ts;
        SYM_TRY(sym_model_tokenizer_summary(m, &ts));
        bos = ts.bos_id;
        eos = ts.eos_id;
    }
    /* the tables' size, then the data offset */
    uint64_t fixed = ST_HPARAMS_BYTES + (uint64_t)j->n_blobs * ST_BLOB_BYTES +
                     (uint64_t)p->n_weights * ST_WEIGHT_BYTES + (uint64_t)p->n_packs * ST_PACK_BYTES +
                     (uint64_t)p->n_pieces * ST_PIECE_BYTES + (uint64_t)p->n_ranges * ST_RANGE_BYTES +
                     (uint64_t)p->n_uses * ST_USE_BYTES;
    uint64_t at = align_up(fixed, ST_BLOB_ALIGN), blob_at[3];
    for (uint32_t i = 0; i < j->n_blobs; i++) {
        blob_at[i] = at;
        at = align_up(at + j->blobs[i].bytes, ST_BLOB_ALIGN);
    }
    j->tables_bytes = at;
    j->tables = sym_calloc(1, (size_t)at);
    if (!j->tables) return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory for the tables");
    uint8_t *r = j->tables;
    put_hparams(r, sym_model_hparams(m), bos, eos);
    r += ST_HPARAMS_BYTES;
    for (uint32_t i = 0; i < j->n_blobs; i++, r += ST_BLOB_BYTES) {
        st_put_u32(r, j->blobs[i].kind);
        st_put_u64(r + 8, blob_at[i]);
        st_put_u64(r + 16, j->blobs[i].bytes);
        memcpy(j->tables + blob_at[i], j->blobs[i].data, (size_t)j->blobs[i].bytes);
    }
    uint8_t *pack_rec = r + (uint64_t)p->n_weights * ST_WEIGHT_BYTES;
    put_plan(r, p);

    size_t n = strlen(out) + 32;
    if (!(j->tmp = sym_malloc(n))) return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory");
    snprintf(j->tmp, n, "%s.tmp.%ld", out, (long)getpid());
    j->fd = open(j->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (j->fd < 0) {
        int e = errno;
        sym_free(j->tmp);
        j->tmp = NULL; /* not ours: never unlink it */
        return SYM_FAIL(SYM_ERR_IO, "pack: cannot create '%s.tmp.*': %s", out, strerror(e));
    }
    uint64_t data_offset = align_up(ST_HEADER_BYTES + j->tables_bytes, SYM_STORE_ALIGN);
    uint64_t pos = data_offset;
    SYM_TRY(write_packs(j, out, pack_rec, &pos, stats));
    uint64_t file_bytes = align_up(pos, SYM_STORE_ALIGN);
    uint8_t h[ST_HEADER_BYTES] = {0};
    memcpy(h + H_MAGIC, SYM_STORE_MAGIC, 8);
    st_put_u32(h + H_VERSION, SYM_STORE_VERSION);
    st_put_u32(h + H_HEADER_BYTES, ST_HEADER_BYTES);
    st_put_u64(h + H_FILE_BYTES, file_bytes);
    st_put_u64(h + H_TABLES_OFFSET, ST_HEADER_BYTES);
    st_put_u64(h + H_TABLES_BYTES, j->tables_bytes);
    st_put_u64(h + H_DATA_OFFSET, data_offset);
    const uint32_t counts[] = {p->n_weights, p->n_packs, p->n_pieces, p->n_ranges, p->n_uses,
                               j->n_blobs};
    for (int i = 0; i < 6; i++) st_put_u32(h + H_N_WEIGHTS + 4 * i, counts[i]);
    st_put_u64(h + H_MAX_PACK_BYTES, p->max_pack_bytes);
    st_put_u32(h + H_CUT, (uint32_t)p->cut);
    st_put_u32(h + H_SOURCE, source);
    st_put_u64(h + H_RAW_BYTES, stats->raw_bytes);
    st_put_u64(h + H_STORED_BYTES, stats->stored_bytes);
    st_put_u64(h + H_TABLES_HASH, XXH3_64bits(j->tables, (size_t)j->tables_bytes));
    st_put_u64(h + H_HEADER_HASH, XXH3_64bits(h, H_HEADER_HASH));
    SYM_TRY(pwrite_all(j->fd, out, j->tables, j->tables_bytes, ST_HEADER_BYTES));
    SYM_TRY(pwrite_all(j->fd, out, h, ST_HEADER_BYTES, 0));
    if (ftruncate(j->fd, (off_t)file_bytes) != 0 || fsync(j->fd) != 0)
        return SYM_FAIL(SYM_ERR_IO, "pack: cannot finish '%s': %s", j->tmp, strerror(errno));
    int fd = j->fd;
    j->fd = -1;
    if (close(fd) != 0)
        return SYM_FAIL(SYM_ERR_IO, "pack: cannot close '%s': %s", j->tmp, strerror(errno));
    if (rename(j->tmp, out) != 0)
        return SYM_FAIL(SYM_ERR_IO, "pack: cannot rename '%s' to '%s': %s", j->tmp, out,
                        strerror(errno));
    sym_free(j->tmp);
    j->tmp = NULL;
    stats->file_bytes = file_bytes;
    return SYM_OK;
}

static sym_status setup(job *j, const sym_model *m, const sym_store_write_options *o) {
    writer *w = &j->w;
    sym_pack_options po = {o->max_pack_bytes, o->cut};
    SYM_TRY(sym_pack_plan_create(m, &po, &w->plan));
    w->m = m;
    w->o = o;
    int n = o->n_threads > 0 ? o->n_threads : sym_threadpool_cpu_count();
    SYM_TRY(sym_threadpool_create(n, &j->pool));
    w->n_threads = sym_threadpool_size(j->pool);
    uint64_t largest = 0;
    for (uint32_t i = 0; i < w->plan->n_packs; i++)
        if (w->plan->packs[i].buffer_bytes > largest) largest = w->plan->packs[i].buffer_bytes;
    w->sample_cap = (uint64_t)SAMPLE_SLICES * SAMPLE_SLICE_BYTES;
    if (w->sample_cap > largest) w->sample_cap = largest;
    w->threads = sym_calloc((size_t)w->n_threads, sizeof *w->threads);
    w->slots = sym_calloc((size_t)w->n_threads, sizeof *w->slots);
    if (!w->threads || !w->slots) return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory");
    for (int t = 0; t < w->n_threads; t++) {
        SYM_TRY(sym_codec_ctx_create(&w->threads[t].ctx));
        slot *s = &w->slots[t];
        s->raw = sym_malloc((size_t)largest);
        s->out = sym_malloc((size_t)largest);
        s->check = sym_malloc((size_t)largest);
        if (o->auto_codec) w->threads[t].sample = sym_malloc((size_t)(3 * w->sample_cap));
        if (!s->raw || !s->out || !s->check || (o->auto_codec && !w->threads[t].sample))
            return SYM_FAIL(SYM_ERR_OOM, "pack: out of memory for %d x 3 buffers of %llu bytes",
                            w->n_threads, (unsigned long long)largest);
    }
    return SYM_OK;
}

static void teardown(job *j) {
    writer *w = &j->w;
    if (j->fd >= 0) close(j->fd);
    if (j->tmp) unlink(j->tmp);
    sym_free(j->tmp);
    for (int t = 0; w->threads && t < w->n_threads; t++) {
        sym_codec_ctx_destroy(w->threads[t].ctx);
        sym_free(w->threads[t].sample);
    }
    for (int t = 0; w->slots && t < w->n_threads; t++) {
        sym_free(w->slots[t].raw);
        sym_free(w->slots[t].out);
        sym_free(w->slots[t].check);
    }
    sym_free(w->threads);
    sym_free(w->slots);
    for (uint32_t i = 0; i < j->n_blobs; i++) sym_free(j->blobs[i].owned);
    sym_free(j->tables);
    sym_threadpool_destroy(j->pool);
    sym_pack_plan_destroy(w->plan);
}

sym_status sym_store_write(const sym_model *m, const char *out_path,
                           const sym_store_write_options *o, sym_store_write_stats *stats) {
    SYM_CHECK(m && out_path && o, SYM_ERR_ARG, "pack: NULL argument");
    SYM_TRY(check_options(o));
    SYM_TRY(check_target(m, out_path));
    sym_store_write_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    double t0 = now_s();
    job j;
    memset(&j, 0, sizeof j);
    j.fd = -1;
    sym_status st = setup(&j, m, o);
    if (st == SYM_OK) st = run(&j, m, out_path, stats);
    stats->n_packs = j.w.plan ? j.w.plan->n_packs : 0;
    teardown(&j);
    stats->seconds = now_s() - t0;
    return st;
}
