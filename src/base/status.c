#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DETAIL_CAP 1024

static _Thread_local char g_detail[DETAIL_CAP];

static const char *const k_names[SYM_STATUS_COUNT] = {
    [SYM_OK] = "SYM_OK",
    [SYM_ERR_ARG] = "SYM_ERR_ARG",
    [SYM_ERR_IO] = "SYM_ERR_IO",
    [SYM_ERR_FORMAT] = "SYM_ERR_FORMAT",
    [SYM_ERR_UNSUPPORTED] = "SYM_ERR_UNSUPPORTED",
    [SYM_ERR_OOM] = "SYM_ERR_OOM",
    [SYM_ERR_BUDGET] = "SYM_ERR_BUDGET",
    [SYM_ERR_VULKAN] = "SYM_ERR_VULKAN",
    [SYM_ERR_NO_DEVICE] = "SYM_ERR_NO_DEVICE",
    [SYM_ERR_CONFIG] = "SYM_ERR_CONFIG",
    [SYM_ERR_CHECKSUM] = "SYM_ERR_CHECKSUM",
    [SYM_ERR_RANGE] = "SYM_ERR_RANGE",
    [SYM_ERR_INTERNAL] = "SYM_ERR_INTERNAL",
};

const char *sym_status_name(sym_status status) {
    if ((unsigned)status >= SYM_STATUS_COUNT) return "SYM_ERR_UNKNOWN";
    return k_names[status];
}

const char *sym_last_error(void) { return g_detail; }

const char *sym_version(void) { return SYM_VERSION; }

void sym_clear_error(void) { g_detail[0] = '\0'; }

sym_status sym_fail_at(const char *file, int line, sym_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_detail, DETAIL_CAP, fmt, ap);
    va_end(ap);
#ifndef NDEBUG
    if (n >= 0 && n < DETAIL_CAP - 2) {
        const char *base = strrchr(file, '/');
        snprintf(g_detail + n, (size_t)(DETAIL_CAP - n), " [%s:%d]", base ? base + 1 : file, line);
    }
#else
    (void)file, (void)line, (void)n;
#endif
    return status;
}

void sym_error_prefix(const char *fmt, ...) {
    char buf[DETAIL_CAP];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || n > DETAIL_CAP - 3) return;
    size_t used = (size_t)n;
    memcpy(buf + used, ": ", 2);
    used += 2;
    size_t rest = strnlen(g_detail, DETAIL_CAP - 1);
    if (rest > DETAIL_CAP - 1 - used) rest = DETAIL_CAP - 1 - used;
    memcpy(buf + used, g_detail, rest);
    buf[used + rest] = '\0';
    memcpy(g_detail, buf, used + rest + 1);
}

void sym_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "symbiote: internal invariant broken at %s:%d: %s\n", file, line, expr);
    abort();
}
