/* The pack store (src/pack/store*.c) and .sympack models (src/model/model_store.c):
 * - round trip: every codec (auto, none, zstd, blosc byte/bit, zfp, bytesplit) on synthetic
 *   f32/f16/bf16 models cut into many small packs, on the shared aidreams260K and the bundled
 *   toy model, and from a safetensors directory: opened through sym_model_open, every weight is
 *   bit-identical to the source, hyperparameters and tokenizer metadata equal; every pack read
 *   from the store equals the buffer the planner describes; a .sympack repacks to the same
 *   weights; file and memory opens agree;
 * - corruption: a flipped byte in a pack (SYM_ERR_CHECKSUM naming it, other packs still read),
 *   every byte of the header (magic/version/size: FORMAT, the rest: CHECKSUM), bytes of the
 *   tables (CHECKSUM), truncation at many points (FORMAT "truncated"), and fields rewritten with
 *   valid checksums — codec id out of range, overlapping packs, offsets past the end, an unknown
 *   weight, a bad blob — each with its precise status and detail;
 * - writing: an interrupted write (progress returns non-zero) and a full disk (RLIMIT_FSIZE)
 *   leave no output and no temporary file and an older output as it was; the source is
 *   unchanged (hash before and after); the source itself as output is refused. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "model/model.h"
#include "model/writer.h"
#include "pack/store.h"
#include "store_util.h"
#include "test_util.h"

static char g_dir[1024];
static test_rng g_rng;

static const char *tmp_path(const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", g_dir, name);
    return buf;
}

static uint64_t file_hash(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
    size_t n = 0;
    unsigned char *p = test_read_file(path, &n);
    uint64_t h = p ? XXH3_64bits(p, n) : 0;
    free(p);
    return h;
}

/* All the files of a model, hashed together. */
static uint64_t model_hash(const sym_model *m) {
    uint64_t h = 0;
    for (int i = 0; i < sym_model_n_files(m); i++)
        h = h * 31 + file_hash(sym_model_file_path(m, i));
    return h;
}

static int n_temporaries(void) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.tmp\\.' > /dev/null", g_dir);
    return system(cmd) == 0;
}

/* ---- round trips ------------------------------------------------------------------------------- */

/* Every weight of b equals a's (by name), and so do hyperparameters and the tokenizer summary. */
static void check_same_model(const sym_model *a, const sym_model *b, const char *what) {
    CHECK(!memcmp(sym_model_hparams(a), sym_model_hparams(b), sizeof(sym_hparams)),
          "%s: hyperparameters differ", what);
    CHECK(sym_model_n_weights(a) == sym_model_n_weights(b), "%s: %llu vs %llu weights", what,
          (unsigned long long)sym_model_n_weights(a), (unsigned long long)sym_model_n_weights(b));
    for (uint64_t i = 0; i < sym_model_n_weights(a); i++) {
        const sym_weight *x = sym_model_weight_at(a, i);
        const sym_weight *y = sym_model_find_weight(b, x->name);
        CHECK(y != NULL, "%s: %s missing", what, x->name);
        if (!y) continue;
        CHECK(x->type == y->type && x->n_rows == y->n_rows && x->n_cols == y->n_cols &&
                  x->n_bytes == y->n_bytes && !memcmp(x->data, y->data, x->n_bytes),
              "%s: weight %s differs", what, x->name);
        CHECK((uintptr_t)y->data % 64 == 0, "%s: %s not aligned", what, x->name);
    }
    sym_tokenizer_summary ta, tb;
    CHECK_OK(sym_model_tokenizer_summary(a, &ta));
    CHECK_OK(sym_model_tokenizer_summary(b, &tb));
    CHECK(!strcmp(ta.model, tb.model) && ta.n_tokens == tb.n_tokens && ta.bos_id == tb.bos_id &&
              ta.eos_id == tb.eos_id,
          "%s: tokenizer %s/%lld/%lld/%lld vs %s/%lld/%lld/%lld", what, ta.model,
          (long long)ta.n_tokens, (long long)ta.bos_id, (long long)ta.eos_id, tb.model,
          (long long)tb.n_tokens, (long long)tb.bos_id, (long long)tb.eos_id);
    const sym_gguf *ga = sym_model_gguf(a), *gb = sym_model_gguf(b);
    CHECK(!ga == !gb, "%s: GGUF metadata on one side only", what);
    if (ga && gb) { /* copied byte for byte */
        CHECK(sym_gguf_n_kv(ga) == sym_gguf_n_kv(gb), "%s: metadata counts differ", what);
        for (uint64_t i = 0; i < sym_gguf_n_kv(ga) && i < sym_gguf_n_kv(gb); i++) {
            const sym_gguf_kv *x = sym_gguf_kv_at(ga, i), *y = sym_gguf_kv_at(gb, i);
            CHECK(x->raw_len == y->raw_len && !memcmp(x->raw, y->raw, x->raw_len),
                  "%s: metadata entry %llu differs", what, (unsigned long long)i);
        }
    }
}

/* Each pack read from the store equals the planner's buffer built from the source. */
static void check_packs(const sym_model *src, const sym_store *s, const char *what) {
    const sym_pack_plan *p = sym_store_plan(s);
    CHECK_OK(sym_pack_plan_validate(p));
    for (uint32_t i = 0; i < p->n_packs; i++) {
        const sym_store_pack *k = sym_store_pack_at(s, i);
        uint8_t *buf = malloc(k->raw_bytes), *want = calloc(1, k->raw_bytes);
        CHECK_OK(sym_store_read_pack(s, i, buf));
        const sym_pack_piece *pc = sym_pack_pieces(p, &p->packs[i]);
        for (uint32_t j = 0; j < p->packs[i].n_pieces; j++) {
            const sym_pack_weight *pw = &p->weights[pc[j].weight_idx];
            const sym_weight *w = sym_model_find_weight(src, pw->name);
            memcpy(want + pc[j].pack_offset,
                   (const uint8_t *)w->data + (uint64_t)pc[j].row0 * pw->row_bytes, pc[j].n_bytes);
        }
        CHECK(!memcmp(buf, want, k->raw_bytes), "%s: pack %u differs from its plan", what, i);
        CHECK(k->file_offset % SYM_STORE_ALIGN == 0, "%s: pack %u unaligned", what, i);
        free(buf);
        free(want);
    }
}

/* Packs src into out with o, reopens it, compares; returns the stats. */
static sym_store_write_stats pack_and_check(const char *src_path, const char *out,
                                            const sym_store_write_options *o, const char *what) {
    sym_store_write_stats stats;
    memset(&stats, 0, sizeof stats);
    sym_model *src = NULL, *back = NULL;
    CHECK_OK(sym_model_open(src_path, &src));
    if (!src) return stats;
    uint64_t before = model_hash(src);
    CHECK_OK(sym_store_write(src, out, o, &stats));
    CHECK(model_hash(src) == before && before != 0, "%s: source changed", what);
    CHECK_OK(sym_model_open(out, &back));
    if (back) {
        CHECK(sym_model_format_of(back) == SYM_MODEL_SYMPACK, "%s: format", what);
        check_same_model(src, back, what);
        check_packs(src, sym_model_store(back), what);
        CHECK(sym_store_file_bytes(sym_model_store(back)) == stats.file_bytes &&
                  stats.file_bytes % SYM_STORE_ALIGN == 0,
              "%s: file size", what);
        /* memory open agrees */
        size_t n = 0;
        unsigned char *bytes = test_read_file(out, &n);
        sym_store *ms = NULL;
        CHECK_OK(sym_store_open_memory(bytes, n, &ms));
        if (ms) check_packs(src, ms, what);
        sym_store_close(ms);
        free(bytes);
    }
    sym_model_close(back);
    sym_model_close(src);
    CHECK(!n_temporaries(), "%s: temporary files left", what);
    return stats;
}

static void test_codecs_synthetic(void) {
    static const sym_codec_id ids[] = {SYM_CODEC_COUNT /* auto */, SYM_CODEC_NONE, SYM_CODEC_ZSTD,
                                       SYM_CODEC_BLOSC, SYM_CODEC_ZFP, SYM_CODEC_BYTESPLIT};
    for (int t = 0; t < SYM_DT_COUNT; t++) {
        sym_make_model_options mo;
        sym_make_model_options_init(&mo);
        mo.dtype = (sym_dtype)t;
        char src[1200], out[1200], what[96];
        snprintf(what, sizeof what, "tiny-%s.gguf", sym_dtype_name(mo.dtype));
        tmp_path(what, src, sizeof src);
        CHECK_OK(sym_make_model(&mo, src));
        for (size_t c = 0; c < sizeof ids / sizeof *ids; c++) {
            if (ids[c] != SYM_CODEC_COUNT && !sym_codec_available(ids[c])) continue;
            /* many packs, row slices */
            sym_store_write_options o = test_store_opts(ids[c], 16 << 10);
            if (ids[c] == SYM_CODEC_BLOSC && t == SYM_DT_BF16) {
                o.codec.shuffle = SYM_BLOSC_BIT;
                o.codec.inner = SYM_BLOSC_ZSTD;
            }
            snprintf(what, sizeof what, "tiny-%s/%s", sym_dtype_name(mo.dtype),
                     ids[c] == SYM_CODEC_COUNT ? "auto" : sym_codec_id_name(ids[c]));
            sym_store_write_stats s = pack_and_check(src, tmp_path("tiny.sympack", out, sizeof out),
                                                     &o, what);
            CHECK(s.n_packs > 20, "%s: only %u packs", what, s.n_packs);
            if (ids[c] == SYM_CODEC_NONE)
                CHECK(s.n_by_codec[SYM_CODEC_NONE] == s.n_packs && s.stored_bytes == s.raw_bytes,
                      "%s: not all raw", what);
            if (ids[c] == SYM_CODEC_ZFP && t != SYM_DT_F32) /* no 16-bit floats in ZFP */
                CHECK(s.n_not_applicable == s.n_packs, "%s: %u of %u not applicable", what,
                      s.n_not_applicable, s.n_packs);
            if (ids[c] == SYM_CODEC_ZSTD || ids[c] == SYM_CODEC_BYTESPLIT)
                CHECK(s.n_by_codec[ids[c]] > 0 && s.stored_bytes < s.raw_bytes,
                      "%s: nothing compressed", what);
        }
    }
}

static void test_real_models(void) {
    char src[1024], out[1200];
    test_shared_path("models/aidreams260K.gguf", src, sizeof src);
    for (int id = 0; id < SYM_CODEC_COUNT; id++) {
        if (!sym_codec_available((sym_codec_id)id)) continue;
        sym_store_write_options o = test_store_opts((sym_codec_id)id, 48 << 10);
        char what[64];
        snprintf(what, sizeof what, "aidreams/%s", sym_codec_id_name((sym_codec_id)id));
        sym_store_write_stats s =
            pack_and_check(src, tmp_path("aidreams-codec.sympack", out, sizeof out), &o, what);
        CHECK(id == SYM_CODEC_NONE || s.n_by_codec[id] > 0, "%s: no pack used the codec", what);
    }
    sym_store_write_options o = test_store_opts(SYM_CODEC_COUNT, 64 << 10);
    pack_and_check(src, tmp_path("aidreams.sympack", out, sizeof out), &o, "aidreams/auto");
    o = test_store_opts(SYM_CODEC_BYTESPLIT, 1 << 20);
    pack_and_check(SYM_SOURCE_DIR "/models/toy-fortunes.gguf",
                   tmp_path("toy.sympack", out, sizeof out), &o, "toy-fortunes/bytesplit");
    /* a .sympack repacks (its metadata copy is the source's) */
    char again[1200];
    o = test_store_opts(SYM_CODEC_ZSTD, 32 << 10);
    pack_and_check(out, tmp_path("toy2.sympack", again, sizeof again), &o, "toy repacked");
    sym_model *a = NULL, *b = NULL;
    CHECK_OK(sym_model_open(SYM_SOURCE_DIR "/models/toy-fortunes.gguf", &a));
    CHECK_OK(sym_model_open(again, &b));
    if (a && b) check_same_model(a, b, "toy repacked vs gguf");
    sym_model_close(a);
    sym_model_close(b);
}

static void test_safetensors_source(void) {
    sym_make_model_options mo;
    sym_make_model_options_init(&mo);
    mo.format = SYM_MODEL_SAFETENSORS;
    mo.dtype = SYM_DT_BF16;
    mo.shard_bytes = 100 << 10; /* several shards */
    snprintf(mo.arch, sizeof mo.arch, "qwen2");
    char dir[1200], out[1200], cmd[1300];
    tmp_path("st_model", dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "rm");
    CHECK_OK(sym_make_model(&mo, dir));
    sym_store_write_options o = test_store_opts(SYM_CODEC_COUNT, 24 << 10);
    pack_and_check(dir, tmp_path("st.sympack", out, sizeof out), &o, "safetensors/auto");
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(out, &m));
    if (m) {
        sym_str json, config;
        CHECK(sym_model_tokenizer_text(m, &json, &config) && json.ptr && json.len > 100,
              "tokenizer.json kept");
        CHECK(sym_model_gguf(m) == NULL, "no GGUF metadata for a safetensors source");
        CHECK(sym_model_hparams(m)->rope_neox == 1, "rope layout kept");
    }
    sym_model_close(m);
}

/* ---- corruption -------------------------------------------------------------------------------- */

static unsigned char *g_good;
static size_t g_good_n;

/* Recomputes the tables and header checksums of a store image after an edit (over the tables
 * as the unedited file places them). */
static void rehash(unsigned char *p) {
    uint64_t toff, tbytes, h;
    memcpy(&toff, g_good + 24, 8);
    memcpy(&tbytes, g_good + 32, 8);
    h = XXH3_64bits(p + toff, tbytes);
    memcpy(p + 104, &h, 8);
    h = XXH3_64bits(p, 120);
    memcpy(p + 120, &h, 8);
}

static sym_status open_copy(const unsigned char *p, size_t n, const char *name) {
    char path[1200];
    tmp_path(name, path, sizeof path);
    CHECK(test_write_file(path, p, n) == 0, "write %s", path);
    sym_model *m = NULL;
    sym_status st = sym_model_open(path, &m);
    sym_model_close(m);
    return st;
}

#define EXPECT(st, want, needle, ...)                                                             \
    do {                                                                                          \
        sym_status st_ = (st);                                                                    \
        CHECK(st_ == (want) && strstr(sym_last_error(), (needle)), __VA_ARGS__);                  \
        if (st_ != (want) || !strstr(sym_last_error(), (needle)))                                 \
            fprintf(stderr, "  got %s: %s (wanted %s containing '%s')\n", sym_status_name(st_),  \
                    sym_last_error(), sym_status_name(want), (needle));                           \
    } while (0)

static uint64_t u64_at(const unsigned char *p, size_t off) {
    uint64_t v;
    memcpy(&v, p + off, 8);
    return v;
}
static uint32_t u32_at(const unsigned char *p, size_t off) {
    uint32_t v;
    memcpy(&v, p + off, 4);
    return v;
}

/* Offset of pack i's record in the image. */
static size_t pack_rec(const unsigned char *p, uint32_t i) {
    uint32_t n_blobs = u32_at(p, 68), n_weights = u32_at(p, 48);
    return 128 + 128 + (size_t)n_blobs * 24 + (size_t)n_weights * 96 + (size_t)i * 96;
}

static void test_corruption(void) {
    char good[1200];
    tmp_path("aidreams.sympack", good, sizeof good);
    g_good = test_read_file(good, &g_good_n);
    CHECK(g_good && g_good_n > 8192, "read %s", good);
    if (!g_good) return;
    unsigned char *p = malloc(g_good_n);
    sym_store *s = NULL;
    CHECK_OK(sym_store_open_memory(g_good, g_good_n, &s));
    if (!s) return;
    uint32_t n_packs = sym_store_plan(s)->n_packs;

    /* a flipped byte in each pack: the model names it; the store still reads the others */
    for (uint32_t i = 0; i < n_packs; i++) {
        const sym_store_pack *k = sym_store_pack_at(s, i);
        memcpy(p, g_good, g_good_n);
        p[k->file_offset + test_rng_below(&g_rng, k->stored_bytes)] ^= 0x10;
        char needle[32];
        snprintf(needle, sizeof needle, "pack %u (", i);
        EXPECT(open_copy(p, g_good_n, "bad.sympack"), SYM_ERR_CHECKSUM, needle, "pack %u flip", i);
        sym_store *bs = NULL;
        CHECK_OK(sym_store_open_memory(p, g_good_n, &bs));
        for (uint32_t j = 0; bs && j < n_packs; j++) {
            uint8_t *buf = malloc(sym_store_pack_at(bs, j)->raw_bytes);
            CHECK_STATUS(sym_store_read_pack(bs, j, buf), j == i ? SYM_ERR_CHECKSUM : SYM_OK);
            free(buf);
        }
        sym_store_close(bs);
    }
    /* padding between packs is not covered: a flip there changes nothing */
    const sym_store_pack *k0 = sym_store_pack_at(s, 0);
    if ((k0->file_offset + k0->stored_bytes) % SYM_STORE_ALIGN) {
        memcpy(p, g_good, g_good_n);
        p[k0->file_offset + k0->stored_bytes] ^= 1;
        CHECK_OK(open_copy(p, g_good_n, "bad.sympack"));
    }
    /* every header byte */
    for (size_t b = 0; b < 128; b++) {
        memcpy(p, g_good, g_good_n);
        p[b] ^= 0x04;
        sym_store *x = NULL;
        sym_status st = sym_store_open_memory(p, g_good_n, &x);
        sym_store_close(x);
        if (b < 8) EXPECT(st, SYM_ERR_FORMAT, "bad magic", "header byte %zu", b);
        else if (b < 12) EXPECT(st, SYM_ERR_FORMAT, "version", "header byte %zu", b);
        else if (b < 16) EXPECT(st, SYM_ERR_FORMAT, "header size", "header byte %zu", b);
        else EXPECT(st, SYM_ERR_CHECKSUM, "header is damaged", "header byte %zu", b);
    }
    /* bytes of the tables */
    uint64_t tbytes = u64_at(g_good, 32);
    for (int t = 0; t < 200; t++) {
        memcpy(p, g_good, g_good_n);
        size_t at = 128 + (size_t)test_rng_below(&g_rng, tbytes);
        p[at] ^= (uint8_t)(1u << test_rng_below(&g_rng, 8));
        EXPECT(open_copy(p, g_good_n, "bad.sympack"), SYM_ERR_CHECKSUM, "tables are damaged",
               "tables byte %zu", at);
    }
    /* truncation anywhere, growth */
    size_t cuts[] = {0, 1, 7, 8, 64, 127, 128, 129, 128 + (size_t)tbytes / 2,
                     (size_t)u64_at(g_good, 40), (size_t)k0->file_offset + 5, g_good_n / 2,
                     g_good_n - 4096, g_good_n - 1};
    for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++)
        EXPECT(open_copy(g_good, cuts[c], "cut.sympack"), SYM_ERR_FORMAT, "truncated",
               "cut at %zu", cuts[c]);
    for (int t = 0; t < 40; t++) {
        size_t cut = (size_t)test_rng_below(&g_rng, g_good_n);
        EXPECT(open_copy(g_good, cut, "cut.sympack"), SYM_ERR_FORMAT, "truncated", "cut %zu", cut);
    }
    unsigned char *longer = calloc(1, g_good_n + 4096);
    memcpy(longer, g_good, g_good_n);
    EXPECT(open_copy(longer, g_good_n + 4096, "long.sympack"), SYM_ERR_FORMAT, "trailing",
           "grown file");
    free(longer);

    /* fields rewritten with valid checksums: the structure checks name them */
    struct edit {
        size_t off;
        int width; /* 1, 4, 8 */
        uint64_t value;
        sym_status want;
        const char *needle;
    } edits[] = {
        {pack_rec(g_good, 0) + 36, 1, 9, SYM_ERR_FORMAT, "unknown codec id 9"},
        {pack_rec(g_good, 1) + 36, 1, 255, SYM_ERR_FORMAT, "pack 1: unknown codec id 255"},
        {pack_rec(g_good, 1) + 72, 8, u64_at(g_good, pack_rec(g_good, 0) + 72), SYM_ERR_FORMAT,
         "overlaps"},
        {pack_rec(g_good, 0) + 72, 8, g_good_n, SYM_ERR_FORMAT, "past the end"},
        {pack_rec(g_good, 0) + 72, 8, UINT64_MAX - 4095, SYM_ERR_FORMAT, "past the end"},
        {pack_rec(g_good, 0) + 64, 8, UINT64_MAX, SYM_ERR_FORMAT, "stored bytes"},
        {pack_rec(g_good, 0) + 72, 8, 4096 + 1, SYM_ERR_FORMAT, "unaligned"},
        {pack_rec(g_good, 0) + 40, 4, 3, SYM_ERR_FORMAT, "element size"},
        {pack_rec(g_good, 0) + 56, 8, 1ull << 40, SYM_ERR_FORMAT, "inconsistent"},
        {pack_rec(g_good, 0) + 20, 4, 0xffffffffu, SYM_ERR_FORMAT, "inconsistent"},
        {pack_rec(g_good, 0) + 4, 4, 77, SYM_ERR_FORMAT, "unknown type"},
        {8, 4, 2, SYM_ERR_FORMAT, "version 2"},
        {16, 8, 1ull << 62, SYM_ERR_FORMAT, "truncated"},
        {32, 8, UINT64_MAX, SYM_ERR_FORMAT, "do not fit"},
        {40, 8, 4096 * 1000000ull, SYM_ERR_FORMAT, "do not fit"},
        {48, 4, 0xffffffffu, SYM_ERR_FORMAT, "need"},
        {52, 4, 0, SYM_ERR_FORMAT, "no packs"},
        {72, 8, 0, SYM_ERR_FORMAT, "limit"},
        {80, 4, 5, SYM_ERR_FORMAT, "unknown cut"},
        {84, 4, 9, SYM_ERR_FORMAT, "source format"},
        {88, 8, 12345, SYM_ERR_FORMAT, "the header says"},
        {128, 1, 'X', SYM_ERR_UNSUPPORTED, "architecture"},
        {128 + 32, 4, 0, SYM_ERR_FORMAT, "hyperparameters"},
        {128 + 80, 8, 100000, SYM_ERR_FORMAT, "BOS"},
        {128 + 128, 4, 7, SYM_ERR_FORMAT, "blob 0"},
        {128 + 128 + 16, 8, 1ull << 40, SYM_ERR_FORMAT, "blob 0"},
        {128 + 128 + 24, 1, 'z', SYM_ERR_FORMAT, "not a tensor"},
        {128 + 128 + 24 + 64, 8, 3, SYM_ERR_FORMAT, "shape"},
        {128 + 128 + 24 + 56, 4, 7, SYM_ERR_FORMAT, "dtype"},
    };
    for (size_t e = 0; e < sizeof edits / sizeof *edits; e++) {
        memcpy(p, g_good, g_good_n);
        if (edits[e].width == 1) p[edits[e].off] = (uint8_t)edits[e].value;
        else memcpy(p + edits[e].off, &edits[e].value, (size_t)edits[e].width);
        rehash(p);
        sym_store *x = NULL;
        EXPECT(sym_store_open_memory(p, g_good_n, &x), edits[e].want, edits[e].needle,
               "edit %zu at %zu", e, edits[e].off);
        sym_store_close(x);
    }
    /* a damaged GGUF metadata blob (checksums fixed): its parser's detail */
    uint64_t moff = u64_at(g_good, 128 + 128 + 8);
    memcpy(p, g_good, g_good_n);
    memcpy(p + 128 + moff + 4, "\x07\0\0\0", 4); /* GGUF version 7 */
    rehash(p);
    sym_store *x = NULL;
    EXPECT(sym_store_open_memory(p, g_good_n, &x), SYM_ERR_FORMAT, "metadata blob: gguf",
           "metadata version");
    sym_store_close(x);
    /* random field edits with valid checksums never crash (ASan) and never pass silently
     * unless nothing that matters changed */
    size_t tables_end = 128 + (size_t)tbytes;
    for (int t = 0; t < 3000; t++) {
        memcpy(p, g_good, g_good_n);
        int n = 1 + (int)test_rng_below(&g_rng, 3);
        for (int i = 0; i < n; i++)
            p[16 + test_rng_below(&g_rng, tables_end - 16)] = (uint8_t)test_rng_u64(&g_rng);
        if (t % 2) rehash(p);
        x = NULL;
        sym_status st = sym_store_open_memory(p, g_good_n, &x);
        if (st == SYM_OK) {
            const sym_pack_plan *pl = sym_store_plan(x);
            for (uint32_t i = 0; i < pl->n_packs; i++) {
                uint8_t *buf = malloc(sym_store_pack_at(x, i)->raw_bytes);
                sym_status rs = sym_store_read_pack(x, i, buf);
                CHECK(rs == SYM_OK || rs == SYM_ERR_CHECKSUM || rs == SYM_ERR_FORMAT,
                      "read after edit: %s", sym_status_name(rs));
                free(buf);
            }
        } else {
            CHECK(st == SYM_ERR_FORMAT || st == SYM_ERR_CHECKSUM || st == SYM_ERR_UNSUPPORTED,
                  "random edit: %s (%s)", sym_status_name(st), sym_last_error());
        }
        sym_store_close(x);
    }
    sym_store_close(s);
    free(p);
}

/* ---- writing ----------------------------------------------------------------------------------- */

static int g_calls;
static int stop_after_one(void *user, uint64_t done, uint64_t total) {
    (void)user;
    CHECK(done <= total, "progress %llu > %llu", (unsigned long long)done,
          (unsigned long long)total);
    return ++g_calls >= 2;
}

static void test_write_failures(void) {
    char src[1024], out[1200];
    test_shared_path("models/aidreams260K.gguf", src, sizeof src);
    tmp_path("w.sympack", out, sizeof out);
    unlink(out);
    sym_model *m = NULL;
    CHECK_OK(sym_model_open(src, &m));
    if (!m) return;
    uint64_t src_hash = file_hash(src);
    sym_store_write_options o = test_store_opts(SYM_CODEC_ZSTD, 64 << 10);
    /* interrupted: nothing left */
    o.progress = stop_after_one;
    g_calls = 0;
    EXPECT(sym_store_write(m, out, &o, NULL), SYM_ERR_IO, "interrupted", "interrupted write");
    CHECK(access(out, F_OK) != 0, "output exists after an interrupted write");
    CHECK(!n_temporaries(), "temporary files left after an interrupted write");
    /* an older output survives an interrupted write unchanged */
    o.progress = NULL;
    CHECK_OK(sym_store_write(m, out, &o, NULL));
    uint64_t old = file_hash(out);
    o.progress = stop_after_one;
    o.codec = sym_codec_default(SYM_CODEC_BYTESPLIT);
    g_calls = 0;
    EXPECT(sym_store_write(m, out, &o, NULL), SYM_ERR_IO, "interrupted", "second write");
    CHECK(file_hash(out) == old, "an interrupted write changed the older output");
    CHECK(!n_temporaries(), "temporary files left");
    o.progress = NULL;
    /* a full disk */
    struct rlimit lim, saved;
    getrlimit(RLIMIT_FSIZE, &saved);
    lim = saved;
    lim.rlim_cur = 300 << 10;
    signal(SIGXFSZ, SIG_IGN);
    unlink(out);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    sym_status st = sym_store_write(m, out, &o, NULL);
    setrlimit(RLIMIT_FSIZE, &saved);
    EXPECT(st, SYM_ERR_IO, "cannot write", "full disk");
    CHECK(access(out, F_OK) != 0, "output exists after a full disk");
    CHECK(!n_temporaries(), "temporary files left after a full disk");
    /* the source as output; a directory as output; bad options */
    CHECK_STATUS(sym_store_write(m, src, &o, NULL), SYM_ERR_ARG);
    CHECK_STATUS(sym_store_write(m, g_dir, &o, NULL), SYM_ERR_ARG);
    o.codec.level = 0;
    CHECK_STATUS(sym_store_write(m, out, &o, NULL), SYM_ERR_ARG);
    o = test_store_opts(SYM_CODEC_ZSTD, 0);
    CHECK_STATUS(sym_store_write(m, out, &o, NULL), SYM_ERR_ARG);
    CHECK(file_hash(src) == src_hash, "the source changed");
    sym_model_close(m);
    /* a missing store */
    sym_store *s = NULL;
    CHECK_STATUS(sym_store_open(out, &s), SYM_ERR_IO);
}

int main(void) {
    g_rng = test_rng_init("test_store");
    snprintf(g_dir, sizeof g_dir, "%s/tests/test_store.tmp", SYM_BUILD_DIR);
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
    if (system(cmd) != 0) return 1;
    test_codecs_synthetic();
    test_real_models();
    test_safetensors_source();
    test_corruption();
    test_write_failures();
    free(g_good);
    return test_finish("test_store");
}
