/* status.h — recording failures: a status code plus a one-line detail per thread.
 *
 *   return SYM_FAIL(SYM_ERR_FORMAT, "gguf: tensor '%s' ends past end of file", name);
 *   SYM_CHECK(n <= cap, SYM_ERR_RANGE, "prompt has %zu tokens, context is %zu", n, cap);
 *   SYM_TRY(sym_gguf_open(path, &g));          // propagate, keeping the callee's detail
 *
 * Debug builds (NDEBUG unset) append " [file:line]" to the detail.
 */
#ifndef SYM_BASE_STATUS_H
#define SYM_BASE_STATUS_H

#include "symbiote.h"

#if defined(__GNUC__)
#define SYM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SYM_PRINTF(a, b)
#endif

/* Records the detail for status and returns status (so it can be returned directly). */
sym_status sym_fail_at(const char *file, int line, sym_status status, const char *fmt, ...)
    SYM_PRINTF(4, 5);
/* Prepends "prefix: " to the current detail (adds context while propagating). */
void sym_error_prefix(const char *fmt, ...) SYM_PRINTF(1, 2);
void sym_clear_error(void);

#define SYM_FAIL(status, ...) sym_fail_at(__FILE__, __LINE__, (status), __VA_ARGS__)
#define SYM_CHECK(cond, status, ...)                                                              \
    do {                                                                                          \
        if (!(cond)) return SYM_FAIL((status), __VA_ARGS__);                                      \
    } while (0)
#define SYM_TRY(expr)                                                                             \
    do {                                                                                          \
        sym_status sym_try_st_ = (expr);                                                          \
        if (sym_try_st_ != SYM_OK) return sym_try_st_;                                            \
    } while (0)
/* For functions with one `fail:` label and a `sym_status st` variable. */
#define SYM_TRY_GOTO(expr)                                                                        \
    do {                                                                                          \
        st = (expr);                                                                              \
        if (st != SYM_OK) goto fail;                                                              \
    } while (0)
#define SYM_FAIL_GOTO(status, ...)                                                                \
    do {                                                                                          \
        st = SYM_FAIL((status), __VA_ARGS__);                                                     \
        goto fail;                                                                                \
    } while (0)

/* Invariants of our own code (stay on in release builds). */
#define SYM_ASSERT(cond)                                                                          \
    do {                                                                                          \
        if (!(cond)) sym_assert_fail(__FILE__, __LINE__, #cond);                                 \
    } while (0)
_Noreturn void sym_assert_fail(const char *file, int line, const char *expr);

#endif
