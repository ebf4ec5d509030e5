/* gguf.h — reading GGUF v2/v3 files: metadata, tensor table, data, all validated before use.
 *
 * Byte layout (little-endian):
 *   u32 magic "GGUF" | u32 version (2, 3) | u64 n_tensors | u64 n_kv
 *   n_kv ×  { str key | u32 value_type | value }
 *              str   = u64 len, len bytes (no NUL)
 *              value = scalar | str | array: u32 elem_type, u64 n, n × elem
 *   n_tensors × { str name | u32 n_dims (1..4) | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to general.alignment (default 32) | data section (tensor offsets are relative to it)
 *
 * The file is mmapped read-only, never copied. Every pointer handed out points into the mapping
 * and stays valid until sym_gguf_close. Strings are (ptr, len) pairs, not NUL-terminated.
 */
#ifndef SYM_MODEL_GGUF_H
#define SYM_MODEL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef enum sym_gguf_type {
    SYM_GGUF_U8 = 0,
    SYM_GGUF_I8 = 1,
    SYM_GGUF_U16 = 2,
    SYM_GGUF_I16 = 3,
    SYM_GGUF_U32 = 4,
    SYM_GGUF_I32 = 5,
    SYM_GGUF_F32 = 6,
    SYM_GGUF_BOOL = 7,
    SYM_GGUF_STRING = 8,
    SYM_GGUF_ARRAY = 9,
    SYM_GGUF_U64 = 10,
    SYM_GGUF_I64 = 11,
    SYM_GGUF_F64 = 12,
    SYM_GGUF_TYPE_COUNT
} sym_gguf_type;

/* ggml tensor type ids (the subset we run, plus the ids needed to name the others). */
enum {
    SYM_GGML_F32 = 0,
    SYM_GGML_F16 = 1,
    SYM_GGML_Q4_0 = 2,
    SYM_GGML_Q8_0 = 8,
    SYM_GGML_Q4_K = 12,
    SYM_GGML_BF16 = 30,
};

typedef struct sym_str {
    const char *ptr;
    uint64_t len;
} sym_str;

typedef struct sym_gguf_kv {
    sym_str key;
    sym_gguf_type type;
    /* type == ARRAY: element type and count; data points at the first element. */
    sym_gguf_type arr_type;
    uint64_t arr_n;
    const uint8_t *data; /* scalar: the value's bytes; array of scalars: the elements */
    sym_str str;         /* type == STRING */
    const sym_str *strs; /* array of strings: arr_n entries (owned by the sym_gguf) */
    const uint8_t *raw;  /* the whole encoded entry (key, type, value) as in the file, */
    uint64_t raw_len;    /* so a writer can copy it verbatim */
} sym_gguf_kv;

typedef struct sym_gguf_tensor {
    sym_str name;
    uint32_t n_dims;
    uint64_t ne[4];   /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint32_t type;    /* ggml type id */
    uint64_t offset;  /* relative to the data section */
    uint64_t n_bytes;
    uint64_t n_elems;
    const void *data; /* into the mapping */
} sym_gguf_tensor;

typedef struct sym_gguf sym_gguf;

/* Maps and parses path. SYM_ERR_IO if it cannot be opened or mapped, SYM_ERR_FORMAT with a precise
 * detail for any malformed content. On success the caller owns *out (sym_gguf_close). */
sym_status sym_gguf_open(const char *path, sym_gguf **out);
/* Parses a buffer the caller keeps alive and unchanged until sym_gguf_close (used by the fuzzer
 * and tests). */
sym_status sym_gguf_open_memory(const void *data, size_t size, sym_gguf **out);
void sym_gguf_close(sym_gguf *g);

uint32_t sym_gguf_version(const sym_gguf *g);
uint64_t sym_gguf_alignment(const sym_gguf *g);
uint64_t sym_gguf_data_offset(const sym_gguf *g); /* file offset of the data section */
uint64_t sym_gguf_file_size(const sym_gguf *g);
const uint8_t *sym_gguf_base(const sym_gguf *g);  /* start of the mapping */

uint64_t sym_gguf_n_kv(const sym_gguf *g);
const sym_gguf_kv *sym_gguf_kv_at(const sym_gguf *g, uint64_t i);
const sym_gguf_kv *sym_gguf_find(const sym_gguf *g, const char *key); /* NULL if absent */

uint64_t sym_gguf_n_tensors(const sym_gguf *g);
const sym_gguf_tensor *sym_gguf_tensor_at(const sym_gguf *g, uint64_t i);
const sym_gguf_tensor *sym_gguf_find_tensor(const sym_gguf *g, const char *name);

/* Typed getters. Return SYM_OK and set *out; SYM_ERR_FORMAT if the key is absent ("missing
 * metadata key 'x'") or has a type that cannot hold the requested one (integers convert when the
 * value fits, f64 converts to f32). The _opt variants return SYM_OK leaving *out untouched when
 * the key is absent. */
sym_status sym_gguf_get_u32(const sym_gguf *g, const char *key, uint32_t *out);
sym_status sym_gguf_get_u32_opt(const sym_gguf *g, const char *key, uint32_t *out);
sym_status sym_gguf_get_i64(const sym_gguf *g, const char *key, int64_t *out);
sym_status sym_gguf_get_f32(const sym_gguf *g, const char *key, float *out);
sym_status sym_gguf_get_f32_opt(const sym_gguf *g, const char *key, float *out);
sym_status sym_gguf_get_bool_opt(const sym_gguf *g, const char *key, bool *out);
sym_status sym_gguf_get_str(const sym_gguf *g, const char *key, sym_str *out);
sym_status sym_gguf_get_str_opt(const sym_gguf *g, const char *key, sym_str *out);
/* An array with elements of type elem (SYM_GGUF_TYPE_COUNT: any). */
sym_status sym_gguf_get_arr(const sym_gguf *g, const char *key, sym_gguf_type elem,
                            const sym_gguf_kv **out);

/* Reads element i of an integer/float array as i64 / f64 (caller checks bounds). */
int64_t sym_gguf_arr_i64(const sym_gguf_kv *kv, uint64_t i);
double sym_gguf_arr_f64(const sym_gguf_kv *kv, uint64_t i);

const char *sym_gguf_type_name(sym_gguf_type t);
/* "F32", "Q4_K", …; NULL for an id ggml does not define. */
const char *sym_ggml_type_name(uint32_t type);
/* Block size (elements) and bytes per block; false for unknown ids. */
bool sym_ggml_type_layout(uint32_t type, uint32_t *block, uint32_t *block_bytes);

bool sym_str_eq(sym_str s, const char *z);

#endif
