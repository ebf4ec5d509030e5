/* safetensors.h — reading one .safetensors file: the JSON header, validated before use, and the
 * tensor data in a read-only mapping.
 *
 * Byte layout:
 *   u64 header_len (little-endian) | header_len bytes of JSON (UTF-8, may be padded with spaces)
 *   | data region (to the end of the file; tensor offsets are relative to its start)
 *   JSON: { "__metadata__": { "key": "string value", ... },        (optional)
 *           "<tensor name>": { "dtype": "F32" | "F16" | "BF16" | ...,
 *                              "shape": [d0, d1, ...],              (row-major, d_last contiguous)
 *                              "data_offsets": [begin, end] }, ... }
 *   end - begin == product(shape) * dtype size; tensors never overlap.
 *
 * Checked: header length vs file size and a 100 MB cap, strict JSON, duplicate keys (which JSON
 * parsers silently merge), field types, known dtypes, shape products (overflow), offsets inside
 * the data region, sizes, overlaps, element alignment of each tensor's data. Tensors of any known
 * dtype are accepted here; the model loader decides which dtypes it runs.
 */
#ifndef SYM_MODEL_SAFETENSORS_H
#define SYM_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define SYM_ST_MAX_DIMS 8
#define SYM_ST_MAX_HEADER_BYTES (100u << 20)

typedef enum sym_st_dtype {
    SYM_ST_BOOL = 0,
    SYM_ST_U8,
    SYM_ST_I8,
    SYM_ST_F8_E5M2,
    SYM_ST_F8_E4M3,
    SYM_ST_I16,
    SYM_ST_U16,
    SYM_ST_F16,
    SYM_ST_BF16,
    SYM_ST_I32,
    SYM_ST_U32,
    SYM_ST_F32,
    SYM_ST_F64,
    SYM_ST_I64,
    SYM_ST_U64,
    SYM_ST_DTYPE_COUNT
} sym_st_dtype;

typedef struct sym_st_tensor {
    const char *name;     /* NUL-terminated, owned by the file object */
    sym_st_dtype dtype;
    uint32_t n_dims;      /* 0 for a scalar */
    uint64_t shape[SYM_ST_MAX_DIMS];
    uint64_t n_elems;
    uint64_t n_bytes;
    uint64_t file_offset; /* absolute offset of the data in the file */
    const void *data;     /* into the mapping (or the caller's buffer) */
} sym_st_tensor;

typedef struct sym_st_file sym_st_file;

/* Maps and parses path. SYM_ERR_IO if it cannot be opened or mapped, SYM_ERR_FORMAT with a
 * precise detail for malformed content. Caller owns *out (sym_st_close). */
sym_status sym_st_open(const char *path, sym_st_file **out);
/* Parses a whole file held in memory; the buffer must outlive *out (used by the fuzzer). */
sym_status sym_st_open_memory(const void *data, size_t size, sym_st_file **out);
void sym_st_close(sym_st_file *f);

uint64_t sym_st_n_tensors(const sym_st_file *f);
/* Tensors sorted by data offset. */
const sym_st_tensor *sym_st_tensor_at(const sym_st_file *f, uint64_t i);
const sym_st_tensor *sym_st_find(const sym_st_file *f, const char *name); /* NULL if absent */
/* A value of "__metadata__" (NULL if absent). */
const char *sym_st_metadata(const sym_st_file *f, const char *key);
uint64_t sym_st_file_size(const sym_st_file *f);

/* "F32", "BF16", …; sizes in bytes (F8 types: 1). */
const char *sym_st_dtype_name(sym_st_dtype t);
size_t sym_st_dtype_size(sym_st_dtype t);
/* Parses a dtype name; false if unknown. */
int sym_st_dtype_parse(const char *name, sym_st_dtype *out);

#endif
