#include "base/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

void *sym_map_pages(size_t len) {
    const size_t huge = (size_t)2 << 20;
    const char *no = getenv("SYM_NO_THP");
    if (len == 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (!(no && *no && strcmp(no, "0")) && len >= huge && len <= SIZE_MAX - huge) {
        /* over-map by 2 MiB, keep the aligned part */
        char *raw = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
        if (raw == MAP_FAILED) return NULL;
        char *p = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
        size_t head = (size_t)(p - raw), tail = huge - head;
        if (head) munmap(raw, head);
        if (tail) munmap(p + len, tail);
        (void)madvise(p, len, MADV_HUGEPAGE); /* advice: plain pages where refused */
        long pg = sysconf(_SC_PAGESIZE);
        size_t step = pg > 0 ? (size_t)pg : 4096;
        for (size_t i = 0; i < len; i += step) p[i] = 0; /* fault in now, as MAP_POPULATE */
        return p;
    }
#endif
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void sym_unmap_pages(void *p, size_t len) {
    if (p) munmap(p, len);
}
