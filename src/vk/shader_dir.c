/* shader_dir.c — GLSL compiled at run time with libshaderc, cached per (kernel, variant), and
 * recompiled when a source file changes (hot reload). */
#include "vk/shader_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/log.h"

#ifndef SYM_HAVE_SHADERC

int sym_vk_shader_dir_available(void) { return 0; }

sym_status sym_vk_shader_dir_open(const char *dir, sym_vk_shader_dir **out) {
    *out = NULL;
    return SYM_FAIL(SYM_ERR_UNSUPPORTED,
                    "vulkan: shader dir '%s': this build has no run-time shader compiler "
                    "(libshaderc was switched off, missing or unusable when it was configured: "
                    "cmake/shaderc.cmake)",
                    dir);
}

void sym_vk_shader_dir_close(sym_vk_shader_dir *sd) { (void)sd; }

const char *sym_vk_shader_dir_path(const sym_vk_shader_dir *sd) {
    (void)sd;
    return "";
}

sym_status sym_vk_shader_dir_get(sym_vk_shader_dir *sd, const char *kernel, const char *define,
                                 const uint32_t **code, size_t *bytes) {
    (void)sd, (void)kernel, (void)define;
    *code = NULL;
    *bytes = 0;
    return SYM_FAIL(SYM_ERR_UNSUPPORTED, "vulkan: no run-time shader compiler in this build");
}

int sym_vk_shader_dir_poll(sym_vk_shader_dir *sd, sym_vk_shader_check_fn check, void *user,
                           const char **changed, int cap) {
    (void)sd, (void)check, (void)user, (void)changed, (void)cap;
    return 0;
}

#else

#include <shaderc/shaderc.h>

#define MAX_VARIANTS      4
#define MAX_INCLUDE_DEPTH 32
#define MAX_FILE_BYTES    (16u << 20)

/* A file a kernel's code was compiled from, as it was when read (exists 0: looked for, absent). */
typedef struct dep {
    char *path;
    int exists;
    struct timespec mtime;
    off_t size;
    ino_t ino;
} dep;

typedef struct deps {
    dep *v;
    int n, cap;
} deps;

typedef struct variant {
    char *define; /* "" for none */
    uint32_t *code;
    size_t bytes;
} variant;

typedef struct kernel_src {
    char *name;
    int missing; /* no DIR/<name>.comp: the embedded SPIR-V serves */
    variant var[MAX_VARIANTS];
    int n_var;
    deps deps; /* the files the cached code came from; the .comp first */
} kernel_src;

struct sym_vk_shader_dir {
    char *dir;
    shaderc_compiler_t cc;
    kernel_src *k;
    int n_k, cap_k;
};

int sym_vk_shader_dir_available(void) { return 1; }

const char *sym_vk_shader_dir_path(const sym_vk_shader_dir *sd) { return sd->dir; }

/* ---- files ------------------------------------------------------------------------------ */

static void deps_free(deps *d) {
    for (int i = 0; i < d->n; i++)
        sym_free(d->v[i].path);
    sym_free(d->v);
    *d = (deps){0};
}

static dep stat_dep(const char *path) {
    struct stat sb;
    dep x = {0};
    if (stat(path, &sb) == 0) {
        x.exists = 1;
        x.mtime = sb.st_mtim;
        x.size = sb.st_size;
        x.ino = sb.st_ino;
    }
    return x;
}

static int dep_same(const dep *a, const dep *b) {
    if (a->exists != b->exists) return 0;
    return !a->exists ||
           (a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
            a->size == b->size && a->ino == b->ino);
}

/* Adds path as it is now, unless d has it already (the first sighting is kept, so a file that
 * changed between two variants' compilations still reads as changed). 0, or -1 out of memory. */
static int deps_add(deps *d, const char *path, const dep *now) {
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->v[i].path, path)) return 0;
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 8;
        dep *v = sym_realloc(d->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        d->v = v;
        d->cap = cap;
    }
    dep x = *now;
    x.path = sym_strdup(path);
    if (!x.path) return -1;
    d->v[d->n++] = x;
    return 0;
}

static int deps_merge(deps *into, const deps *from) {
    for (int i = 0; i < from->n; i++)
        if (deps_add(into, from->v[i].path, &from->v[i]) != 0) return -1;
    return 0;
}

static int deps_changed(const deps *d) {
    for (int i = 0; i < d->n; i++) {
        dep now = stat_dep(d->v[i].path);
        if (!dep_same(&d->v[i], &now)) return 1;
    }
    return 0;
}

/* Reads a whole file (NUL-terminated). SYM_ERR_IO / SYM_ERR_OOM. */
static sym_status read_text(const char *path, char **out, size_t *n_out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return SYM_FAIL(SYM_ERR_IO, "vulkan: cannot read %s: %s", path, strerror(errno));
    sym_status st = SYM_OK;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || (unsigned long)n > MAX_FILE_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        st = SYM_FAIL(SYM_ERR_IO, "vulkan: cannot read %s (not a regular file of at most %u MiB)",
                      path, MAX_FILE_BYTES >> 20);
        goto done;
    }
    buf = sym_malloc((size_t)n + 1);
    if (!buf) {
        st = SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory reading %s", path);
        goto done;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        st = SYM_FAIL(SYM_ERR_IO, "vulkan: cannot read %s", path);
        sym_free(buf);
        buf = NULL;
        goto done;
    }
    buf[n] = '\0';
    *out = buf;
    *n_out = (size_t)n;
done:
    fclose(f);
    return st;
}

/* ---- includes ---------------------------------------------------------------------------- */

/* What one compilation read: every file, as it was just before it was read. */
typedef struct compile_ctx {
    const sym_vk_shader_dir *sd;
    deps deps;
    int oom;
} compile_ctx;

static shaderc_include_result *include_result(const char *name, char *content, size_t n) {
    shaderc_include_result *r = sym_calloc(1, sizeof *r);
    if (!r) {
        sym_free(content);
        return NULL;
    }
    char *nm = sym_strdup(name);
    if (!nm) {
        sym_free(content);
        sym_free(r);
        return NULL;
    }
    r->source_name = nm;
    r->source_name_length = strlen(nm);
    r->content = content;
    r->content_length = n;
    return r;
}

static shaderc_include_result *include_error(const char *fmt, const char *a, const char *b) {
    int len = snprintf(NULL, 0, fmt, a, b); /* the whole message, however long the paths */
    char *content = len >= 0 ? sym_malloc((size_t)len + 1) : NULL;
    if (!content) return NULL;
    snprintf(content, (size_t)len + 1, fmt, a, b);
    /* an empty source name tells the compiler the include failed; content is the reason */
    return include_result("", content, strlen(content));
}

/* "#include "x"": next to the including file, then in DIR (glslc's order with -I DIR);
 * "#include <x>": in DIR. */
static shaderc_include_result *include_resolve(void *user, const char *requested, int type,
                                               const char *requesting, size_t depth) {
    compile_ctx *ctx = user;
    if (depth > MAX_INCLUDE_DEPTH)
        return include_error("%s: includes nested deeper than %s levels", requested, "32");
    char cand[2][4096];
    int n_cand = 0;
    if (requested[0] == '/') {
        snprintf(cand[n_cand++], sizeof cand[0], "%s", requested);
    } else {
        const char *slash = strrchr(requesting, '/');
        if (type == shaderc_include_type_relative && slash)
            snprintf(cand[n_cand++], sizeof cand[0], "%.*s/%s", (int)(slash - requesting),
                     requesting, requested);
        snprintf(cand[n_cand], sizeof cand[0], "%s/%s", ctx->sd->dir, requested);
        if (n_cand == 0 || strcmp(cand[0], cand[1]) != 0) n_cand++;
    }
    for (int i = 0; i < n_cand; i++) {
        dep now = stat_dep(cand[i]);
        if (!now.exists) continue;
        if (deps_add(&ctx->deps, cand[i], &now) != 0) ctx->oom = 1;
        char *text;
        size_t n;
        if (read_text(cand[i], &text, &n) != SYM_OK)
            return include_error("cannot read %s: %s", cand[i], sym_last_error());
        return include_result(cand[i], text, n);
    }
    /* watch where it would be looked for first, so that creating it triggers a rebuild */
    dep absent = {0};
    if (deps_add(&ctx->deps, cand[n_cand - 1], &absent) != 0) ctx->oom = 1;
    return include_error("cannot find include file '%s' (looked next to the including file "
                         "and in %s)",
                         requested, ctx->sd->dir);
}

static void include_release(void *user, shaderc_include_result *r) {
    (void)user;
    if (!r) return;
    sym_free((char *)r->source_name);
    sym_free((char *)r->content);
    sym_free(r);
}

/* ---- compiling --------------------------------------------------------------------------- */

/* The compiler's messages on one line: "a.comp:3: error: x; 1 error generated." */
static void one_line(const char *msg, char *out, size_t cap) {
    size_t w = 0;
    for (const char *s = msg; *s && w + 3 < cap; s++) {
        if (*s == '\n') {
            while (s[1] == '\n')
                s++;
            if (s[1] && w > 0) {
                out[w++] = ';';
                out[w++] = ' ';
            }
        } else {
            out[w++] = *s;
        }
    }
    out[w] = '\0';
}

/* Compiles DIR/<name>.comp; *code (caller frees) and the files read go to ctx. SYM_ERR_FORMAT
 * with the compiler's messages; SYM_ERR_IO; SYM_ERR_OOM. */
static sym_status compile(const sym_vk_shader_dir *sd, const char *name, const char *define,
                          compile_ctx *ctx, uint32_t **code, size_t *bytes) {
    *code = NULL;
    *bytes = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.comp", sd->dir, name);
    dep now = stat_dep(path);
    if (deps_add(&ctx->deps, path, &now) != 0)
        return SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    SYM_CHECK(now.exists, SYM_ERR_IO, "vulkan: %s: %s", path, strerror(ENOENT));
    char *text;
    size_t n;
    SYM_TRY(read_text(path, &text, &n));
    shaderc_compile_options_t opt = shaderc_compile_options_initialize();
    if (!opt) {
        sym_free(text);
        return SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    }
    /* the flags of cmake/shaders.cmake: --target-env=vulkan1.2 -O -Werror -I DIR [-D...] */
    shaderc_compile_options_set_target_env(opt, shaderc_target_env_vulkan,
                                           shaderc_env_version_vulkan_1_2);
    shaderc_compile_options_set_optimization_level(opt, shaderc_optimization_level_performance);
    shaderc_compile_options_set_warnings_as_errors(opt);
    if (define && *define)
        shaderc_compile_options_add_macro_definition(opt, define, strlen(define), NULL, 0);
    shaderc_compile_options_set_include_callbacks(opt, include_resolve, include_release, ctx);
    shaderc_compilation_result_t r =
        shaderc_compile_into_spv(sd->cc, text, n, shaderc_glsl_compute_shader, path, "main", opt);
    sym_free(text);
    shaderc_compile_options_release(opt);
    sym_status st = SYM_OK;
    if (!r || ctx->oom) {
        st = SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory compiling %s", path);
    } else if (shaderc_result_get_compilation_status(r) != shaderc_compilation_status_success) {
        char msg[900];
        one_line(shaderc_result_get_error_message(r), msg, sizeof msg);
        st = SYM_FAIL(SYM_ERR_FORMAT, "vulkan: %s%s%s does not compile: %s", path,
                      define && *define ? " with " : "", define && *define ? define : "", msg);
    } else {
        size_t len = shaderc_result_get_length(r);
        uint32_t *c = len && len % 4 == 0 ? sym_malloc(len) : NULL;
        if (!c) {
            st = len && len % 4 == 0
                     ? SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory")
                     : SYM_FAIL(SYM_ERR_INTERNAL, "vulkan: %s: SPIR-V of %zu bytes", path, len);
        } else {
            memcpy(c, shaderc_result_get_bytes(r), len);
            *code = c;
            *bytes = len;
        }
    }
    shaderc_result_release(r);
    return st;
}

/* ---- the cache --------------------------------------------------------------------------- */

static void kernel_free(kernel_src *ks) {
    for (int i = 0; i < ks->n_var; i++) {
        sym_free(ks->var[i].define);
        sym_free(ks->var[i].code);
    }
    deps_free(&ks->deps);
    sym_free(ks->name);
}

static int has_comp_file(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        found = n > 5 && !strcmp(e->d_name + n - 5, ".comp");
    }
    closedir(d);
    return found;
}

sym_status sym_vk_shader_dir_open(const char *dir, sym_vk_shader_dir **out) {
    *out = NULL;
    SYM_CHECK(dir && *dir, SYM_ERR_ARG, "vulkan: empty shader dir");
    SYM_CHECK(strlen(dir) < 3000, SYM_ERR_ARG, "vulkan: shader dir path too long");
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return SYM_FAIL(SYM_ERR_IO, "shader dir '%s': %s", dir, strerror(errno));
    SYM_CHECK(S_ISDIR(sb.st_mode), SYM_ERR_IO, "shader dir '%s' is not a directory", dir);
    SYM_CHECK(has_comp_file(dir), SYM_ERR_IO,
              "shader dir '%s' holds no .comp file (it should hold a copy of shaders/)", dir);
    sym_vk_shader_dir *sd = sym_calloc(1, sizeof *sd);
    if (!sd) return SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') /* "DIR/" and "DIR" name the same files */
        n--;
    sd->dir = sym_malloc(n + 1);
    sd->cc = shaderc_compiler_initialize();
    if (!sd->dir || !sd->cc) {
        sym_vk_shader_dir_close(sd);
        return SYM_FAIL(SYM_ERR_OOM, "vulkan: cannot start the shader compiler");
    }
    memcpy(sd->dir, dir, n);
    sd->dir[n] = '\0';
    *out = sd;
    return SYM_OK;
}

void sym_vk_shader_dir_close(sym_vk_shader_dir *sd) {
    if (!sd) return;
    for (int i = 0; i < sd->n_k; i++)
        kernel_free(&sd->k[i]);
    sym_free(sd->k);
    if (sd->cc) shaderc_compiler_release(sd->cc);
    sym_free(sd->dir);
    sym_free(sd);
}

static kernel_src *find_kernel(sym_vk_shader_dir *sd, const char *name) {
    for (int i = 0; i < sd->n_k; i++)
        if (!strcmp(sd->k[i].name, name)) return &sd->k[i];
    if (sd->n_k == sd->cap_k) {
        int cap = sd->cap_k ? 2 * sd->cap_k : 32;
        kernel_src *k = sym_realloc(sd->k, (size_t)cap * sizeof *k);
        if (!k) return NULL;
        sd->k = k;
        sd->cap_k = cap;
    }
    kernel_src *ks = &sd->k[sd->n_k];
    memset(ks, 0, sizeof *ks);
    ks->name = sym_strdup(name);
    if (!ks->name) return NULL;
    sd->n_k++;
    return ks;
}

/* The variant slot for define, added (without code) if new; NULL out of slots or memory. */
static variant *find_variant(kernel_src *ks, const char *define) {
    const char *d = define ? define : "";
    for (int i = 0; i < ks->n_var; i++)
        if (!strcmp(ks->var[i].define, d)) return &ks->var[i];
    if (ks->n_var == MAX_VARIANTS) return NULL;
    variant *v = &ks->var[ks->n_var];
    v->define = sym_strdup(d);
    if (!v->define) return NULL;
    v->code = NULL;
    v->bytes = 0;
    ks->n_var++;
    return v;
}

sym_status sym_vk_shader_dir_get(sym_vk_shader_dir *sd, const char *kernel, const char *define,
                                 const uint32_t **code, size_t *bytes) {
    *code = NULL;
    *bytes = 0;
    kernel_src *ks = find_kernel(sd, kernel);
    SYM_CHECK(ks, SYM_ERR_OOM, "vulkan: out of memory");
    variant *v = find_variant(ks, define);
    SYM_CHECK(v, SYM_ERR_OOM, "vulkan: out of memory (or more than %d variants of %s)",
              MAX_VARIANTS, kernel);
    if (v->code) {
        *code = v->code;
        *bytes = v->bytes;
        return SYM_OK;
    }
    if (ks->missing) return SYM_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.comp", sd->dir, kernel);
    dep now = stat_dep(path);
    if (!now.exists && ks->deps.n == 0) {
        /* a directory may hold only the kernels being worked on */
        SYM_INFO("vulkan: no %s in the shader dir: kernel %s uses its built-in SPIR-V", path,
                 kernel);
        ks->missing = 1;
        SYM_CHECK(deps_add(&ks->deps, path, &now) == 0, SYM_ERR_OOM, "vulkan: out of memory");
        return SYM_OK;
    }
    compile_ctx ctx = {.sd = sd};
    uint32_t *c;
    size_t n;
    sym_status st = compile(sd, kernel, define, &ctx, &c, &n);
    if (st == SYM_OK && deps_merge(&ks->deps, &ctx.deps) != 0) {
        sym_free(c);
        st = SYM_FAIL(SYM_ERR_OOM, "vulkan: out of memory");
    }
    deps_free(&ctx.deps);
    if (st != SYM_OK) return st;
    v->code = c;
    v->bytes = n;
    SYM_DEBUG("vulkan: compiled %s%s%s (%zu bytes of SPIR-V)", path, *v->define ? " with " : "",
              v->define, n);
    *code = c;
    *bytes = n;
    return SYM_OK;
}

/* Recompiles every variant of ks; on success swaps the new code in. 1 if replaced. */
static int rebuild(sym_vk_shader_dir *sd, kernel_src *ks, sym_vk_shader_check_fn check,
                   void *user) {
    uint32_t *code[MAX_VARIANTS] = {0};
    size_t bytes[MAX_VARIANTS] = {0};
    compile_ctx ctx = {.sd = sd};
    sym_status st = SYM_OK;
    for (int i = 0; i < ks->n_var && st == SYM_OK; i++) {
        const char *def = ks->var[i].define;
        st = compile(sd, ks->name, def, &ctx, &code[i], &bytes[i]);
        if (st == SYM_OK && check) st = check(user, ks->name, *def ? def : NULL, code[i], bytes[i]);
    }
    int replaced = 0;
    if (st == SYM_OK) {
        for (int i = 0; i < ks->n_var; i++) {
            sym_free(ks->var[i].code);
            ks->var[i].code = code[i];
            ks->var[i].bytes = bytes[i];
            code[i] = NULL;
        }
        SYM_INFO("vulkan: kernel %s rebuilt from %s/%s.comp", ks->name, sd->dir, ks->name);
        ks->missing = 0;
        replaced = 1;
    } else {
        SYM_ERROR("vulkan: kernel %s keeps its current pipeline: %s", ks->name, sym_last_error());
    }
    /* from now on compare with what was just read, so one change is reported once */
    deps_free(&ks->deps);
    ks->deps = ctx.deps;
    for (int i = 0; i < MAX_VARIANTS; i++)
        sym_free(code[i]);
    return replaced;
}

int sym_vk_shader_dir_poll(sym_vk_shader_dir *sd, sym_vk_shader_check_fn check, void *user,
                           const char **changed, int cap) {
    int n = 0;
    for (int i = 0; i < sd->n_k && n < cap; i++) {
        kernel_src *ks = &sd->k[i];
        if (!ks->n_var || !deps_changed(&ks->deps)) continue;
        if (ks->missing) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s.comp", sd->dir, ks->name);
            SYM_INFO("vulkan: %s appeared", path);
        }
        if (rebuild(sd, ks, check, user)) changed[n++] = ks->name;
    }
    return n;
}

#endif
