#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

static void *libc_malloc(void *user, size_t size) { (void)user; return malloc(size); }
static void *libc_realloc(void *user, void *p, size_t size) { (void)user; return realloc(p, size); }
static void libc_free(void *user, void *p) { (void)user; free(p); }

static sym_alloc_hooks g_hooks = {libc_malloc, libc_realloc, libc_free, NULL};

void sym_set_alloc_hooks(const sym_alloc_hooks *hooks) {
    if (hooks) g_hooks = *hooks;
    else g_hooks = (sym_alloc_hooks){libc_malloc, libc_realloc, libc_free, NULL};
}

void *sym_malloc(size_t size) { return g_hooks.malloc_fn(g_hooks.user, size ? size : 1); }

void *sym_calloc(size_t n, size_t size) {
    size_t total;
    if (!sym_mul_ok(n, size, &total)) return NULL;
    void *p = sym_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void *sym_realloc(void *ptr, size_t size) {
    return g_hooks.realloc_fn(g_hooks.user, ptr, size ? size : 1);
}

void sym_free(void *ptr) {
    if (ptr) g_hooks.free_fn(g_hooks.user, ptr);
}

char *sym_strndup(const char *s, size_t n) {
    char *d = sym_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *sym_strdup(const char *s) { return sym_strndup(s, strlen(s)); }
