/* check.h — the VK_SYMBIOTE_CHECK=1 debugging backend: wraps a backend, re-runs every op on the
 * reference backend from the wrapped backend's own inputs, and fails (SYM_ERR_INTERNAL, latched,
 * returned by the next read/sync) naming the first op whose result differs beyond tol (relative
 * to the largest magnitude of the op's reference output). Slow: one read-back per op. */
#ifndef SYM_INFER_CHECK_H
#define SYM_INFER_CHECK_H

#include "infer/ops.h"

/* Takes ownership of primary (destroyed with the wrapper, or at once if creation fails).
 * tol <= 0 means 1e-3. */
sym_status sym_check_backend_create(sym_backend *primary, double tol, sym_backend **out);
/* Ops checked so far. */
uint64_t sym_check_backend_n_ops(const sym_backend *b);

#endif
