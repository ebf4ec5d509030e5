/* ref.h — the reference backend (the specification) and the host-memory helpers every CPU
 * backend shares. */
#ifndef SYM_CPU_REF_H
#define SYM_CPU_REF_H

#include "infer/ops.h"

/* Creates the reference backend; the caller owns it (b->ops->destroy(b)). */
sym_status sym_ref_backend_create(sym_backend **out);

/* Element (row, col) of a host tensor of any dtype, as f32 / stored with rounding. */
float sym_ref_get(const sym_tensor *t, int64_t row, int64_t col);
void sym_ref_set(sym_tensor *t, int64_t row, int64_t col, float v);

/* Host-memory implementations of the memory part of sym_backend_ops: alloc gives 64-byte
 * aligned zeroed memory; load borrows the caller's pointer; read/write are memcpy. */
sym_status sym_host_alloc(sym_backend *b, sym_tensor *t, sym_dtype type, int64_t n_cols,
                          int64_t n_rows);
sym_status sym_host_load(sym_backend *b, sym_tensor *t, const void *host, sym_dtype type,
                         int64_t n_cols, int64_t n_rows);
void sym_host_release(sym_backend *b, sym_tensor *t);
sym_status sym_host_write(sym_backend *b, sym_tensor *t, const void *src, size_t bytes);
sym_status sym_host_read(sym_backend *b, const sym_tensor *t, void *dst, size_t bytes);
sym_status sym_host_sync(sym_backend *b);
/* set_cols for host tensors (f32): the specification, shared by the CPU backends. */
void sym_host_set_cols(sym_backend *b, sym_tensor *out, int64_t col0, const sym_tensor *src,
                       int accumulate);

#endif
