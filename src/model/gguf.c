#include "model/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

struct sym_gguf {
    const uint8_t *base;
    uint64_t size;
    bool mapped; /* true: munmap on close */
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    uint64_t n_kv;
    sym_gguf_kv *kvs;
    uint64_t *kv_sorted; /* kv indices sorted by key, for lookup */
    uint64_t n_tensors;
    sym_gguf_tensor *tensors;
    uint64_t *tensor_sorted; /* tensor indices sorted by name */
    sym_str *str_pool;       /* backing store of every string array's index */
};

/* ---- type tables ---------------------------------------------------------------------------- */

static const char *const k_value_type_names[SYM_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const uint8_t k_value_type_size[SYM_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *sym_gguf_type_name(sym_gguf_type t) {
    return (unsigned)t < SYM_GGUF_TYPE_COUNT ? k_value_type_names[t] : "unknown";
}

typedef struct ggml_type_info {
    const char *name;
    uint32_t block, block_bytes;
} ggml_type_info;

/* ggml's type ids; gaps are ids ggml removed. */
static const ggml_type_info k_ggml_types[] = {
    [0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},         [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},     [6] = {"Q5_0", 32, 22},      [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 36},      [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},  [12] = {"Q4_K", 256, 144},   [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},   [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110},  [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136},[24] = {"I8", 1, 1},         [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},        [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},  [30] = {"BF16", 1, 2},       [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},
};
#define N_GGML_TYPES (sizeof k_ggml_types / sizeof k_ggml_types[0])

const char *sym_ggml_type_name(uint32_t type) {
    return type < N_GGML_TYPES ? k_ggml_types[type].name : NULL;
}

bool sym_ggml_type_layout(uint32_t type, uint32_t *block, uint32_t *block_bytes) {
    if (type >= N_GGML_TYPES || !k_ggml_types[type].name) return false;
    *block = k_ggml_types[type].block;
    *block_bytes = k_ggml_types[type].block_bytes;
    return true;
}

bool sym_str_eq(sym_str s, const char *z) {
    size_t n = strlen(z);
    return s.len == n && memcmp(s.ptr, z, n) == 0;
}

static int str_cmp(sym_str a, sym_str b) {
    uint64_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* ---- cursor over the buffer: every read is bounds-checked ------------------------------------ */

typedef struct cursor {
    const uint8_t *base;
    uint64_t size, pos;
} cursor;

static sym_status need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: file truncated while reading %s at offset %llu "
                        "(need %llu bytes, %llu left)", what, (unsigned long long)c->pos,
                        (unsigned long long)n, (unsigned long long)(c->size - c->pos));
    return SYM_OK;
}

static sym_status rd_u32(cursor *c, uint32_t *v, const char *what) {
    SYM_TRY(need(c, 4, what));
    memcpy(v, c->base + c->pos, 4);
    c->pos += 4;
    return SYM_OK;
}

static sym_status rd_u64(cursor *c, uint64_t *v, const char *what) {
    SYM_TRY(need(c, 8, what));
    memcpy(v, c->base + c->pos, 8);
    c->pos += 8;
    return SYM_OK;
}

static sym_status rd_str(cursor *c, sym_str *s, const char *what) {
    uint64_t len;
    SYM_TRY(rd_u64(c, &len, what));
    SYM_TRY(need(c, len, what));
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += len;
    return SYM_OK;
}

/* Prints at most 64 bytes of a name from the file, replacing non-printable bytes. */
static const char *show(sym_str s, char buf[80]) {
    uint64_t n = s.len < 64 ? s.len : 64;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        buf[i] = (ch >= 32 && ch < 127) ? (char)ch : '?';
    }
    strcpy(buf + n, s.len > 64 ? "..." : "");
    return buf;
}

/* ---- metadata --------------------------------------------------------------------------------- */

/* Reads one value. String arrays: with pool NULL (first pass) the strings are only checked and
 * counted into *n_strs; otherwise their index is written at pool[*n_strs...]. */
static sym_status read_value(cursor *c, sym_gguf_kv *kv, sym_str *pool, uint64_t *n_strs) {
    char nb[80];
    if (kv->type == SYM_GGUF_STRING) return rd_str(c, &kv->str, "a string value");
    if (kv->type != SYM_GGUF_ARRAY) {
        kv->data = c->base + c->pos;
        SYM_TRY(need(c, k_value_type_size[kv->type], "a scalar value"));
        c->pos += k_value_type_size[kv->type];
        if (kv->type == SYM_GGUF_BOOL && kv->data[0] > 1)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: key '%s': bool value %u is not 0 or 1",
                            show(kv->key, nb), kv->data[0]);
        return SYM_OK;
    }
    uint32_t et;
    SYM_TRY(rd_u32(c, &et, "an array element type"));
    if (et >= SYM_GGUF_TYPE_COUNT)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: key '%s': unknown array element type %u",
                        show(kv->key, nb), et);
    if (et == SYM_GGUF_ARRAY)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: key '%s': nested arrays are not supported",
                        show(kv->key, nb));
    kv->arr_type = (sym_gguf_type)et;
    SYM_TRY(rd_u64(c, &kv->arr_n, "an array length"));
    if (et == SYM_GGUF_STRING) {
        /* each string takes at least its 8-byte length */
        if (kv->arr_n > (c->size - c->pos) / 8)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: key '%s': array of %llu strings cannot fit in "
                            "the %llu bytes left", show(kv->key, nb),
                            (unsigned long long)kv->arr_n,
                            (unsigned long long)(c->size - c->pos));
        sym_str scratch;
        for (uint64_t i = 0; i < kv->arr_n; i++)
            SYM_TRY(rd_str(c, pool ? &pool[*n_strs + i] : &scratch, "an array string"));
        if (pool) kv->strs = &pool[*n_strs];
        *n_strs += kv->arr_n;
        return SYM_OK;
    }
    uint64_t esz = k_value_type_size[et];
    if (kv->arr_n > (c->size - c->pos) / esz)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: key '%s': array of %llu %s elements runs past the "
                        "end of the file", show(kv->key, nb), (unsigned long long)kv->arr_n,
                        k_value_type_names[et]);
    kv->data = c->base + c->pos;
    if (et == SYM_GGUF_BOOL)
        for (uint64_t i = 0; i < kv->arr_n; i++)
            if (kv->data[i] > 1)
                return SYM_FAIL(SYM_ERR_FORMAT, "gguf: key '%s': bool element %llu is %u",
                                show(kv->key, nb), (unsigned long long)i, kv->data[i]);
    c->pos += kv->arr_n * esz;
    return SYM_OK;
}

/* Parses the n_kv entries starting at c (see read_value for pool). */
static sym_status read_kvs(sym_gguf *g, cursor *c, sym_str *pool, uint64_t *n_strs) {
    *n_strs = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        sym_gguf_kv *kv = &g->kvs[i];
        memset(kv, 0, sizeof *kv);
        kv->raw = c->base + c->pos;
        SYM_TRY(rd_str(c, &kv->key, "a metadata key"));
        if (kv->key.len == 0)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: metadata key %llu is empty",
                            (unsigned long long)i);
        uint32_t t;
        SYM_TRY(rd_u32(c, &t, "a metadata value type"));
        char nb[80];
        if (t >= SYM_GGUF_TYPE_COUNT)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: key '%s': unknown value type %u",
                            show(kv->key, nb), t);
        kv->type = (sym_gguf_type)t;
        SYM_TRY(read_value(c, kv, pool, n_strs));
        kv->raw_len = (uint64_t)(c->base + c->pos - kv->raw);
    }
    return SYM_OK;
}

/* ---- sorting for lookup and duplicate detection --------------------------------------------- */

static int cmp_kv(const void *a, const void *b, void *ctx) {
    const sym_gguf *g = ctx;
    return str_cmp(g->kvs[*(const uint64_t *)a].key, g->kvs[*(const uint64_t *)b].key);
}
static int cmp_tensor_name(const void *a, const void *b, void *ctx) {
    const sym_gguf *g = ctx;
    return str_cmp(g->tensors[*(const uint64_t *)a].name, g->tensors[*(const uint64_t *)b].name);
}
static int cmp_tensor_offset(const void *a, const void *b, void *ctx) {
    const sym_gguf *g = ctx;
    uint64_t x = g->tensors[*(const uint64_t *)a].offset;
    uint64_t y = g->tensors[*(const uint64_t *)b].offset;
    return x < y ? -1 : x > y;
}

static void sort_indices(const sym_gguf *g, uint64_t *idx, uint64_t n,
                         int (*cmp)(const void *, const void *, void *)) {
    for (uint64_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, n, sizeof *idx, cmp, (void *)g);
}

/* ---- tensors ----------------------------------------------------------------------------------- */

static sym_status read_tensor_info(cursor *c, uint64_t i, sym_gguf_tensor *t) {
    char nb[80];
    SYM_TRY(rd_str(c, &t->name, "a tensor name"));
    if (t->name.len == 0)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensor %llu has an empty name",
                        (unsigned long long)i);
    SYM_TRY(rd_u32(c, &t->n_dims, "a tensor's dimension count"));
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensor '%s' has %u dimensions (1..%d allowed)",
                        show(t->name, nb), t->n_dims, GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims) SYM_TRY(rd_u64(c, &t->ne[d], "a tensor dimension"));
        if (t->ne[d] == 0)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensor '%s' has a zero dimension",
                            show(t->name, nb));
        if (__builtin_mul_overflow(n, t->ne[d], &n) || n > (UINT64_MAX >> 4))
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensor '%s': element count overflows",
                            show(t->name, nb));
    }
    t->n_elems = n;
    SYM_TRY(rd_u32(c, &t->type, "a tensor type"));
    uint32_t block, block_bytes;
    if (!sym_ggml_type_layout(t->type, &block, &block_bytes))
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensor '%s' has unknown type id %u",
                        show(t->name, nb), t->type);
    if (t->ne[0] % block != 0)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensor '%s': row length %llu is not a multiple "
                        "of the %s block size %u", show(t->name, nb),
                        (unsigned long long)t->ne[0], sym_ggml_type_name(t->type), block);
    t->n_bytes = n / block * block_bytes; /* n < 2^60, block_bytes < 2^9: no overflow */
    SYM_TRY(rd_u64(c, &t->offset, "a tensor offset"));
    return SYM_OK;
}

static sym_status check_tensor_data(sym_gguf *g) {
    char nb[80], nb2[80];
    uint64_t data_size = g->size >= g->data_offset ? g->size - g->data_offset : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        sym_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensor '%s': offset %llu is not a multiple of "
                            "the alignment %llu", show(t->name, nb),
                            (unsigned long long)t->offset, (unsigned long long)g->alignment);
        if (t->offset > data_size || t->n_bytes > data_size - t->offset)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensor '%s' (%llu bytes at data offset %llu) "
                            "ends past the end of the file (data section is %llu bytes)",
                            show(t->name, nb), (unsigned long long)t->n_bytes,
                            (unsigned long long)t->offset, (unsigned long long)data_size);
        t->data = g->base + g->data_offset + t->offset;
    }
    uint64_t *idx = sym_malloc(g->n_tensors * sizeof *idx);
    if (!idx) return SYM_FAIL(SYM_ERR_OOM, "gguf: out of memory");
    sort_indices(g, idx, g->n_tensors, cmp_tensor_offset);
    sym_status st = SYM_OK;
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        const sym_gguf_tensor *a = &g->tensors[idx[i - 1]], *b = &g->tensors[idx[i]];
        if (a->offset + a->n_bytes > b->offset) {
            st = SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensors '%s' and '%s' overlap",
                          show(a->name, nb), show(b->name, nb2));
            break;
        }
    }
    sym_free(idx);
    return st;
}

/* ---- open / close ------------------------------------------------------------------------------ */

static sym_status parse(sym_gguf *g) {
    cursor c = {g->base, g->size, 0};
    uint32_t magic;
    SYM_TRY(rd_u32(&c, &magic, "the magic"));
    if (magic != GGUF_MAGIC)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: not a GGUF file (bad magic 0x%08x)", magic);
    SYM_TRY(rd_u32(&c, &g->version, "the version"));
    if (g->version == 1)
        return SYM_FAIL(SYM_ERR_UNSUPPORTED, "gguf: version 1 files are not supported "
                        "(convert with a current llama.cpp)");
    if (g->version != 2 && g->version != 3)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: unsupported version %u (2 and 3 are read; a "
                        "big-endian file?)", g->version);
    SYM_TRY(rd_u64(&c, &g->n_tensors, "the tensor count"));
    SYM_TRY(rd_u64(&c, &g->n_kv, "the metadata count"));
    /* smallest kv: 8 (key len) + 1 (key) + 4 (type) + 1 (u8); smallest tensor info: 8 + 1 + 4 +
     * 8 + 4 + 8 */
    if (g->n_kv > (g->size - c.pos) / 14)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: %llu metadata entries cannot fit in a %llu-byte "
                        "file", (unsigned long long)g->n_kv, (unsigned long long)g->size);
    if (g->n_tensors > (g->size - c.pos) / 33)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: %llu tensors cannot fit in a %llu-byte file",
                        (unsigned long long)g->n_tensors, (unsigned long long)g->size);

    g->kvs = sym_calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kvs);
    g->kv_sorted = sym_calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv_sorted);
    if (!g->kvs || !g->kv_sorted) return SYM_FAIL(SYM_ERR_OOM, "gguf: out of memory");

    /* Pass 1 validates metadata and counts array strings; pass 2 fills the string index. */
    uint64_t kv_start = c.pos, n_strs;
    SYM_TRY(read_kvs(g, &c, NULL, &n_strs));
    if (n_strs) {
        g->str_pool = sym_calloc(n_strs, sizeof *g->str_pool);
        if (!g->str_pool) return SYM_FAIL(SYM_ERR_OOM, "gguf: out of memory for %llu strings",
                                          (unsigned long long)n_strs);
        c.pos = kv_start;
        SYM_TRY(read_kvs(g, &c, g->str_pool, &n_strs));
    }
    sort_indices(g, g->kv_sorted, g->n_kv, cmp_kv);
    for (uint64_t i = 1; i < g->n_kv; i++) {
        sym_str a = g->kvs[g->kv_sorted[i - 1]].key, b = g->kvs[g->kv_sorted[i]].key;
        char nb[80];
        if (str_cmp(a, b) == 0)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: duplicate metadata key '%s'", show(a, nb));
    }

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const sym_gguf_kv *al = sym_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != SYM_GGUF_U32)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: general.alignment has type %s (u32 expected)",
                            sym_gguf_type_name(al->type));
        uint32_t a;
        memcpy(&a, al->data, 4);
        if (a == 0 || (a & (a - 1)) != 0)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: general.alignment %u is not a power of two", a);
        g->alignment = a;
    }

    g->tensors = sym_calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    g->tensor_sorted = sym_calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensor_sorted);
    if (!g->tensors || !g->tensor_sorted) return SYM_FAIL(SYM_ERR_OOM, "gguf: out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++) SYM_TRY(read_tensor_info(&c, i, &g->tensors[i]));
    sort_indices(g, g->tensor_sorted, g->n_tensors, cmp_tensor_name);
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        sym_str a = g->tensors[g->tensor_sorted[i - 1]].name;
        sym_str b = g->tensors[g->tensor_sorted[i]].name;
        char nb[80];
        if (str_cmp(a, b) == 0)
            return SYM_FAIL(SYM_ERR_FORMAT, "gguf: duplicate tensor name '%s'", show(a, nb));
    }
    /* c.pos <= size, alignment <= 2^31: no overflow */
    g->data_offset = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors > 0) SYM_TRY(check_tensor_data(g));
    return SYM_OK;
}

static sym_status open_common(sym_gguf *g, sym_gguf **out) {
    sym_status st = parse(g);
    if (st != SYM_OK) {
        sym_gguf_close(g);
        return st;
    }
    *out = g;
    return SYM_OK;
}

sym_status sym_gguf_open_memory(const void *data, size_t size, sym_gguf **out) {
    SYM_CHECK(data != NULL || size == 0, SYM_ERR_ARG, "gguf: NULL buffer");
    sym_gguf *g = sym_calloc(1, sizeof *g);
    if (!g) return SYM_FAIL(SYM_ERR_OOM, "gguf: out of memory");
    g->base = data;
    g->size = size;
    return open_common(g, out);
}

sym_status sym_gguf_open(const char *path, sym_gguf **out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SYM_FAIL(SYM_ERR_IO, "gguf: cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return SYM_FAIL(SYM_ERR_IO, "gguf: cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return SYM_FAIL(SYM_ERR_IO, "gguf: '%s' is not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: '%s' is empty", path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return SYM_FAIL(SYM_ERR_IO, "gguf: cannot map '%s': %s", path, strerror(e));
    sym_gguf *g = sym_calloc(1, sizeof *g);
    if (!g) {
        munmap(map, (size_t)sb.st_size);
        return SYM_FAIL(SYM_ERR_OOM, "gguf: out of memory");
    }
    g->base = map;
    g->size = (uint64_t)sb.st_size;
    g->mapped = true;
    sym_status st = open_common(g, out);
    if (st != SYM_OK) sym_error_prefix("%s", path);
    return st;
}

void sym_gguf_close(sym_gguf *g) {
    if (!g) return;
    if (g->mapped) munmap((void *)g->base, g->size);
    sym_free(g->kvs);
    sym_free(g->kv_sorted);
    sym_free(g->tensors);
    sym_free(g->tensor_sorted);
    sym_free(g->str_pool);
    sym_free(g);
}

/* ---- accessors --------------------------------------------------------------------------------- */

uint32_t sym_gguf_version(const sym_gguf *g) { return g->version; }
uint64_t sym_gguf_alignment(const sym_gguf *g) { return g->alignment; }
uint64_t sym_gguf_data_offset(const sym_gguf *g) { return g->data_offset; }
uint64_t sym_gguf_file_size(const sym_gguf *g) { return g->size; }
const uint8_t *sym_gguf_base(const sym_gguf *g) { return g->base; }
uint64_t sym_gguf_n_kv(const sym_gguf *g) { return g->n_kv; }
uint64_t sym_gguf_n_tensors(const sym_gguf *g) { return g->n_tensors; }

const sym_gguf_kv *sym_gguf_kv_at(const sym_gguf *g, uint64_t i) {
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const sym_gguf_tensor *sym_gguf_tensor_at(const sym_gguf *g, uint64_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const sym_gguf_kv *sym_gguf_find(const sym_gguf *g, const char *key) {
    sym_str k = {key, strlen(key)};
    uint64_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(g->kvs[g->kv_sorted[mid]].key, k);
        if (c == 0) return &g->kvs[g->kv_sorted[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const sym_gguf_tensor *sym_gguf_find_tensor(const sym_gguf *g, const char *name) {
    sym_str k = {name, strlen(name)};
    uint64_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(g->tensors[g->tensor_sorted[mid]].name, k);
        if (c == 0) return &g->tensors[g->tensor_sorted[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static int64_t scalar_i64(sym_gguf_type t, const uint8_t *p, bool *ok_unsigned_big) {
    *ok_unsigned_big = false;
    switch (t) {
    case SYM_GGUF_U8: case SYM_GGUF_BOOL: return p[0];
    case SYM_GGUF_I8: return (int8_t)p[0];
    case SYM_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case SYM_GGUF_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case SYM_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case SYM_GGUF_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case SYM_GGUF_U64: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (v > INT64_MAX) *ok_unsigned_big = true;
        return (int64_t)v;
    }
    case SYM_GGUF_I64: { int64_t v; memcpy(&v, p, 8); return v; }
    default: return 0;
    }
}

static bool is_int_type(sym_gguf_type t) {
    return t <= SYM_GGUF_I32 || t == SYM_GGUF_U64 || t == SYM_GGUF_I64;
}

int64_t sym_gguf_arr_i64(const sym_gguf_kv *kv, uint64_t i) {
    bool big;
    return scalar_i64(kv->arr_type, kv->data + i * k_value_type_size[kv->arr_type], &big);
}

double sym_gguf_arr_f64(const sym_gguf_kv *kv, uint64_t i) {
    const uint8_t *p = kv->data + i * k_value_type_size[kv->arr_type];
    if (kv->arr_type == SYM_GGUF_F32) { float v; memcpy(&v, p, 4); return v; }
    if (kv->arr_type == SYM_GGUF_F64) { double v; memcpy(&v, p, 8); return v; }
    bool big;
    return (double)scalar_i64(kv->arr_type, p, &big);
}

static sym_status missing(const char *key) {
    return SYM_FAIL(SYM_ERR_FORMAT, "gguf: missing metadata key '%s'", key);
}

static sym_status wrong_type(const char *key, sym_gguf_type t, const char *want) {
    return SYM_FAIL(SYM_ERR_FORMAT, "gguf: metadata key '%s' has type %s (%s expected)", key,
                    sym_gguf_type_name(t), want);
}

sym_status sym_gguf_get_i64(const sym_gguf *g, const char *key, int64_t *out) {
    const sym_gguf_kv *kv = sym_gguf_find(g, key);
    if (!kv) return missing(key);
    if (!is_int_type(kv->type) || kv->type == SYM_GGUF_BOOL) return wrong_type(key, kv->type, "integer");
    bool big;
    int64_t v = scalar_i64(kv->type, kv->data, &big);
    if (big) return SYM_FAIL(SYM_ERR_FORMAT, "gguf: metadata key '%s' is out of range", key);
    *out = v;
    return SYM_OK;
}

sym_status sym_gguf_get_u32(const sym_gguf *g, const char *key, uint32_t *out) {
    int64_t v = 0; /* set by the getter on success; -O3 cannot see that */
    SYM_TRY(sym_gguf_get_i64(g, key, &v));
    if (v < 0 || v > UINT32_MAX)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: metadata key '%s' = %lld is out of range", key,
                        (long long)v);
    *out = (uint32_t)v;
    return SYM_OK;
}

sym_status sym_gguf_get_u32_opt(const sym_gguf *g, const char *key, uint32_t *out) {
    return sym_gguf_find(g, key) ? sym_gguf_get_u32(g, key, out) : SYM_OK;
}

sym_status sym_gguf_get_f32(const sym_gguf *g, const char *key, float *out) {
    const sym_gguf_kv *kv = sym_gguf_find(g, key);
    if (!kv) return missing(key);
    if (kv->type == SYM_GGUF_F32) {
        memcpy(out, kv->data, 4);
    } else if (kv->type == SYM_GGUF_F64) {
        double d;
        memcpy(&d, kv->data, 8);
        *out = (float)d;
    } else if (is_int_type(kv->type) && kv->type != SYM_GGUF_BOOL) {
        bool big;
        *out = (float)scalar_i64(kv->type, kv->data, &big);
    } else {
        return wrong_type(key, kv->type, "number");
    }
    return SYM_OK;
}

sym_status sym_gguf_get_f32_opt(const sym_gguf *g, const char *key, float *out) {
    return sym_gguf_find(g, key) ? sym_gguf_get_f32(g, key, out) : SYM_OK;
}

sym_status sym_gguf_get_bool_opt(const sym_gguf *g, const char *key, bool *out) {
    const sym_gguf_kv *kv = sym_gguf_find(g, key);
    if (!kv) return SYM_OK;
    if (kv->type != SYM_GGUF_BOOL) return wrong_type(key, kv->type, "bool");
    *out = kv->data[0] != 0;
    return SYM_OK;
}

sym_status sym_gguf_get_str(const sym_gguf *g, const char *key, sym_str *out) {
    const sym_gguf_kv *kv = sym_gguf_find(g, key);
    if (!kv) return missing(key);
    if (kv->type != SYM_GGUF_STRING) return wrong_type(key, kv->type, "string");
    *out = kv->str;
    return SYM_OK;
}

sym_status sym_gguf_get_str_opt(const sym_gguf *g, const char *key, sym_str *out) {
    return sym_gguf_find(g, key) ? sym_gguf_get_str(g, key, out) : SYM_OK;
}

sym_status sym_gguf_get_arr(const sym_gguf *g, const char *key, sym_gguf_type elem,
                            const sym_gguf_kv **out) {
    const sym_gguf_kv *kv = sym_gguf_find(g, key);
    if (!kv) return missing(key);
    if (kv->type != SYM_GGUF_ARRAY) return wrong_type(key, kv->type, "array");
    if (elem != SYM_GGUF_TYPE_COUNT && kv->arr_type != elem)
        return SYM_FAIL(SYM_ERR_FORMAT, "gguf: metadata array '%s' holds %s (%s expected)", key,
                        sym_gguf_type_name(kv->arr_type), sym_gguf_type_name(elem));
    *out = kv;
    return SYM_OK;
}
