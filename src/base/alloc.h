/* alloc.h — the library's allocator, injectable so that out-of-memory paths are testable.
 * All library allocations go through these; sym_free(NULL) is a no-op. Hooks are global
 * and must be set before any engine object exists. */
#ifndef SYM_BASE_ALLOC_H
#define SYM_BASE_ALLOC_H

#include <stddef.h>

typedef struct sym_alloc_hooks {
    void *(*malloc_fn)(void *user, size_t size);
    void *(*realloc_fn)(void *user, void *ptr, size_t size);
    void (*free_fn)(void *user, void *ptr);
    void *user;
} sym_alloc_hooks;

/* NULL restores the C library's allocator. */
void sym_set_alloc_hooks(const sym_alloc_hooks *hooks);

void *sym_malloc(size_t size);
void *sym_calloc(size_t n, size_t size); /* NULL on overflow of n*size */
void *sym_realloc(void *ptr, size_t size);
void sym_free(void *ptr);
char *sym_strndup(const char *s, size_t n);
char *sym_strdup(const char *s);

/* Large zero-filled anonymous mappings, faulted in at once (not through the injectable hooks:
 * these are tiers, not objects). Where the kernel allows, backed by transparent huge pages
 * (2 MiB aligned, MADV_HUGEPAGE): a scan of gigabytes then takes a TLB miss per 2 MiB instead of
 * per 4 KiB. SYM_NO_THP=1 asks for plain pages. NULL on failure; free with sym_unmap_pages and
 * the same len. */
void *sym_map_pages(size_t len);
void sym_unmap_pages(void *p, size_t len);

/* Overflow-checked arithmetic for sizes: return 0 and leave *out unset on overflow. */
static inline int sym_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int sym_add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

#endif
