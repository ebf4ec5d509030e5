/* Run-time compilation from a shader dir (vk/shader_dir.c), without a GPU: every embedded kernel
 * variant compiled from a copy of shaders/ is the embedded SPIR-V byte for byte (same options and
 * defines as the build); a changed kernel, a changed include, a syntax error (the old code stays,
 * the compiler's file:line is logged), a kernel file that is missing then appears; bad dirs. */
#include "shader_dir_util.h"
#include "test_util.h"
#include "vk/shader_dir.h"
#include "vk/shaders.h"

/* "rmsnorm_nosg" -> kernel "rmsnorm", define "NO_SUBGROUP_EXT" (cmake/shaders.cmake). */
static void split_variant(const char *name, char *kernel, size_t cap, const char **define) {
    snprintf(kernel, cap, "%s", name);
    *define = NULL;
    size_t n = strlen(kernel);
    if (n > 5 && !strcmp(kernel + n - 5, "_nosg")) {
        kernel[n - 5] = '\0';
        *define = "NO_SUBGROUP_EXT";
    } else if (n > 5 && !strcmp(kernel + n - 5, "_fp16")) {
        kernel[n - 5] = '\0';
        *define = "FP16_VARIANT";
    }
}

static int code_eq(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
    return a && b && na == nb && !memcmp(a, b, na);
}

/* The embedded SPIR-V of a variant. */
static const sym_vk_shader_blob *blob(const char *name) {
    for (size_t i = 0; i < sym_vk_n_shader_blobs; i++)
        if (!strcmp(sym_vk_shader_blobs[i].name, name)) return &sym_vk_shader_blobs[i];
    return NULL;
}

/* The 1-based line of dir/file holding `what` (0 if none). */
static int line_of(const char *dir, const char *file, const char *what) {
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    size_t n = 0;
    char *text = (char *)test_read_file(p, &n);
    char *at = text ? strstr(text, what) : NULL;
    int line = at ? 1 : 0;
    for (char *c = text; at && c < at; c++)
        line += *c == '\n';
    free(text);
    return line;
}

static void test_bad_dirs(const char *dir) {
    sym_vk_shader_dir *sd = NULL;
    CHECK_STATUS(sym_vk_shader_dir_open(SYM_BUILD_DIR "/no-such-shader-dir", &sd), SYM_ERR_IO);
    CHECK(strstr(sym_last_error(), "no-such-shader-dir") &&
              strstr(sym_last_error(), "No such file"),
          "message: %s", sym_last_error());
    char file[2048];
    snprintf(file, sizeof file, "%s/add.comp", dir);
    CHECK_STATUS(sym_vk_shader_dir_open(file, &sd), SYM_ERR_IO);
    CHECK(strstr(sym_last_error(), "not a directory"), "message: %s", sym_last_error());
    char empty[2048];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    CHECK(mkdir(empty, 0755) == 0, "mkdir %s", empty);
    CHECK_STATUS(sym_vk_shader_dir_open(empty, &sd), SYM_ERR_IO);
    CHECK(strstr(sym_last_error(), "no .comp file"), "message: %s", sym_last_error());
    rmdir(empty);
    CHECK(sd == NULL, "no handle after a failure");
}

/* Every embedded variant, compiled from the copy, is the same SPIR-V. */
static void test_same_spirv(const char *dir) {
    sym_vk_shader_dir *sd = NULL;
    CHECK_OK(sym_vk_shader_dir_open(dir, &sd));
    if (!sd) return;
    int n_same = 0;
    for (size_t i = 0; i < sym_vk_n_shader_blobs; i++) {
        const sym_vk_shader_blob *b = &sym_vk_shader_blobs[i];
        char kernel[64];
        const char *define;
        split_variant(b->name, kernel, sizeof kernel, &define);
        const uint32_t *code = NULL;
        size_t bytes = 0;
        CHECK_OK(sym_vk_shader_dir_get(sd, kernel, define, &code, &bytes));
        CHECK(code_eq(code, bytes, b->code, b->bytes), "%s: %zu bytes compiled, %zu embedded",
              b->name, bytes, b->bytes);
        n_same += code_eq(code, bytes, b->code, b->bytes);
        /* the second request is the cached code */
        const uint32_t *again = NULL;
        CHECK_OK(sym_vk_shader_dir_get(sd, kernel, define, &again, &bytes));
        CHECK(again == code, "%s: cached", b->name);
    }
    fprintf(stderr, "%d of %zu variants compiled to the embedded SPIR-V\n", n_same,
            sym_vk_n_shader_blobs);
    const char *changed[64];
    CHECK(sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64) == 0, "nothing changed yet");
    sym_vk_shader_dir_close(sd);
}

static sym_status refuse_all(void *user, const char *kernel, const char *define,
                             const uint32_t *code, size_t bytes) {
    (void)define, (void)code, (void)bytes;
    ++*(int *)user;
    return SYM_FAIL(SYM_ERR_INTERNAL, "refused %s", kernel);
}

static void test_reload(const char *dir, const char *log_path) {
    sym_vk_shader_dir *sd = NULL;
    CHECK_OK(sym_vk_shader_dir_open(dir, &sd));
    if (!sd) return;
    const char *changed[64];
    const uint32_t *add0 = NULL, *code = NULL;
    size_t add0_n = 0, n = 0;
    CHECK_OK(sym_vk_shader_dir_get(sd, "add", NULL, &add0, &add0_n));
    CHECK_OK(sym_vk_shader_dir_get(sd, "rmsnorm", NULL, &code, &n));
    CHECK_OK(sym_vk_shader_dir_get(sd, "rmsnorm", "NO_SUBGROUP_EXT", &code, &n));
    const sym_vk_shader_blob *add_blob = blob("add");
    CHECK(add_blob && code_eq(add0, add0_n, add_blob->code, add_blob->bytes), "add as embedded");

    /* a changed kernel: only it is rebuilt */
    char *scaled = shader_edit(dir, "add.comp", "a[p.a_off + i] + b[p.b_off + i]",
                               "(a[p.a_off + i] + b[p.b_off + i]) * 2.0");
    CHECK(scaled && shader_rewrite(dir, "add.comp", scaled) == 0, "rewrite add.comp");
    int nc = sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64);
    CHECK(nc == 1 && !strcmp(changed[0], "add"), "%d changed (%s)", nc, nc ? changed[0] : "-");
    CHECK_OK(sym_vk_shader_dir_get(sd, "add", NULL, &code, &n));
    CHECK(code && !code_eq(code, n, add_blob->code, add_blob->bytes), "add's code changed");
    CHECK(sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64) == 0, "one change, one rebuild");
    size_t add1_n = n;
    uint32_t *add1 = malloc(n);
    if (add1 && code) memcpy(add1, code, n);

    /* a syntax error: the old code stays, the compiler's file:line is logged */
    int bad_line = line_of(dir, "add.comp", "if (i >= p.n) return;");
    char *broken = shader_edit(dir, "add.comp", "if (i >= p.n) return;", "if (i >= p.n) retrun;");
    CHECK(broken && shader_rewrite(dir, "add.comp", broken) == 0, "rewrite add.comp");
    nc = sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64);
    CHECK(nc == 0, "a file that does not compile is not a rebuild (%d)", nc);
    CHECK_OK(sym_vk_shader_dir_get(sd, "add", NULL, &code, &n));
    CHECK(code_eq(code, n, add1, add1_n), "add keeps its previous code");
    char *log = shader_log_text(log_path);
    char want[2200];
    snprintf(want, sizeof want, "%s/add.comp:%d: error", dir, bad_line);
    CHECK(strstr(log, "ERROR vulkan: kernel add keeps its current pipeline") && strstr(log, want),
          "log lacks the compile error at %s: %s", want, log);
    free(log);
    CHECK(sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64) == 0, "the error is not retried");

    /* a rebuild the caller's check refuses is no rebuild either */
    int n_checked = 0;
    CHECK(shader_rewrite(dir, "add.comp", scaled) == 0, "rewrite add.comp");
    nc = sym_vk_shader_dir_poll(sd, refuse_all, &n_checked, changed, 64);
    CHECK(nc == 0 && n_checked == 1, "refused: %d changed, %d checked", nc, n_checked);
    CHECK_OK(sym_vk_shader_dir_get(sd, "add", NULL, &code, &n));
    CHECK(code_eq(code, n, add1, add1_n), "add keeps its previous code");

    /* an include: every kernel that includes it is rebuilt */
    char *common = shader_edit(dir, "common.glsl", "const uint DT_F32 = 0u;",
                               "const uint DT_F32 = 0u; // edited");
    CHECK(common && shader_rewrite(dir, "common.glsl", common) == 0, "rewrite common.glsl");
    nc = sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64);
    CHECK(nc == 2, "add and rmsnorm include common.glsl: %d rebuilt", nc);
    /* every variant in use is rebuilt, and all must compile: an error only rmsnorm_nosg sees
     * (add has no such variant in use) keeps all of rmsnorm */
    int nosg_line = line_of(dir, "common.glsl", "const bool USE_SUBGROUPS = false;");
    char *nosg_bad = shader_edit(dir, "common.glsl", "const bool USE_SUBGROUPS = false;",
                                 "const bool USE_SUBGROUPS = false; nosg_only_error");
    CHECK(nosg_bad && shader_rewrite(dir, "common.glsl", nosg_bad) == 0, "rewrite common.glsl");
    nc = sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64);
    CHECK(nc == 1 && !strcmp(changed[0], "add"), "only add rebuilt (%d: %s)", nc,
          nc ? changed[0] : "-");
    CHECK_OK(sym_vk_shader_dir_get(sd, "rmsnorm", "NO_SUBGROUP_EXT", &code, &n));
    const sym_vk_shader_blob *nb = blob("rmsnorm_nosg");
    CHECK(nb && code_eq(code, n, nb->code, nb->bytes), "rmsnorm_nosg keeps its code");
    log = shader_log_text(log_path);
    snprintf(want, sizeof want, "%s/common.glsl:%d: error", dir, nosg_line);
    CHECK(strstr(log, "kernel rmsnorm keeps its current pipeline") &&
              strstr(log, "with NO_SUBGROUP_EXT does not compile") && strstr(log, want),
          "log lacks %s: %s", want, log);
    free(log);
    CHECK(shader_rewrite(dir, "common.glsl", common) == 0, "rewrite common.glsl");
    nc = sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64);
    CHECK(nc == 2, "both rebuilt after the fix: %d", nc);
    free(nosg_bad);

    /* an include of the dir's own, found in DIR: a new file, then a change to it */
    CHECK(shader_rewrite(dir, "scale.glsl", "const float SCALE = 3.0;\n") == 0, "scale.glsl");
    char *k3 = shader_edit(dir, "add.comp", "#include \"common.glsl\"",
                           "#include \"common.glsl\"\n#include \"scale.glsl\"");
    CHECK(k3 && shader_rewrite(dir, "add.comp", k3) == 0, "add.comp");
    char *k4 = shader_edit(dir, "add.comp", "* 2.0", "* SCALE");
    CHECK(k4 && shader_rewrite(dir, "add.comp", k4) == 0, "add.comp");
    CHECK(sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64) == 1, "add with scale.glsl");
    CHECK_OK(sym_vk_shader_dir_get(sd, "add", NULL, &code, &n));
    size_t add3_n = n;
    uint32_t *add3 = malloc(n);
    if (add3 && code) memcpy(add3, code, n);
    CHECK(shader_rewrite(dir, "scale.glsl", "const float SCALE = 4.0;\n") == 0, "scale.glsl");
    nc = sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64);
    CHECK(nc == 1 && !strcmp(changed[0], "add"), "an edited include rebuilds add (%d)", nc);
    CHECK_OK(sym_vk_shader_dir_get(sd, "add", NULL, &code, &n));
    CHECK(code && !code_eq(code, n, add3, add3_n), "new SCALE, new code");
    free(k3);
    free(k4);
    free(add3);

    /* a missing kernel file: the caller's embedded code serves until the file appears */
    char softmax_path[2048];
    snprintf(softmax_path, sizeof softmax_path, "%s/softmax.comp", dir);
    size_t sm_n = 0;
    char *softmax_text = (char *)test_read_file(softmax_path, &sm_n);
    CHECK(softmax_text && unlink(softmax_path) == 0, "remove softmax.comp");
    code = add0;
    CHECK_OK(sym_vk_shader_dir_get(sd, "softmax", NULL, &code, &n));
    CHECK(code == NULL, "no file: no code (the embedded one serves)");
    CHECK(sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64) == 0, "still missing");
    log = shader_log_text(log_path);
    CHECK(strstr(log, "softmax uses its built-in SPIR-V"), "missing file logged: %s", log);
    free(log);
    CHECK(softmax_text && shader_rewrite(dir, "softmax.comp", softmax_text) == 0, "softmax back");
    nc = sym_vk_shader_dir_poll(sd, NULL, NULL, changed, 64);
    CHECK(nc == 1 && !strcmp(changed[0], "softmax"), "softmax.comp appeared (%d)", nc);
    CHECK_OK(sym_vk_shader_dir_get(sd, "softmax", NULL, &code, &n));
    const sym_vk_shader_blob *sb = blob("softmax");
    CHECK(sb && code_eq(code, n, sb->code, sb->bytes), "softmax compiled from the file");
    free(softmax_text);

    /* a first compilation that fails is an error with the compiler's message */
    CHECK(shader_rewrite(dir, "silu_mul.comp", "#version 450\nvoid main() { x = 1; }\n") == 0,
          "silu_mul.comp");
    CHECK_STATUS(sym_vk_shader_dir_get(sd, "silu_mul", NULL, &code, &n), SYM_ERR_FORMAT);
    CHECK(strstr(sym_last_error(), "silu_mul.comp:2: error"), "message: %s", sym_last_error());

    free(add1);
    free(scaled);
    free(broken);
    free(common);
    sym_vk_shader_dir_close(sd);
}

int main(void) {
    if (!sym_vk_shader_dir_available()) {
        sym_vk_shader_dir *sd = NULL;
        CHECK_STATUS(sym_vk_shader_dir_open(SYM_SOURCE_DIR "/shaders", &sd), SYM_ERR_UNSUPPORTED);
        CHECK(strstr(sym_last_error(), "libshaderc"), "message: %s", sym_last_error());
        fprintf(stderr, "test_shader_dir: built without libshaderc: the error is checked\n");
        return test_finish("test_shader_dir");
    }
    char dir[1024], log_path[1100];
    CHECK(shader_copy_dir("test_shader_dir", dir, sizeof dir) == 0, "copy shaders to %s", dir);
    snprintf(log_path, sizeof log_path, "%s.log", dir);
    unlink(log_path);
    CHECK_OK(sym_log_open_file(log_path, 0));
    sym_log_set_level(SYM_LOG_INFO);
    test_bad_dirs(dir);
    test_same_spirv(dir);
    test_reload(dir, log_path);
    sym_log_close_file();
    if (!g_test_failures) {
        shader_remove_dir(dir);
        unlink(log_path);
    }
    return test_finish("test_shader_dir");
}
