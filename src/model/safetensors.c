/* safetensors.c — see safetensors.h for the byte layout and what is checked. */
#include "model/safetensors.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "model/json.h"

typedef struct st_meta {
    char *key, *value;
} st_meta;

struct sym_st_file {
    const uint8_t *base;
    uint64_t size;
    bool mapped;
    uint64_t data_start; /* 8 + header_len */
    uint64_t n_tensors;
    sym_st_tensor *tensors; /* sorted by offset */
    uint64_t *by_name;      /* indices sorted by name */
    char *names;            /* every name, NUL-separated */
    uint64_t n_meta;
    st_meta *meta;
};

static const struct {
    const char *name;
    uint8_t size;
} k_dtypes[SYM_ST_DTYPE_COUNT] = {
    [SYM_ST_BOOL] = {"BOOL", 1},       [SYM_ST_U8] = {"U8", 1},     [SYM_ST_I8] = {"I8", 1},
    [SYM_ST_F8_E5M2] = {"F8_E5M2", 1}, [SYM_ST_F8_E4M3] = {"F8_E4M3", 1},
    [SYM_ST_I16] = {"I16", 2},         [SYM_ST_U16] = {"U16", 2},   [SYM_ST_F16] = {"F16", 2},
    [SYM_ST_BF16] = {"BF16", 2},       [SYM_ST_I32] = {"I32", 4},   [SYM_ST_U32] = {"U32", 4},
    [SYM_ST_F32] = {"F32", 4},         [SYM_ST_F64] = {"F64", 8},   [SYM_ST_I64] = {"I64", 8},
    [SYM_ST_U64] = {"U64", 8},
};

const char *sym_st_dtype_name(sym_st_dtype t) {
    return (unsigned)t < SYM_ST_DTYPE_COUNT ? k_dtypes[t].name : "?";
}
size_t sym_st_dtype_size(sym_st_dtype t) {
    return (unsigned)t < SYM_ST_DTYPE_COUNT ? k_dtypes[t].size : 0;
}
int sym_st_dtype_parse(const char *name, sym_st_dtype *out) {
    for (int i = 0; i < SYM_ST_DTYPE_COUNT; i++)
        if (!strcmp(name, k_dtypes[i].name)) {
            *out = (sym_st_dtype)i;
            return 1;
        }
    return 0;
}

/* ---- one tensor entry ----------------------------------------------------------------------------- */

/* Reads a non-negative JSON integer (json-c keeps values above INT64_MAX as uint64). */
static bool get_u64(json_object *v, uint64_t *out) {
    if (!json_object_is_type(v, json_type_int)) return false;
    int64_t x = json_object_get_int64(v);
    if (x < 0) return false;
    *out = x == INT64_MAX ? json_object_get_uint64(v) : (uint64_t)x;
    return true;
}

static sym_status parse_tensor(const char *name, json_object *e, uint64_t data_size,
                               uint64_t data_start, sym_st_tensor *t) {
    char nb[48], db[48];
    const char *nm = sym_json_show(name, nb);
    if (!json_object_is_type(e, json_type_object))
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: entry '%s' is not an object", nm);
    json_object *dtype = NULL, *shape = NULL, *offs = NULL;
    struct json_object_iter it;
    json_object_object_foreachC(e, it) {
        if (!strcmp(it.key, "dtype")) dtype = it.val;
        else if (!strcmp(it.key, "shape")) shape = it.val;
        else if (!strcmp(it.key, "data_offsets")) offs = it.val;
        else return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s' has unknown field '%s'",
                             nm, sym_json_show(it.key, db));
    }
    if (!dtype || !shape || !offs)
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s' lacks '%s'", nm,
                        !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!json_object_is_type(dtype, json_type_string))
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s': dtype is not a string", nm);
    if (!sym_st_dtype_parse(json_object_get_string(dtype), &t->dtype))
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s' has unknown dtype '%s'", nm,
                        sym_json_show(json_object_get_string(dtype), db));
    if (!json_object_is_type(shape, json_type_array))
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s': shape is not an array", nm);
    size_t nd = json_object_array_length(shape);
    if (nd > SYM_ST_MAX_DIMS)
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s' has %zu dimensions (at most "
                        "%d)", nm, nd, SYM_ST_MAX_DIMS);
    t->n_dims = (uint32_t)nd;
    uint64_t n = 1;
    for (size_t d = 0; d < nd; d++) {
        if (!get_u64(json_object_array_get_idx(shape, d), &t->shape[d]))
            return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s': shape[%zu] is not a "
                            "non-negative integer", nm, d);
        if (__builtin_mul_overflow(n, t->shape[d], &n))
            return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s': element count overflows",
                            nm);
    }
    t->n_elems = n;
    if (__builtin_mul_overflow(n, (uint64_t)k_dtypes[t->dtype].size, &t->n_bytes))
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s': byte size overflows", nm);
    uint64_t begin, end;
    if (!json_object_is_type(offs, json_type_array) || json_object_array_length(offs) != 2 ||
        !get_u64(json_object_array_get_idx(offs, 0), &begin) ||
        !get_u64(json_object_array_get_idx(offs, 1), &end))
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s': data_offsets is not two "
                        "non-negative integers", nm);
    if (begin > end)
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s': data_offsets [%llu, %llu] "
                        "end before they begin", nm, (unsigned long long)begin,
                        (unsigned long long)end);
    if (end > data_size)
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s': data_offsets [%llu, %llu] "
                        "run past the end of the data (%llu bytes)", nm,
                        (unsigned long long)begin, (unsigned long long)end,
                        (unsigned long long)data_size);
    if (end - begin != t->n_bytes)
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s' spans %llu bytes but its "
                        "shape and dtype %s need %llu", nm, (unsigned long long)(end - begin),
                        k_dtypes[t->dtype].name, (unsigned long long)t->n_bytes);
    t->file_offset = data_start + begin; /* begin <= data_size: no overflow */
    if (t->file_offset % k_dtypes[t->dtype].size != 0)
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensor '%s': data at file offset %llu is "
                        "not aligned to its %u-byte elements", nm,
                        (unsigned long long)t->file_offset, k_dtypes[t->dtype].size);
    return SYM_OK;
}

static sym_status parse_metadata(sym_st_file *f, json_object *m) {
    char nb[48];
    if (!json_object_is_type(m, json_type_object))
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: __metadata__ is not an object");
    size_t n = (size_t)json_object_object_length(m);
    f->meta = sym_calloc(n ? n : 1, sizeof *f->meta);
    if (!f->meta) return SYM_FAIL(SYM_ERR_OOM, "safetensors: out of memory");
    struct json_object_iter it;
    json_object_object_foreachC(m, it) {
        if (!json_object_is_type(it.val, json_type_string))
            return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: __metadata__ value '%s' is not a "
                            "string", sym_json_show(it.key, nb));
        st_meta *e = &f->meta[f->n_meta++];
        e->key = sym_strdup(it.key);
        e->value = sym_strdup(json_object_get_string(it.val));
        if (!e->key || !e->value) return SYM_FAIL(SYM_ERR_OOM, "safetensors: out of memory");
    }
    return SYM_OK;
}

/* ---- the header ------------------------------------------------------------------------------ */

static int cmp_offset(const void *a, const void *b) {
    const sym_st_tensor *x = a, *y = b;
    if (x->file_offset != y->file_offset) return x->file_offset < y->file_offset ? -1 : 1;
    return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes;
}

static int cmp_name(const void *a, const void *b, void *ctx) {
    const sym_st_file *f = ctx;
    return strcmp(f->tensors[*(const uint64_t *)a].name, f->tensors[*(const uint64_t *)b].name);
}

static sym_status parse_entries(sym_st_file *f, json_object *root) {
    char nb[48], nb2[48];
    uint64_t data_size = f->size - f->data_start;
    size_t n_entries = (size_t)json_object_object_length(root), names_bytes = 0;
    struct json_object_iter it;
    json_object_object_foreachC(root, it) names_bytes += strlen(it.key) + 1;
    f->tensors = sym_calloc(n_entries ? n_entries : 1, sizeof *f->tensors);
    f->names = sym_malloc(names_bytes ? names_bytes : 1);
    if (!f->tensors || !f->names) return SYM_FAIL(SYM_ERR_OOM, "safetensors: out of memory");
    char *np = f->names;
    json_object_object_foreachC(root, it) {
        if (!strcmp(it.key, "__metadata__")) {
            SYM_TRY(parse_metadata(f, it.val));
            continue;
        }
        sym_st_tensor *t = &f->tensors[f->n_tensors];
        SYM_TRY(parse_tensor(it.key, it.val, data_size, f->data_start, t));
        size_t l = strlen(it.key);
        if (l == 0) return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: a tensor has an empty name");
        memcpy(np, it.key, l + 1);
        t->name = np;
        np += l + 1;
        t->data = f->base + t->file_offset;
        f->n_tensors++;
    }
    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_offset);
    for (uint64_t i = 1; i < f->n_tensors; i++) {
        const sym_st_tensor *a = &f->tensors[i - 1], *b = &f->tensors[i];
        if (a->file_offset + a->n_bytes > b->file_offset)
            return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: tensors '%s' and '%s' overlap",
                            sym_json_show(a->name, nb), sym_json_show(b->name, nb2));
    }
    f->by_name = sym_calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->by_name);
    if (!f->by_name) return SYM_FAIL(SYM_ERR_OOM, "safetensors: out of memory");
    for (uint64_t i = 0; i < f->n_tensors; i++) f->by_name[i] = i;
    qsort_r(f->by_name, f->n_tensors, sizeof *f->by_name, cmp_name, f);
    /* sym_json_parse already rejected duplicate keys; names differing only after a NUL byte
     * (\u0000) collapse in json-c, and are caught there too. */
    return SYM_OK;
}

static sym_status parse(sym_st_file *f) {
    if (f->size < 8)
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: file of %llu bytes is too small for the "
                        "8-byte header length", (unsigned long long)f->size);
    uint64_t hlen;
    memcpy(&hlen, f->base, 8);
    if (hlen > f->size - 8)
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: header length %llu exceeds the file "
                        "(%llu bytes)", (unsigned long long)hlen, (unsigned long long)f->size);
    if (hlen > SYM_ST_MAX_HEADER_BYTES)
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: header length %llu exceeds the %u MB cap",
                        (unsigned long long)hlen, SYM_ST_MAX_HEADER_BYTES >> 20);
    if (hlen < 2 || f->base[8] != '{')
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: header does not start with '{' (not a "
                        "safetensors file?)");
    f->data_start = 8 + hlen;
    json_object *root = NULL;
    SYM_TRY(sym_json_parse("safetensors header", (const char *)f->base + 8, (size_t)hlen, &root));
    sym_status st = SYM_OK;
    if (!json_object_is_type(root, json_type_object))
        st = SYM_FAIL(SYM_ERR_FORMAT, "safetensors: header is not a JSON object");
    else
        st = parse_entries(f, root);
    json_object_put(root);
    return st;
}

static sym_status open_common(sym_st_file *f, sym_st_file **out) {
    sym_status st = parse(f);
    if (st != SYM_OK) {
        sym_st_close(f);
        return st;
    }
    *out = f;
    return SYM_OK;
}

sym_status sym_st_open_memory(const void *data, size_t size, sym_st_file **out) {
    *out = NULL;
    SYM_CHECK(data != NULL || size == 0, SYM_ERR_ARG, "safetensors: NULL buffer");
    sym_st_file *f = sym_calloc(1, sizeof *f);
    if (!f) return SYM_FAIL(SYM_ERR_OOM, "safetensors: out of memory");
    f->base = data;
    f->size = size;
    return open_common(f, out);
}

sym_status sym_st_open(const char *path, sym_st_file **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SYM_FAIL(SYM_ERR_IO, "safetensors: cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return SYM_FAIL(SYM_ERR_IO, "safetensors: '%s' is not a regular file", path);
    }
    if (sb.st_size < 8) {
        close(fd);
        return SYM_FAIL(SYM_ERR_FORMAT, "safetensors: '%s' is %lld bytes, too small for the "
                        "8-byte header length", path, (long long)sb.st_size);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return SYM_FAIL(SYM_ERR_IO, "safetensors: cannot map '%s': %s", path, strerror(e));
    sym_st_file *f = sym_calloc(1, sizeof *f);
    if (!f) {
        munmap(map, (size_t)sb.st_size);
        return SYM_FAIL(SYM_ERR_OOM, "safetensors: out of memory");
    }
    f->base = map;
    f->size = (uint64_t)sb.st_size;
    f->mapped = true;
    sym_status st = open_common(f, out);
    if (st != SYM_OK) sym_error_prefix("%s", path);
    return st;
}

void sym_st_close(sym_st_file *f) {
    if (!f) return;
    if (f->mapped) munmap((void *)f->base, f->size);
    for (uint64_t i = 0; i < f->n_meta; i++) {
        sym_free(f->meta[i].key);
        sym_free(f->meta[i].value);
    }
    sym_free(f->meta);
    sym_free(f->tensors);
    sym_free(f->by_name);
    sym_free(f->names);
    sym_free(f);
}

uint64_t sym_st_n_tensors(const sym_st_file *f) { return f->n_tensors; }
uint64_t sym_st_file_size(const sym_st_file *f) { return f->size; }

const sym_st_tensor *sym_st_tensor_at(const sym_st_file *f, uint64_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const sym_st_tensor *sym_st_find(const sym_st_file *f, const char *name) {
    uint64_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->tensors[f->by_name[mid]].name, name);
        if (c == 0) return &f->tensors[f->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *sym_st_metadata(const sym_st_file *f, const char *key) {
    for (uint64_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
    return NULL;
}
