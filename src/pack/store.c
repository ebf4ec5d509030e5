/* store.c — reading a pack store (MODEL.sympack): strict validation of the header and tables,
 * then packs on demand (checksum, decompress, checksum). The writer is store_write.c.
 *
 * Byte layout (little-endian; offsets in bytes):
 *
 * Header, 128 bytes at offset 0:
 *     0  u8[8]  magic "SYMPACK\0"
 *     8  u32    format version (1)
 *    12  u32    header size (128)
 *    16  u64    file size: the whole file, a multiple of 4096
 *    24  u64    tables offset (128)
 *    32  u64    tables size T
 *    40  u64    data offset: the first pack, a multiple of 4096, >= 128 + T
 *    48  u32    n_weights   52 u32 n_packs   56 u32 n_pieces   60 u32 n_ranges
 *    64  u32    n_uses (schedule entries)    68 u32 n_blobs
 *    72  u64    max_pack_bytes (the plan's limit)
 *    80  u32    cut (0 buddy, 1 even)        84 u32 source (0 GGUF, 1 safetensors)
 *    88  u64    raw bytes (sum over packs)   96 u64 stored bytes (sum over packs)
 *   104  u64    XXH3-64 of the tables section
 *   112  u64    reserved (0)
 *   120  u64    XXH3-64 of header bytes [0, 120)
 *
 * Tables section at offset 128, T bytes, records back to back in this order:
 *   hyperparameters, 128 bytes:
 *     0 char[32] arch (NUL-terminated) | 32 i32 n_embd | 36 n_layer | 40 n_head | 44 n_head_kv
 *     48 head_dim | 52 n_ff | 56 n_vocab | 60 n_ctx_train | 64 f32 rope_theta
 *     68 f32 rope_freq_scale | 72 f32 rms_eps | 76 u8 rope_neox | 77 u8 tied_embeddings
 *     78 u8 qkv_bias | 79 u8 expert_split | 80 i64 bos_id | 88 i64 eos_id (config.json; -1:
 *     none) | 96 i32 n_expert | 100 i32 n_expert_used (0, 0: dense; stores written before
 *     mixtures of experts have zeros there) | 104..127 zero
 *   n_blobs x 24: u32 kind (1 GGUF metadata, 2 tokenizer.json, 3 tokenizer_config.json)
 *     | u32 0 | u64 offset from the tables section's start | u64 size
 *   n_weights x 96: char[48] name (NUL-terminated, internal name) | u32 role | i32 layer
 *     | u32 dtype (0 f32, 1 f16, 2 bf16) | i32 source file index | i64 n_rows | i64 n_cols
 *     | u64 offset in the source file | u64 0
 *   n_packs x 96: u32 id | u32 type | i32 layer | u32 flags (bit 0: oversized) | u32 piece0
 *     | u32 n_pieces | u32 range0 | u32 n_ranges | u32 first_use | u8 codec id (0 none, 1 zstd,
 *     2 blosc, 3 zfp, 4 bytesplit) | u8 blosc shuffle (0 byte, 1 bit) | u8 blosc compressor
 *     (0 lz4, 1 zstd) | u8 level | u32 element size (2, 4) | u32 0 | u64 weight bytes
 *     | u64 raw bytes (the pack's buffer) | u64 stored bytes | u64 file offset
 *     | u64 XXH3-64 of the raw bytes | u64 XXH3-64 of the stored bytes
 *   n_pieces x 32: u32 weight index | u32 0 | i64 row0 | i64 n_rows | u64 offset in the buffer
 *   n_ranges x 32: i32 source file index | u32 0 | u64 source offset | u64 bytes
 *     | u64 offset in the buffer
 *   n_uses x 8: u32 pack id | u32 kind (0 full, 1 gather)
 *   the blobs' bytes, each at an 8-byte aligned offset, inside the section. Blob 1 is a GGUF v3
 *     file with no tensors whose key/values are the source's, copied byte for byte.
 *
 * Packs: from the data offset, in id order, each at a 4096-aligned offset, the stored bytes of
 * its codec (codec.c), zero padding between packs and up to the file size.
 *
 * Reading checks, in order: size >= 128, magic, version, header size, header checksum
 * (SYM_ERR_CHECKSUM), file size, the tables' place, tables checksum (SYM_ERR_CHECKSUM), then
 * every field: structure errors are SYM_ERR_FORMAT naming the field.
 */
#include "pack/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "model/arch.h"
#include "pack/store_format.h"

#define BAD(...) return SYM_FAIL(SYM_ERR_FORMAT, "store: " __VA_ARGS__)
/* bound for every offset and size read from the file, so sums of two never overflow */
#define MAX_U62 (1ull << 62)
#define MAX_SRC_FILES 65536

struct sym_store {
    char *path;
    int fd;             /* -1: memory */
    const uint8_t *mem; /* sym_store_open_memory */
    uint64_t size;
    uint8_t *tables;    /* owned copy (file) or NULL (memory: points into mem) */
    const uint8_t *tab;
    uint64_t tables_bytes, data_offset;
    sym_store_source source;
    sym_hparams hp;
    int64_t bos_id, eos_id;
    sym_pack_plan *plan;
    sym_store_pack *packs;
    uint64_t raw_bytes, stored_bytes;
    sym_gguf *gguf;
    sym_str tok_json, tok_config;
};

struct sym_store_reader {
    sym_codec_ctx *codec;
    void *buf;
    size_t cap;
};

/* ---- reading bytes ----------------------------------------------------------------------------- */

static sym_status read_at(const sym_store *s, uint64_t off, uint64_t n, void *dst) {
    if (off > s->size || n > s->size - off)
        BAD("read of %llu bytes at %llu is past the end of the file (%llu bytes)",
            (unsigned long long)n, (unsigned long long)off, (unsigned long long)s->size);
    if (s->fd < 0) {
        if (n) memcpy(dst, s->mem + off, (size_t)n);
        return SYM_OK;
    }
    uint8_t *p = dst;
    while (n) {
        ssize_t got = pread(s->fd, p, n > (1u << 30) ? (1u << 30) : (size_t)n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return SYM_FAIL(SYM_ERR_IO, "store: read at %llu: %s", (unsigned long long)off,
                                     strerror(errno));
        if (got == 0) BAD("the file ended at %llu while reading (it shrank)", (unsigned long long)off);
        p += got;
        off += (uint64_t)got;
        n -= (uint64_t)got;
    }
    return SYM_OK;
}

/* ---- header ------------------------------------------------------------------------------------ */

typedef struct header {
    uint64_t file_bytes, tables_offset, tables_bytes, data_offset, max_pack_bytes;
    uint32_t n_weights, n_packs, n_pieces, n_ranges, n_uses, n_blobs, cut, source;
    uint64_t raw_bytes, stored_bytes, tables_hash;
} header;

static sym_status parse_header(sym_store *s, header *h) {
    uint8_t b[ST_HEADER_BYTES];
    if (s->size < ST_HEADER_BYTES)
        BAD("truncated: %llu bytes, the header alone takes %u", (unsigned long long)s->size,
            ST_HEADER_BYTES);
    SYM_TRY(read_at(s, 0, ST_HEADER_BYTES, b));
    if (memcmp(b + H_MAGIC, SYM_STORE_MAGIC, 8) != 0) BAD("not a pack store (bad magic)");
    uint32_t version = st_u32(b + H_VERSION);
    if (version != SYM_STORE_VERSION)
        BAD("format version %u (this build reads version %u)", version, SYM_STORE_VERSION);
    if (st_u32(b + H_HEADER_BYTES) != ST_HEADER_BYTES)
        BAD("header size %u (%u expected)", st_u32(b + H_HEADER_BYTES), ST_HEADER_BYTES);
    if (XXH3_64bits(b, H_HEADER_HASH) != st_u64(b + H_HEADER_HASH))
        return SYM_FAIL(SYM_ERR_CHECKSUM, "store: the header is damaged (checksum mismatch)");
    h->file_bytes = st_u64(b + H_FILE_BYTES);
    h->tables_offset = st_u64(b + H_TABLES_OFFSET);
    h->tables_bytes = st_u64(b + H_TABLES_BYTES);
    h->data_offset = st_u64(b + H_DATA_OFFSET);
    h->n_weights = st_u32(b + H_N_WEIGHTS);
    h->n_packs = st_u32(b + H_N_PACKS);
    h->n_pieces = st_u32(b + H_N_PIECES);
    h->n_ranges = st_u32(b + H_N_RANGES);
    h->n_uses = st_u32(b + H_N_USES);
    h->n_blobs = st_u32(b + H_N_BLOBS);
    h->max_pack_bytes = st_u64(b + H_MAX_PACK_BYTES);
    h->cut = st_u32(b + H_CUT);
    h->source = st_u32(b + H_SOURCE);
    h->raw_bytes = st_u64(b + H_RAW_BYTES);
    h->stored_bytes = st_u64(b + H_STORED_BYTES);
    h->tables_hash = st_u64(b + H_TABLES_HASH);
    if (h->file_bytes != s->size)
        BAD("%s: the header says %llu bytes, the file has %llu",
            h->file_bytes > s->size ? "truncated" : "trailing bytes",
            (unsigned long long)h->file_bytes, (unsigned long long)s->size);
    if (h->file_bytes % SYM_STORE_ALIGN) BAD("file size %llu is not a multiple of %u",
                                             (unsigned long long)h->file_bytes, SYM_STORE_ALIGN);
    if (st_u64(b + H_RESERVED) != 0) BAD("reserved header field is not zero");
    if (h->tables_offset != ST_HEADER_BYTES)
        BAD("tables at offset %llu (%u expected)", (unsigned long long)h->tables_offset,
            ST_HEADER_BYTES);
    if (h->tables_bytes > h->file_bytes - ST_HEADER_BYTES ||
        h->data_offset < ST_HEADER_BYTES + h->tables_bytes || h->data_offset > h->file_bytes ||
        h->data_offset % SYM_STORE_ALIGN)
        BAD("tables of %llu bytes and data at %llu do not fit a %llu-byte file with aligned data",
            (unsigned long long)h->tables_bytes, (unsigned long long)h->data_offset,
            (unsigned long long)h->file_bytes);
    /* counts are u32, records at most 96 bytes: no overflow in 64 bits */
    uint64_t need = ST_HPARAMS_BYTES + (uint64_t)h->n_blobs * ST_BLOB_BYTES +
                    (uint64_t)h->n_weights * ST_WEIGHT_BYTES + (uint64_t)h->n_packs * ST_PACK_BYTES +
                    (uint64_t)h->n_pieces * ST_PIECE_BYTES + (uint64_t)h->n_ranges * ST_RANGE_BYTES +
                    (uint64_t)h->n_uses * ST_USE_BYTES;
    if (need > h->tables_bytes)
        BAD("the counts (%u weights, %u packs, %u pieces, %u ranges, %u uses, %u blobs) need %llu "
            "bytes of tables, the header gives %llu", h->n_weights, h->n_packs, h->n_pieces,
            h->n_ranges, h->n_uses, h->n_blobs, (unsigned long long)need,
            (unsigned long long)h->tables_bytes);
    if (h->cut > SYM_PACK_CUT_EVEN) BAD("unknown cut %u", h->cut);
    if (h->source > SYM_STORE_FROM_SAFETENSORS) BAD("unknown source format %u", h->source);
    if (h->max_pack_bytes == 0 || h->max_pack_bytes > MAX_U62)
        BAD("pack size limit %llu is out of range", (unsigned long long)h->max_pack_bytes);
    if (h->n_packs == 0) BAD("no packs");
    return SYM_OK;
}

/* ---- hyperparameters and blobs ------------------------------------------------------------------- */

static float get_f32(const uint8_t *p) {
    uint32_t u = st_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static sym_status parse_hparams(sym_store *s, const uint8_t *r) {
    sym_hparams *hp = &s->hp;
    memset(hp, 0, sizeof *hp);
    if (!memchr(r + HP_ARCH, 0, ST_ARCH_BYTES)) BAD("architecture name is not terminated");
    for (uint32_t i = HP_END; i < ST_HPARAMS_BYTES; i++)
        if (r[i]) BAD("reserved hyperparameter byte %u is not zero", i);
    SYM_TRY(sym_arch_init(hp, (const char *)r + HP_ARCH));
    bool qkv_bias = hp->qkv_bias;
    int *ints[] = {&hp->n_embd, &hp->n_layer, &hp->n_head, &hp->n_head_kv, &hp->head_dim,
                   &hp->n_ff, &hp->n_vocab, &hp->n_ctx_train};
    for (int i = 0; i < 8; i++) *ints[i] = (int32_t)st_u32(r + HP_N_EMBD + 4 * i);
    hp->rope_theta = get_f32(r + HP_ROPE_THETA);
    hp->rope_freq_scale = get_f32(r + HP_ROPE_SCALE);
    hp->rms_eps = get_f32(r + HP_RMS_EPS);
    if (r[HP_ROPE_NEOX] > 1 || r[HP_TIED] > 1 || r[HP_QKV_BIAS] != qkv_bias ||
        r[HP_EXPERT_SPLIT] > 1)
        BAD("hyperparameters: rope_neox %u, tied %u, qkv_bias %u, expert_split %u (0/1; "
            "qkv_bias %u for %s)", r[HP_ROPE_NEOX], r[HP_TIED], r[HP_QKV_BIAS],
            r[HP_EXPERT_SPLIT], qkv_bias, hp->arch);
    hp->rope_neox = r[HP_ROPE_NEOX];
    hp->tied_embeddings = r[HP_TIED];
    hp->expert_split = r[HP_EXPERT_SPLIT];
    hp->n_expert = (int32_t)st_u32(r + HP_N_EXPERT);
    hp->n_expert_used = (int32_t)st_u32(r + HP_N_EXPERT_USED);
    s->bos_id = (int64_t)st_u64(r + HP_BOS);
    s->eos_id = (int64_t)st_u64(r + HP_EOS);
    if (s->bos_id < -1 || s->bos_id >= hp->n_vocab || s->eos_id < -1 || s->eos_id >= hp->n_vocab)
        BAD("BOS/EOS ids %lld/%lld are outside the vocabulary", (long long)s->bos_id,
            (long long)s->eos_id);
    sym_status st = sym_arch_check_hparams(hp);
    if (st != SYM_OK) sym_error_prefix("store: hyperparameters");
    return st;
}

/* Blobs lie in the blob area [area, tables_bytes), aligned, without overlap, one per kind. */
static sym_status parse_blobs(sym_store *s, const uint8_t *r, uint32_t n, uint64_t area) {
    uint64_t end_prev = area;
    bool seen[4] = {false};
    for (uint32_t i = 0; i < n; i++, r += ST_BLOB_BYTES) {
        uint32_t kind = st_u32(r);
        uint64_t off = st_u64(r + 8), len = st_u64(r + 16);
        if (kind < ST_BLOB_GGUF_META || kind > ST_BLOB_TOKENIZER_CONFIG || seen[kind] ||
            st_u32(r + 4))
            BAD("blob %u: kind %u is unknown or repeated", i, kind);
        seen[kind] = true;
        if (off % ST_BLOB_ALIGN || off < end_prev || off > s->tables_bytes ||
            len > s->tables_bytes - off)
            BAD("blob %u: %llu bytes at %llu outside the blob area [%llu, %llu) or overlapping",
                i, (unsigned long long)len, (unsigned long long)off, (unsigned long long)area,
                (unsigned long long)s->tables_bytes);
        end_prev = off + len;
        sym_str v = {(const char *)s->tab + off, len};
        if (kind == ST_BLOB_GGUF_META) {
            sym_status st = sym_gguf_open_memory(v.ptr, (size_t)len, &s->gguf);
            if (st != SYM_OK) {
                sym_error_prefix("store: metadata blob");
                return st == SYM_ERR_UNSUPPORTED ? SYM_ERR_FORMAT : st;
            }
            if (sym_gguf_n_tensors(s->gguf) != 0) BAD("the metadata blob holds tensors");
        } else if (kind == ST_BLOB_TOKENIZER_JSON) {
            s->tok_json = v;
        } else {
            s->tok_config = v;
        }
    }
    if (s->source == SYM_STORE_FROM_GGUF && (!seen[ST_BLOB_GGUF_META] || seen[2] || seen[3]))
        BAD("a store made from GGUF needs the metadata blob and no tokenizer.json");
    if (s->source == SYM_STORE_FROM_SAFETENSORS && seen[ST_BLOB_GGUF_META])
        BAD("a store made from safetensors has no GGUF metadata blob");
    return SYM_OK;
}

/* ---- weights ------------------------------------------------------------------------------------- */

static int cmp_weight_name(const void *a, const void *b, void *ctx) {
    const sym_pack_weight *w = ctx;
    return strcmp(w[*(const uint32_t *)a].name, w[*(const uint32_t *)b].name);
}

static int cmp_weight_src(const void *a, const void *b, void *ctx) {
    const sym_pack_weight *w = ctx, *x = &w[*(const uint32_t *)a], *y = &w[*(const uint32_t *)b];
    if (x->file_idx != y->file_idx) return x->file_idx < y->file_idx ? -1 : 1;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

static sym_status parse_weights(sym_store *s, const uint8_t *r, uint32_t n) {
    sym_pack_plan *p = s->plan;
    for (uint32_t i = 0; i < n; i++, r += ST_WEIGHT_BYTES) {
        sym_pack_weight *w = &p->weights[i];
        if (!memchr(r, 0, ST_NAME_BYTES) || !r[0]) BAD("weight %u: name is empty or unterminated", i);
        memcpy(w->name, r, ST_NAME_BYTES);
        uint32_t role = st_u32(r + W_ROLE), dtype = st_u32(r + W_DTYPE);
        w->layer = (int32_t)st_u32(r + W_LAYER);
        w->file_idx = (int32_t)st_u32(r + W_SRC_FILE);
        w->n_rows = (int64_t)st_u64(r + W_N_ROWS);
        w->n_cols = (int64_t)st_u64(r + W_N_COLS);
        w->file_offset = st_u64(r + W_SRC_OFFSET);
        sym_tensor_spec spec;
        if (!sym_arch_find_spec(&s->hp, w->name, &spec))
            BAD("weight %u '%.48s' is not a tensor of this %s model", i, w->name, s->hp.arch);
        if (role != (uint32_t)spec.role || w->layer != spec.layer || w->n_rows != spec.n_rows ||
            w->n_cols != spec.n_cols)
            BAD("weight '%s': role %u, layer %d, shape %lld x %lld, expected %u, %d, %lld x %lld",
                w->name, role, w->layer, (long long)w->n_rows, (long long)w->n_cols,
                (unsigned)spec.role, spec.layer, (long long)spec.n_rows, (long long)spec.n_cols);
        if (spec.role == SYM_ROLE_OUTPUT && s->hp.tied_embeddings)
            BAD("weight 'output.weight' in a model with tied embeddings");
        if (dtype >= SYM_DT_COUNT) BAD("weight '%s': unknown dtype %u", w->name, dtype);
        if (w->file_idx < 0 || w->file_idx >= MAX_SRC_FILES || w->file_offset > MAX_U62 ||
            st_u64(r + 88))
            BAD("weight '%s': source file %d, offset %llu out of range", w->name, w->file_idx,
                (unsigned long long)w->file_offset);
        w->role = (sym_tensor_role)role;
        w->expert = spec.expert;
        w->type = (sym_dtype)dtype;
        /* the architecture's bounds keep these far below 2^62 */
        w->row_bytes = (uint64_t)w->n_cols * sym_dtype_size(w->type);
        w->n_bytes = (uint64_t)w->n_rows * w->row_bytes;
    }
    uint64_t want = sym_arch_n_specs(&s->hp) - (s->hp.tied_embeddings ? 1 : 0);
    if (n != want) BAD("%u weights, a %s model of these dimensions has %llu", n, s->hp.arch,
                       (unsigned long long)want);
    /* names unique (so, with the count, exactly the model's set); source ranges disjoint */
    uint32_t *ix = sym_malloc((size_t)n * sizeof *ix);
    if (!ix) return SYM_FAIL(SYM_ERR_OOM, "store: out of memory");
    for (uint32_t i = 0; i < n; i++) ix[i] = i;
    qsort_r(ix, n, sizeof *ix, cmp_weight_name, p->weights);
    sym_status st = SYM_OK;
    for (uint32_t i = 1; i < n && st == SYM_OK; i++)
        if (!strcmp(p->weights[ix[i - 1]].name, p->weights[ix[i]].name))
            st = SYM_FAIL(SYM_ERR_FORMAT, "store: weight '%s' appears twice",
                          p->weights[ix[i]].name);
    qsort_r(ix, n, sizeof *ix, cmp_weight_src, p->weights);
    for (uint32_t i = 1; i < n && st == SYM_OK; i++) {
        const sym_pack_weight *a = &p->weights[ix[i - 1]], *b = &p->weights[ix[i]];
        if (a->file_idx == b->file_idx && a->file_offset + a->n_bytes > b->file_offset)
            st = SYM_FAIL(SYM_ERR_FORMAT, "store: weights '%s' and '%s' overlap in the source",
                          a->name, b->name);
    }
    sym_free(ix);
    return st;
}

/* ---- the plan ------------------------------------------------------------------------------------ */

static sym_status parse_plan(sym_store *s, const header *h, const uint8_t *r) {
    sym_pack_plan *p = s->plan;
    const uint8_t *rp = r, *rpc = rp + (uint64_t)h->n_packs * ST_PACK_BYTES;
    const uint8_t *rr = rpc + (uint64_t)h->n_pieces * ST_PIECE_BYTES;
    const uint8_t *ru = rr + (uint64_t)h->n_ranges * ST_RANGE_BYTES;
    for (uint32_t i = 0; i < h->n_pieces; i++, rpc += ST_PIECE_BYTES) {
        sym_pack_piece *pc = &p->pieces[i];
        pc->weight_idx = st_u32(rpc + PC_WEIGHT);
        pc->row0 = (int64_t)st_u64(rpc + PC_ROW0);
        pc->n_rows = (int64_t)st_u64(rpc + PC_N_ROWS);
        pc->pack_offset = st_u64(rpc + PC_PACK_OFFSET);
        if (pc->weight_idx >= h->n_weights || st_u32(rpc + 4)) BAD("piece %u: no weight %u", i,
                                                                  pc->weight_idx);
        const sym_pack_weight *w = &p->weights[pc->weight_idx];
        if (pc->row0 < 0 || pc->n_rows < 1 || pc->n_rows > w->n_rows ||
            pc->row0 > w->n_rows - pc->n_rows || pc->pack_offset > MAX_U62)
            BAD("piece %u: rows %lld+%lld of '%s' (%lld rows), buffer offset %llu", i,
                (long long)pc->row0, (long long)pc->n_rows, w->name, (long long)w->n_rows,
                (unsigned long long)pc->pack_offset);
        pc->n_bytes = (uint64_t)pc->n_rows * w->row_bytes;
        pc->file_offset = w->file_offset + (uint64_t)pc->row0 * w->row_bytes;
        pc->file_idx = w->file_idx;
    }
    for (uint32_t i = 0; i < h->n_ranges; i++, rr += ST_RANGE_BYTES) {
        sym_pack_range *g = &p->ranges[i];
        g->file_idx = (int32_t)st_u32(rr + R_SRC_FILE);
        g->file_offset = st_u64(rr + R_SRC_OFFSET);
        g->n_bytes = st_u64(rr + R_N_BYTES);
        g->pack_offset = st_u64(rr + R_PACK_OFFSET);
        if (st_u32(rr + 4) || g->file_offset > MAX_U62 || g->n_bytes > MAX_U62 ||
            g->pack_offset > MAX_U62)
            BAD("range %u: offsets or size out of range", i);
    }
    for (uint32_t i = 0; i < h->n_uses; i++, ru += ST_USE_BYTES) {
        p->schedule[i].pack_id = st_u32(ru + U_PACK);
        uint32_t kind = st_u32(ru + U_KIND);
        if (p->schedule[i].pack_id >= h->n_packs || kind > SYM_PACK_USE_GATHER)
            BAD("schedule entry %u: pack %u, kind %u", i, p->schedule[i].pack_id, kind);
        p->schedule[i].kind = (sym_pack_use_kind)kind;
    }
    for (uint32_t i = 0; i < h->n_packs; i++, rp += ST_PACK_BYTES) {
        sym_pack *k = &p->packs[i];
        uint32_t type = st_u32(rp + P_TYPE), flags = st_u32(rp + P_FLAGS);
        k->id = st_u32(rp + P_ID);
        k->layer = (int32_t)st_u32(rp + P_LAYER);
        k->piece0 = st_u32(rp + P_PIECE0);
        k->n_pieces = st_u32(rp + P_N_PIECES);
        k->range0 = st_u32(rp + P_RANGE0);
        k->n_ranges = st_u32(rp + P_N_RANGES);
        k->first_use = st_u32(rp + P_FIRST_USE);
        k->n_bytes = st_u64(rp + P_N_BYTES);
        k->buffer_bytes = st_u64(rp + P_RAW_BYTES);
        if (type >= SYM_PACK_TYPE_COUNT || flags & ~ST_PACK_OVERSIZED)
            BAD("pack %u: unknown type %u or flags 0x%x", i, type, flags);
        if (k->buffer_bytes == 0 || k->buffer_bytes > MAX_U62 || k->n_bytes > k->buffer_bytes)
            BAD("pack %u: %llu weight bytes in a %llu-byte buffer", i,
                (unsigned long long)k->n_bytes, (unsigned long long)k->buffer_bytes);
        k->type = (sym_pack_type)type;
        k->oversized = flags & ST_PACK_OVERSIZED;
    }
    p->max_pack_bytes = h->max_pack_bytes;
    p->cut = (sym_pack_cut)h->cut;
    p->n_layer = s->hp.n_layer;
    p->tied_embeddings = s->hp.tied_embeddings;
    p->n_expert = s->hp.n_expert;
    p->n_expert_used = s->hp.n_expert_used;
    sym_pack_plan_totals(p);
    sym_status st = sym_pack_plan_validate(p);
    if (st == SYM_ERR_INTERNAL) {
        sym_error_prefix("store: the pack table is inconsistent");
        st = SYM_ERR_FORMAT;
    }
    SYM_TRY(st);
    /* the planner's layout exactly: each range at the next aligned offset, so a buffer is its
     * weights plus less than SYM_PACK_RANGE_ALIGN per range */
    for (uint32_t i = 0; i < p->n_packs; i++) {
        const sym_pack_range *g = sym_pack_ranges(p, &p->packs[i]);
        uint64_t end = 0;
        for (uint32_t j = 0; j < p->packs[i].n_ranges; j++) {
            uint64_t at = (end + SYM_PACK_RANGE_ALIGN - 1) / SYM_PACK_RANGE_ALIGN *
                          SYM_PACK_RANGE_ALIGN;
            if (g[j].pack_offset != at)
                BAD("pack %u: range %u at buffer offset %llu, the layout puts it at %llu", i, j,
                    (unsigned long long)g[j].pack_offset, (unsigned long long)at);
            end = at + g[j].n_bytes;
        }
    }
    return SYM_OK;
}

/* The storage fields of every pack: codec, sizes, place in the file, checksums. */
static sym_status parse_storage(sym_store *s, const header *h, const uint8_t *rp) {
    uint64_t prev_end = h->data_offset, raw = 0, stored = 0;
    for (uint32_t i = 0; i < h->n_packs; i++, rp += ST_PACK_BYTES) {
        sym_store_pack *k = &s->packs[i];
        uint32_t id = rp[P_CODEC];
        if (id >= SYM_CODEC_COUNT) BAD("pack %u: unknown codec id %u", i, id);
        k->codec = (sym_codec){(sym_codec_id)id, rp[P_LEVEL], (sym_blosc_shuffle)rp[P_SHUFFLE],
                               (sym_blosc_inner)rp[P_INNER]};
        k->elem_size = st_u32(rp + P_ELEM_SIZE);
        k->raw_bytes = s->plan->packs[i].buffer_bytes;
        k->stored_bytes = st_u64(rp + P_STORED_BYTES);
        k->file_offset = st_u64(rp + P_FILE_OFFSET);
        k->raw_hash = st_u64(rp + P_RAW_HASH);
        k->stored_hash = st_u64(rp + P_STORED_HASH);
        bool blosc = id == SYM_CODEC_BLOSC, levels = blosc || id == SYM_CODEC_ZSTD ||
                                                     id == SYM_CODEC_BYTESPLIT;
        if ((!blosc && (rp[P_SHUFFLE] || rp[P_INNER])) || (!levels && rp[P_LEVEL]) ||
            st_u32(rp + 44))
            BAD("pack %u: parameters %u/%u/%u do not belong to codec %s", i, rp[P_SHUFFLE],
                rp[P_INNER], rp[P_LEVEL], sym_codec_id_name(k->codec.id));
        sym_status st = sym_codec_check(&k->codec, k->elem_size);
        if (st == SYM_ERR_ARG) {
            char why[256]; /* the detail buffer cannot be both source and destination */
            snprintf(why, sizeof why, "%s", sym_last_error());
            BAD("pack %u: %s", i, why);
        }
        if (st != SYM_OK) {
            sym_error_prefix("store: pack %u", i);
            return st;
        }
        if (k->stored_bytes == 0 || k->stored_bytes > k->raw_bytes ||
            (id == SYM_CODEC_NONE &&
             (k->stored_bytes != k->raw_bytes || k->stored_hash != k->raw_hash)))
            BAD("pack %u: %llu stored bytes for %llu raw with codec %s", i,
                (unsigned long long)k->stored_bytes, (unsigned long long)k->raw_bytes,
                sym_codec_id_name(k->codec.id));
        if (k->file_offset % SYM_STORE_ALIGN || k->file_offset > h->file_bytes ||
            k->stored_bytes > h->file_bytes - k->file_offset)
            BAD("pack %u: %llu bytes at %llu are unaligned or past the end of the file (%llu "
                "bytes)", i, (unsigned long long)k->stored_bytes,
                (unsigned long long)k->file_offset, (unsigned long long)h->file_bytes);
        if (k->file_offset < prev_end)
            BAD("pack %u at %llu overlaps %s (which ends at %llu)", i,
                (unsigned long long)k->file_offset, i ? "the previous pack" : "the tables",
                (unsigned long long)prev_end);
        prev_end = k->file_offset + k->stored_bytes;
        raw += k->raw_bytes;
        stored += k->stored_bytes;
    }
    if (raw != h->raw_bytes || stored != h->stored_bytes)
        BAD("the packs hold %llu raw / %llu stored bytes, the header says %llu / %llu",
            (unsigned long long)raw, (unsigned long long)stored,
            (unsigned long long)h->raw_bytes, (unsigned long long)h->stored_bytes);
    s->raw_bytes = raw;
    s->stored_bytes = stored;
    return SYM_OK;
}

/* ---- open / close -------------------------------------------------------------------------------- */

static sym_status alloc_plan(sym_store *s, const header *h) {
    sym_pack_plan *p = s->plan = sym_calloc(1, sizeof *p);
    if (!p) return SYM_FAIL(SYM_ERR_OOM, "store: out of memory");
    p->weights = sym_calloc(h->n_weights ? h->n_weights : 1, sizeof *p->weights);
    p->packs = sym_calloc(h->n_packs, sizeof *p->packs);
    p->pieces = sym_calloc(h->n_pieces ? h->n_pieces : 1, sizeof *p->pieces);
    p->ranges = sym_calloc(h->n_ranges ? h->n_ranges : 1, sizeof *p->ranges);
    p->schedule = sym_calloc(h->n_uses ? h->n_uses : 1, sizeof *p->schedule);
    s->packs = sym_calloc(h->n_packs, sizeof *s->packs);
    if (!p->weights || !p->packs || !p->pieces || !p->ranges || !p->schedule || !s->packs)
        return SYM_FAIL(SYM_ERR_OOM, "store: out of memory for the tables");
    p->n_weights = h->n_weights;
    p->n_packs = h->n_packs;
    p->n_pieces = h->n_pieces;
    p->n_ranges = h->n_ranges;
    p->n_uses = h->n_uses;
    return SYM_OK;
}

static sym_status parse(sym_store *s) {
    header h;
    memset(&h, 0, sizeof h);
    SYM_TRY(parse_header(s, &h));
    s->tables_bytes = h.tables_bytes;
    s->data_offset = h.data_offset;
    s->source = (sym_store_source)h.source;
    if (s->fd >= 0) {
        s->tables = sym_malloc((size_t)h.tables_bytes);
        if (!s->tables) return SYM_FAIL(SYM_ERR_OOM, "store: out of memory for %llu bytes of "
                                        "tables", (unsigned long long)h.tables_bytes);
        SYM_TRY(read_at(s, h.tables_offset, h.tables_bytes, s->tables));
        s->tab = s->tables;
    } else {
        s->tab = s->mem + h.tables_offset;
    }
    if (XXH3_64bits(s->tab, (size_t)h.tables_bytes) != h.tables_hash)
        return SYM_FAIL(SYM_ERR_CHECKSUM, "store: the tables are damaged (checksum mismatch)");
    const uint8_t *r = s->tab;
    SYM_TRY(parse_hparams(s, r));
    r += ST_HPARAMS_BYTES;
    const uint8_t *blobs = r;
    r += (uint64_t)h.n_blobs * ST_BLOB_BYTES;
    SYM_TRY(alloc_plan(s, &h));
    SYM_TRY(parse_weights(s, r, h.n_weights));
    r += (uint64_t)h.n_weights * ST_WEIGHT_BYTES;
    SYM_TRY(parse_plan(s, &h, r));
    SYM_TRY(parse_storage(s, &h, r));
    uint64_t area = (uint64_t)(r - s->tab) + (uint64_t)h.n_packs * ST_PACK_BYTES +
                    (uint64_t)h.n_pieces * ST_PIECE_BYTES + (uint64_t)h.n_ranges * ST_RANGE_BYTES +
                    (uint64_t)h.n_uses * ST_USE_BYTES;
    return parse_blobs(s, blobs, h.n_blobs, area);
}

static sym_status open_common(sym_store *s, sym_store **out) {
    sym_status st = parse(s);
    if (st != SYM_OK) {
        if (s->fd >= 0) sym_error_prefix("%s", s->path);
        sym_store_close(s);
        return st;
    }
    *out = s;
    return SYM_OK;
}

sym_status sym_store_open_memory(const void *data, size_t size, sym_store **out) {
    SYM_CHECK(out && (data || !size), SYM_ERR_ARG, "store: NULL argument");
    *out = NULL;
    sym_store *s = sym_calloc(1, sizeof *s);
    if (!s || !(s->path = sym_strdup("(memory)"))) {
        sym_free(s);
        return SYM_FAIL(SYM_ERR_OOM, "store: out of memory");
    }
    s->fd = -1;
    s->mem = data;
    s->size = size;
    return open_common(s, out);
}

sym_status sym_store_open(const char *path, sym_store **out) {
    SYM_CHECK(path && out, SYM_ERR_ARG, "store: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SYM_FAIL(SYM_ERR_IO, "store: cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return SYM_FAIL(SYM_ERR_IO, "store: '%s' is not a regular file", path);
    }
    sym_store *s = sym_calloc(1, sizeof *s);
    if (!s || !(s->path = sym_strdup(path))) {
        sym_free(s);
        close(fd);
        return SYM_FAIL(SYM_ERR_OOM, "store: out of memory");
    }
    s->fd = fd;
    s->size = (uint64_t)sb.st_size;
    return open_common(s, out);
}

void sym_store_close(sym_store *s) {
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    sym_gguf_close(s->gguf);
    sym_pack_plan_destroy(s->plan);
    sym_free(s->packs);
    sym_free(s->tables);
    sym_free(s->path);
    sym_free(s);
}

/* ---- accessors ----------------------------------------------------------------------------------- */

const char *sym_store_path(const sym_store *s) { return s->path; }
uint64_t sym_store_file_bytes(const sym_store *s) { return s->size; }
sym_store_source sym_store_source_format(const sym_store *s) { return s->source; }
const sym_hparams *sym_store_hparams(const sym_store *s) { return &s->hp; }
const sym_pack_plan *sym_store_plan(const sym_store *s) { return s->plan; }
uint64_t sym_store_raw_bytes(const sym_store *s) { return s->raw_bytes; }
uint64_t sym_store_stored_bytes(const sym_store *s) { return s->stored_bytes; }
const sym_gguf *sym_store_gguf(const sym_store *s) { return s->gguf; }
sym_str sym_store_tokenizer_json(const sym_store *s) { return s->tok_json; }
sym_str sym_store_tokenizer_config(const sym_store *s) { return s->tok_config; }
int64_t sym_store_bos_id(const sym_store *s) { return s->bos_id; }
int64_t sym_store_eos_id(const sym_store *s) { return s->eos_id; }

const sym_store_pack *sym_store_pack_at(const sym_store *s, uint32_t id) {
    return id < s->plan->n_packs ? &s->packs[id] : NULL;
}

/* ---- reading packs ------------------------------------------------------------------------------- */

sym_status sym_store_reader_create(sym_store_reader **out) {
    *out = NULL;
    sym_store_reader *r = sym_calloc(1, sizeof *r);
    if (!r) return SYM_FAIL(SYM_ERR_OOM, "store: out of memory");
    sym_status st = sym_codec_ctx_create(&r->codec);
    if (st != SYM_OK) {
        sym_free(r);
        return st;
    }
    *out = r;
    return SYM_OK;
}

void sym_store_reader_destroy(sym_store_reader *r) {
    if (!r) return;
    sym_codec_ctx_destroy(r->codec);
    sym_free(r->buf);
    sym_free(r);
}

const char *sym_store_pack_label(const sym_store *s, uint32_t id, char *buf, size_t cap) {
    const sym_pack *k = &s->plan->packs[id];
    if (k->layer >= 0)
        snprintf(buf, cap, "pack %u (%s, layer %d)", id, sym_pack_type_name(k->type), k->layer);
    else
        snprintf(buf, cap, "pack %u (%s)", id, sym_pack_type_name(k->type));
    return buf;
}

sym_status sym_store_decode_pack(const sym_store *s, sym_store_reader *r, uint32_t id,
                                 const void *in, void *dst) {
    SYM_CHECK(s && r && in && dst, SYM_ERR_ARG, "store: NULL argument");
    SYM_CHECK(id < s->plan->n_packs, SYM_ERR_ARG, "store: no pack %u (%u packs)", id,
              s->plan->n_packs);
    const sym_store_pack *k = &s->packs[id];
    char label[64];
    if (XXH3_64bits(in, (size_t)k->stored_bytes) != k->stored_hash)
        return SYM_FAIL(SYM_ERR_CHECKSUM, "store: %s: %s, %llu bytes at offset %llu, is damaged "
                        "(checksum mismatch)", s->path,
                        sym_store_pack_label(s, id, label, sizeof label),
                        (unsigned long long)k->stored_bytes, (unsigned long long)k->file_offset);
    if (k->codec.id == SYM_CODEC_NONE) { /* raw: the stored checksum is the raw one */
        if (in != dst) memcpy(dst, in, (size_t)k->raw_bytes);
        return SYM_OK;
    }
    sym_status st = sym_codec_decompress(r->codec, &k->codec, k->elem_size, in,
                                         (size_t)k->stored_bytes, dst, (size_t)k->raw_bytes);
    if (st != SYM_OK) {
        sym_error_prefix("store: %s: %s", s->path,
                         sym_store_pack_label(s, id, label, sizeof label));
        return st;
    }
    if (XXH3_64bits(dst, (size_t)k->raw_bytes) != k->raw_hash)
        return SYM_FAIL(SYM_ERR_CHECKSUM, "store: %s: %s decompresses to other bytes than were "
                        "stored (checksum mismatch)", s->path,
                        sym_store_pack_label(s, id, label, sizeof label));
    return SYM_OK;
}

sym_status sym_store_read_pack_with(const sym_store *s, sym_store_reader *r, uint32_t id,
                                    void *dst) {
    SYM_CHECK(s && r && dst, SYM_ERR_ARG, "store: NULL argument");
    SYM_CHECK(id < s->plan->n_packs, SYM_ERR_ARG, "store: no pack %u (%u packs)", id,
              s->plan->n_packs);
    const sym_store_pack *k = &s->packs[id];
    char label[64];
    void *in = dst;
    if (k->codec.id != SYM_CODEC_NONE) {
        if (r->cap < k->stored_bytes) {
            sym_free(r->buf);
            r->cap = 0;
            if (!(r->buf = sym_malloc((size_t)k->stored_bytes)))
                return SYM_FAIL(SYM_ERR_OOM, "store: out of memory for %llu bytes",
                                (unsigned long long)k->stored_bytes);
            r->cap = (size_t)k->stored_bytes;
        }
        in = r->buf;
    }
    sym_status st = read_at(s, k->file_offset, k->stored_bytes, in);
    if (st != SYM_OK) {
        sym_error_prefix("%s: %s", s->path, sym_store_pack_label(s, id, label, sizeof label));
        return st;
    }
    return sym_store_decode_pack(s, r, id, in, dst);
}

uint64_t sym_store_max_stored_bytes(const sym_store *s) {
    uint64_t m = 0;
    for (uint32_t i = 0; i < s->plan->n_packs; i++)
        if (s->packs[i].stored_bytes > m) m = s->packs[i].stored_bytes;
    return m;
}

/* The pack whose decoding needs the most scratch (its need in *bytes). */
static uint32_t scratch_pack(const sym_store *s, uint64_t *bytes) {
    uint32_t best = 0;
    *bytes = 0;
    for (uint32_t i = 0; i < s->plan->n_packs; i++) {
        const sym_store_pack *k = &s->packs[i];
        uint64_t n = sym_codec_decompress_scratch(&k->codec, k->elem_size, (size_t)k->raw_bytes);
        if (n > *bytes) *bytes = n, best = i;
    }
    return best;
}

uint64_t sym_store_decode_scratch_bytes(const sym_store *s) {
    uint64_t n;
    scratch_pack(s, &n);
    return n;
}

sym_status sym_store_reader_reserve(const sym_store *s, sym_store_reader *r) {
    uint64_t n;
    const sym_store_pack *k = &s->packs[scratch_pack(s, &n)];
    return n ? sym_codec_ctx_reserve(r->codec, &k->codec, k->elem_size, (size_t)k->raw_bytes)
             : SYM_OK;
}

uint64_t sym_store_reader_bytes(const sym_store *s) {
    uint64_t a = SYM_STORE_ALIGN;
    return (sym_store_max_stored_bytes(s) + a - 1) / a * a + sym_store_decode_scratch_bytes(s);
}

uint32_t sym_store_n_compressed(const sym_store *s) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->plan->n_packs; i++) n += s->packs[i].codec.id != SYM_CODEC_NONE;
    return n;
}

sym_status sym_store_read_pack(const sym_store *s, uint32_t id, void *dst) {
    sym_store_reader *r;
    SYM_TRY(sym_store_reader_create(&r));
    sym_status st = sym_store_read_pack_with(s, r, id, dst);
    sym_store_reader_destroy(r);
    return st;
}
