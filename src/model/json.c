#include "model/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"

const char *sym_json_show(const char *s, char buf[48]) {
    size_t n = strnlen(s, 41), k = n < 40 ? n : 40;
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = (ch >= 32 && ch < 127) ? (char)ch : '?';
    }
    strcpy(buf + k, n > 40 ? "..." : "");
    return buf;
}

/* ---- a second, strict pass over the text -------------------------------------------------------
 * json-c has already accepted the text; this pass rejects what json-c tolerates (single-quoted
 * strings, NaN/Infinity, bare words) and finds duplicate keys inside each object. Keys are
 * compared in their escaped form; json-c's own count catches differently escaped duplicates. */

typedef struct span {
    const char *p;
    size_t n;
} span;

typedef struct scanner {
    const char *s;
    size_t n, pos;
    span *keys; /* a stack: the keys of each open object */
    size_t n_keys, cap;
    size_t n_total; /* keys seen in all objects */
    const char *what;
} scanner;

static char peek(const scanner *sc) { return sc->pos < sc->n ? sc->s[sc->pos] : '\0'; }

static void skip_ws(scanner *sc) {
    while (sc->pos < sc->n && strchr(" \t\r\n", sc->s[sc->pos]) && sc->s[sc->pos]) sc->pos++;
}

static sym_status bad(scanner *sc, const char *why) {
    return SYM_FAIL(SYM_ERR_FORMAT, "%s: invalid JSON at offset %zu: %s", sc->what, sc->pos, why);
}

static sym_status scan_string(scanner *sc, span *out) {
    if (peek(sc) != '"') return bad(sc, "expected a double-quoted string");
    size_t start = ++sc->pos;
    while (sc->pos < sc->n) {
        char c = sc->s[sc->pos];
        if (c == '\\') {
            sc->pos += 2;
        } else if (c == '"') {
            out->p = sc->s + start;
            out->n = sc->pos - start;
            sc->pos++;
            return SYM_OK;
        } else {
            sc->pos++;
        }
    }
    return bad(sc, "unterminated string");
}

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    if (c) return c;
    return x->n < y->n ? -1 : x->n > y->n;
}

static sym_status scan_scalar(scanner *sc) {
    static const char *const words[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t wl = strlen(words[i]);
        if (sc->n - sc->pos >= wl && !memcmp(sc->s + sc->pos, words[i], wl)) {
            sc->pos += wl;
            return SYM_OK;
        }
    }
    size_t start = sc->pos;
    while (sc->pos < sc->n && strchr("0123456789+-.eE", sc->s[sc->pos]) && sc->s[sc->pos])
        sc->pos++;
    if (sc->pos == start) return bad(sc, "expected a value");
    return SYM_OK;
}

static sym_status scan_value(scanner *sc, int depth);

static sym_status scan_object(scanner *sc, int depth) {
    char nb[48];
    size_t base = sc->n_keys;
    sc->pos++; /* '{' */
    skip_ws(sc);
    if (peek(sc) == '}') {
        sc->pos++;
        return SYM_OK;
    }
    for (;;) {
        skip_ws(sc);
        span k;
        SYM_TRY(scan_string(sc, &k));
        if (sc->n_keys == sc->cap) {
            size_t cap = sc->cap ? sc->cap * 2 : 64;
            span *nk = sym_realloc(sc->keys, cap * sizeof *nk);
            if (!nk) return SYM_FAIL(SYM_ERR_OOM, "%s: out of memory", sc->what);
            sc->keys = nk;
            sc->cap = cap;
        }
        sc->keys[sc->n_keys++] = k;
        sc->n_total++;
        skip_ws(sc);
        if (peek(sc) != ':') return bad(sc, "expected ':'");
        sc->pos++;
        SYM_TRY(scan_value(sc, depth + 1));
        skip_ws(sc);
        if (peek(sc) == ',') {
            sc->pos++;
            continue;
        }
        if (peek(sc) == '}') {
            sc->pos++;
            break;
        }
        return bad(sc, "expected ',' or '}'");
    }
    span *ks = sc->keys + base;
    size_t nk = sc->n_keys - base;
    qsort(ks, nk, sizeof *ks, span_cmp);
    for (size_t i = 1; i < nk; i++)
        if (span_cmp(&ks[i - 1], &ks[i]) == 0) {
            char key[64];
            size_t l = ks[i].n < sizeof key - 1 ? ks[i].n : sizeof key - 1;
            memcpy(key, ks[i].p, l);
            key[l] = '\0';
            return SYM_FAIL(SYM_ERR_FORMAT, "%s: duplicate key '%s'", sc->what,
                            sym_json_show(key, nb));
        }
    sc->n_keys = base;
    return SYM_OK;
}

static sym_status scan_value(scanner *sc, int depth) {
    if (depth > SYM_JSON_MAX_DEPTH) return bad(sc, "nested too deeply");
    skip_ws(sc);
    char c = peek(sc);
    if (c == '{') return scan_object(sc, depth);
    if (c == '"') {
        span s;
        return scan_string(sc, &s);
    }
    if (c == '[') {
        sc->pos++;
        skip_ws(sc);
        if (peek(sc) == ']') {
            sc->pos++;
            return SYM_OK;
        }
        for (;;) {
            SYM_TRY(scan_value(sc, depth + 1));
            skip_ws(sc);
            if (peek(sc) == ',') {
                sc->pos++;
                continue;
            }
            if (peek(sc) == ']') {
                sc->pos++;
                return SYM_OK;
            }
            return bad(sc, "expected ',' or ']'");
        }
    }
    return scan_scalar(sc);
}

/* Keys json-c kept (it merges duplicates). */
static size_t count_keys(json_object *o) {
    size_t n = 0;
    if (json_object_is_type(o, json_type_object)) {
        struct json_object_iter it;
        json_object_object_foreachC(o, it) n += 1 + count_keys(it.val);
    } else if (json_object_is_type(o, json_type_array)) {
        size_t len = json_object_array_length(o);
        for (size_t i = 0; i < len; i++) n += count_keys(json_object_array_get_idx(o, i));
    }
    return n;
}

sym_status sym_json_parse(const char *what, const char *text, size_t len, json_object **out) {
    *out = NULL;
    if (len > INT32_MAX) return SYM_FAIL(SYM_ERR_FORMAT, "%s: %zu bytes is too large", what, len);
    struct json_tokener *tok = json_tokener_new_ex(SYM_JSON_MAX_DEPTH);
    if (!tok) return SYM_FAIL(SYM_ERR_OOM, "%s: out of memory", what);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (err == json_tokener_continue) {
        json_object_put(root);
        return SYM_FAIL(SYM_ERR_FORMAT, "%s: invalid JSON: unexpected end of text", what);
    }
    if (err != json_tokener_success) {
        json_object_put(root);
        return SYM_FAIL(SYM_ERR_FORMAT, "%s: invalid JSON at offset %zu: %s", what, end,
                        json_tokener_error_desc(err));
    }
    scanner sc = {text, len, 0, NULL, 0, 0, 0, what};
    sym_status st = scan_value(&sc, 0);
    if (st == SYM_OK) {
        skip_ws(&sc);
        if (sc.pos != len) st = bad(&sc, "trailing bytes after the value");
    }
    if (st == SYM_OK && sc.n_total != count_keys(root))
        st = SYM_FAIL(SYM_ERR_FORMAT, "%s: duplicate key (written with different escapes)", what);
    sym_free(sc.keys);
    if (st != SYM_OK) {
        json_object_put(root);
        return st;
    }
    *out = root;
    return SYM_OK;
}

sym_status sym_json_read_file(const char *path, size_t max_bytes, char **text, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SYM_FAIL(SYM_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return SYM_FAIL(SYM_ERR_IO, "'%s' is not a readable regular file", path);
    }
    if ((uint64_t)sb.st_size > max_bytes) {
        close(fd);
        return SYM_FAIL(SYM_ERR_FORMAT, "'%s' is %lld bytes (at most %zu expected)", path,
                        (long long)sb.st_size, max_bytes);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = sym_malloc(n + 1);
    if (!buf) {
        close(fd);
        return SYM_FAIL(SYM_ERR_OOM, "out of memory reading '%s'", path);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            sym_free(buf);
            return SYM_FAIL(SYM_ERR_IO, "cannot read '%s': %s", path,
                            e ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return SYM_OK;
}

/* ---- typed members ------------------------------------------------------------------------------ */

static json_object *member(json_object *obj, const char *key) {
    json_object *v = NULL;
    if (!json_object_is_type(obj, json_type_object)) return NULL;
    if (!json_object_object_get_ex(obj, key, &v)) return NULL;
    return v;
}

sym_status sym_json_get_int(const char *what, json_object *obj, const char *key, int64_t lo,
                            int64_t hi, int64_t *out) {
    json_object *v = member(obj, key);
    if (!v) return SYM_FAIL(SYM_ERR_FORMAT, "%s: missing key '%s'", what, key);
    if (!json_object_is_type(v, json_type_int))
        return SYM_FAIL(SYM_ERR_FORMAT, "%s: '%s' is not an integer", what, key);
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi || (x == INT64_MAX && json_object_get_uint64(v) > INT64_MAX))
        return SYM_FAIL(SYM_ERR_FORMAT, "%s: '%s' = %s is out of range (%" PRId64 "..%" PRId64
                        ")", what, key, json_object_to_json_string(v), lo, hi);
    *out = x;
    return SYM_OK;
}

sym_status sym_json_get_int_opt(const char *what, json_object *obj, const char *key, int64_t lo,
                                int64_t hi, int64_t *out) {
    json_object *v = member(obj, key);
    if (!v) return SYM_OK;
    return sym_json_get_int(what, obj, key, lo, hi, out);
}

sym_status sym_json_get_num_opt(const char *what, json_object *obj, const char *key, double *out) {
    json_object *v = member(obj, key);
    if (!v) return SYM_OK;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return SYM_FAIL(SYM_ERR_FORMAT, "%s: '%s' is not a number", what, key);
    double d = json_object_get_double(v);
    if (!isfinite(d)) return SYM_FAIL(SYM_ERR_FORMAT, "%s: '%s' is not finite", what, key);
    *out = d;
    return SYM_OK;
}

sym_status sym_json_get_bool_opt(const char *what, json_object *obj, const char *key, int *out) {
    json_object *v = member(obj, key);
    if (!v) return SYM_OK;
    if (!json_object_is_type(v, json_type_boolean))
        return SYM_FAIL(SYM_ERR_FORMAT, "%s: '%s' is not true or false", what, key);
    *out = json_object_get_boolean(v) ? 1 : 0;
    return SYM_OK;
}

sym_status sym_json_get_str(const char *what, json_object *obj, const char *key,
                            const char **out) {
    json_object *v = member(obj, key);
    if (!v) return SYM_FAIL(SYM_ERR_FORMAT, "%s: missing key '%s'", what, key);
    if (!json_object_is_type(v, json_type_string))
        return SYM_FAIL(SYM_ERR_FORMAT, "%s: '%s' is not a string", what, key);
    *out = json_object_get_string(v);
    return SYM_OK;
}

sym_status sym_json_get_str_opt(const char *what, json_object *obj, const char *key,
                                const char **out) {
    json_object *v = member(obj, key);
    if (!v) return SYM_OK;
    return sym_json_get_str(what, obj, key, out);
}
