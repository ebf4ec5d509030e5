/* Hot-swappable shaders on a Vulkan device (lavapipe in CI): a backend whose kernels are compiled
 * at run time from a copy of shaders/ gives bit-for-bit the results of the embedded SPIR-V;
 * rewriting add.comp while the backend lives rebuilds its pipeline at the next batch (the sum
 * doubles), never in the middle of one; a syntax error keeps the previous pipeline and logs the
 * compiler's file:line; restoring the file restores the sum; a kernel file that is missing falls
 * back to the embedded SPIR-V; sources are polled at most every shader_poll_ms.
 * Exit 77 only when there is no Vulkan device at all.
 */
#include "shader_dir_util.h"
#include "test_util.h"
#include "vk/device.h"
#include "vk/ops.h"
#include "vk/shader_dir.h"

#include "base/half.h"

#define N_COLS 1000
#define N_ROWS 3

static test_rng g_rng;

static void fill(float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        v[i] = test_rng_f32(&g_rng) * 2.0f;
}

static sym_tensor upload(sym_backend *b, sym_dtype type, int64_t cols, int64_t rows,
                         const void *host) {
    sym_tensor t;
    CHECK_OK(b->ops->load(b, &t, host, type, cols, rows));
    return t;
}

/* Reads t (f32) into a new array (caller frees); NULL and a failed check on error. */
static float *download(sym_backend *b, const sym_tensor *t) {
    size_t n = sym_tensor_bytes(t);
    float *v = malloc(n);
    sym_status st = b->ops->read(b, t, v, n);
    CHECK(st == SYM_OK, "read: %s %s", sym_status_name(st), sym_last_error());
    if (st != SYM_OK) {
        free(v);
        return NULL;
    }
    return v;
}

/* The inputs of every op, the same for both backends. */
typedef struct inputs {
    float x[N_ROWS * N_COLS], y[N_ROWS * N_COLS], w_norm[N_COLS];
    float xm[20 * 256];
    uint16_t w_mat[300 * 256]; /* f16 */
    float xr[N_ROWS * 64];
} inputs;

/* Runs a set of ops on b; outputs concatenated (caller frees), *n floats. */
static float *run_ops(sym_backend *b, const inputs *in, size_t *n) {
    const size_t sizes[] = {N_ROWS * N_COLS, N_ROWS * N_COLS, N_ROWS * N_COLS, N_ROWS * N_COLS,
                            3 * 300,         20 * 300,        N_ROWS * 64};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        total += sizes[i];
    float *all = calloc(total, sizeof *all);
    *n = total;
    sym_tensor x = upload(b, SYM_DT_F32, N_COLS, N_ROWS, in->x);
    sym_tensor y = upload(b, SYM_DT_F32, N_COLS, N_ROWS, in->y);
    sym_tensor g = upload(b, SYM_DT_F32, N_COLS, 1, in->w_norm);
    sym_tensor xm = upload(b, SYM_DT_F32, 256, 20, in->xm);
    sym_tensor wm = upload(b, SYM_DT_F16, 256, 300, in->w_mat);
    sym_tensor xr = upload(b, SYM_DT_F32, 64, N_ROWS, in->xr);
    sym_tensor o[6];
    const int64_t oc[6] = {N_COLS, N_COLS, N_COLS, N_COLS, 300, 300};
    const int64_t orows[6] = {N_ROWS, N_ROWS, N_ROWS, N_ROWS, 3, 20};
    for (int i = 0; i < 6; i++)
        CHECK_OK(b->ops->alloc(b, &o[i], SYM_DT_F32, oc[i], orows[i]));
    b->ops->add(b, &o[0], &x, &y);
    b->ops->silu_mul(b, &o[1], &x, &y);
    b->ops->rmsnorm(b, &o[2], &x, &g, 1e-5f);
    b->ops->add(b, &o[3], &x, &y);
    b->ops->softmax(b, &o[3]);
    sym_tensor xm3 = sym_tensor_rows(&xm, 0, 3);
    b->ops->matmul(b, &o[4], &xm3, &wm, NULL); /* decode: matrix-vector kernel */
    b->ops->matmul(b, &o[5], &xm, &wm, NULL);  /* prefill: matrix-matrix kernel */
    b->ops->rope(b, &xr, 4, 16, 5, 10000.0f, 1.0f, 0);
    size_t at = 0;
    for (int i = 0; i < 7; i++) {
        float *v = download(b, i < 6 ? &o[i] : &xr);
        if (v) memcpy(all + at, v, sizes[i] * sizeof *v);
        free(v);
        at += sizes[i];
    }
    for (int i = 0; i < 6; i++)
        b->ops->release(b, &o[i]);
    sym_tensor *ts[] = {&x, &y, &g, &xm, &wm, &xr};
    for (int i = 0; i < 6; i++)
        b->ops->release(b, ts[i]);
    return all;
}

/* out = x + y on b, read back; NULL on failure. */
static float *add_once(sym_backend *b, const sym_tensor *x, const sym_tensor *y, sym_tensor *out) {
    b->ops->add(b, out, x, y);
    return download(b, out);
}

/* 1 if got[i] == k * (x[i] + y[i]) exactly, for every i. */
static int is_scaled_sum(const float *got, const inputs *in, float k) {
    if (!got) return 0;
    for (size_t i = 0; i < N_ROWS * N_COLS; i++)
        if (got[i] != k * (in->x[i] + in->y[i])) return 0;
    return 1;
}

static sym_status make_backend(const char *dir, int poll_ms, sym_backend **out) {
    sym_vk_options o;
    sym_vk_options_init(&o);
    o.pipeline_cache_dir = SYM_BUILD_DIR "/vk-cache";
    o.shader_dir = dir;
    o.shader_poll_ms = poll_ms;
    return sym_vk_backend_create(&o, out);
}

static void test_reload(const char *dir, const char *log_path, const inputs *in) {
    sym_backend *b = NULL;
    CHECK_OK(make_backend(dir, -1, &b));
    if (!b) return;
    sym_tensor x = upload(b, SYM_DT_F32, N_COLS, N_ROWS, in->x);
    sym_tensor y = upload(b, SYM_DT_F32, N_COLS, N_ROWS, in->y);
    sym_tensor out, out2;
    CHECK_OK(b->ops->alloc(b, &out, SYM_DT_F32, N_COLS, N_ROWS));
    CHECK_OK(b->ops->alloc(b, &out2, SYM_DT_F32, N_COLS, N_ROWS));
    float *got = add_once(b, &x, &y, &out);
    CHECK(is_scaled_sum(got, in, 1.0f), "x + y before any change");
    free(got);

    char *orig = shader_edit(dir, "add.comp", "", "");
    char *doubled = shader_edit(dir, "add.comp", "a[p.a_off + i] + b[p.b_off + i]",
                                "(a[p.a_off + i] + b[p.b_off + i]) * 2.0");
    CHECK(orig && doubled, "read add.comp");
    if (!orig || !doubled) goto done;

    /* changed while a batch is being recorded: that batch keeps the old pipeline */
    b->ops->add(b, &out, &x, &y);
    CHECK(shader_rewrite(dir, "add.comp", doubled) == 0, "rewrite add.comp");
    b->ops->add(b, &out2, &x, &y);
    got = download(b, &out);
    CHECK(is_scaled_sum(got, in, 1.0f), "the batch recorded before the change");
    free(got);
    got = download(b, &out2);
    CHECK(is_scaled_sum(got, in, 1.0f), "an op recorded into a running batch is not rebuilt");
    free(got);
    CHECK(sym_vk_backend_shader_reloads(b) == 0, "no reload inside a batch");

    /* the next batch: rebuilt from the new source */
    got = add_once(b, &x, &y, &out);
    CHECK(is_scaled_sum(got, in, 2.0f), "add rebuilt from the changed file: 2 (x + y)");
    free(got);
    CHECK(sym_vk_backend_shader_reloads(b) == 1, "one reload, got %llu",
          (unsigned long long)sym_vk_backend_shader_reloads(b));

    /* a syntax error: the previous pipeline stays, the error is logged with file:line */
    int line = 0;
    {
        char *at = strstr(orig, "if (i >= p.n) return;");
        line = at ? 1 : 0;
        for (char *c = orig; at && c < at; c++)
            line += *c == '\n';
    }
    char *broken = shader_edit(dir, "add.comp", "if (i >= p.n) return;", "if (i >= p.n) retrun;");
    CHECK(broken && shader_rewrite(dir, "add.comp", broken) == 0, "rewrite add.comp");
    free(broken);
    got = add_once(b, &x, &y, &out);
    CHECK(is_scaled_sum(got, in, 2.0f), "a file that does not compile keeps the last pipeline");
    free(got);
    CHECK(sym_vk_backend_shader_reloads(b) == 1, "a failed compilation is no reload");
    char *log = shader_log_text(log_path);
    char want[2200];
    snprintf(want, sizeof want, "%s/add.comp:%d: error", dir, line);
    CHECK(strstr(log, "ERROR vulkan: kernel add keeps its current pipeline") && strstr(log, want) &&
              strstr(log, "retrun"),
          "log lacks the compile error at %s:\n%s", want, log);
    free(log);

    /* a push-constant block that no longer matches src/vk/push.h is refused the same way (the
     * doubled kernel as the base; no op runs between the two writes, so none polls) */
    CHECK(shader_rewrite(dir, "add.comp", doubled) == 0, "rewrite add.comp");
    char *pushed = shader_edit(dir, "add.comp", "uint n, a_off, b_off, out_off;",
                               "uint n, a_off, b_off, out_off, extra;");
    CHECK(pushed && shader_rewrite(dir, "add.comp", pushed) == 0, "rewrite add.comp");
    free(pushed);
    got = add_once(b, &x, &y, &out);
    CHECK(is_scaled_sum(got, in, 2.0f), "a changed push-constant block keeps the last pipeline");
    free(got);
    CHECK(sym_vk_backend_shader_reloads(b) == 1, "a refused kernel is no reload");
    log = shader_log_text(log_path);
    CHECK(strstr(log, "kernel add declares 20 push-constant bytes, src/vk/push.h 16"),
          "log lacks the push-constant mismatch:\n%s", log);
    free(log);

    /* the file fixed (back to the original): back to x + y */
    CHECK(shader_rewrite(dir, "add.comp", orig) == 0, "rewrite add.comp");
    got = add_once(b, &x, &y, &out);
    CHECK(is_scaled_sum(got, in, 1.0f), "add rebuilt from the restored file");
    free(got);
    CHECK(sym_vk_backend_shader_reloads(b) == 2, "two reloads, got %llu",
          (unsigned long long)sym_vk_backend_shader_reloads(b));
done:
    free(orig);
    free(doubled);
    sym_tensor *ts[] = {&x, &y, &out, &out2};
    for (int i = 0; i < 4; i++)
        b->ops->release(b, ts[i]);
    b->ops->destroy(b);
}

/* Sources are looked at no more often than shader_poll_ms. */
static void test_poll_interval(const char *dir, const inputs *in) {
    sym_backend *b = NULL;
    CHECK_OK(make_backend(dir, 1000, &b));
    if (!b) return;
    sym_tensor x = upload(b, SYM_DT_F32, N_COLS, N_ROWS, in->x);
    sym_tensor y = upload(b, SYM_DT_F32, N_COLS, N_ROWS, in->y);
    sym_tensor out;
    CHECK_OK(b->ops->alloc(b, &out, SYM_DT_F32, N_COLS, N_ROWS));
    free(add_once(b, &x, &y, &out)); /* the pipeline is built */
    struct timespec pause = {.tv_sec = 1, .tv_nsec = 100000000};
    nanosleep(&pause, NULL);
    free(add_once(b, &x, &y, &out)); /* polls now: nothing changed */
    char *orig = shader_edit(dir, "add.comp", "", "");
    char *doubled = shader_edit(dir, "add.comp", "a[p.a_off + i] + b[p.b_off + i]",
                                "(a[p.a_off + i] + b[p.b_off + i]) * 2.0");
    CHECK(orig && doubled && shader_rewrite(dir, "add.comp", doubled) == 0, "rewrite add.comp");
    float *got = add_once(b, &x, &y, &out);
    CHECK(is_scaled_sum(got, in, 1.0f), "within the poll interval: not looked at yet");
    free(got);
    nanosleep(&pause, NULL);
    got = add_once(b, &x, &y, &out);
    CHECK(is_scaled_sum(got, in, 2.0f), "after the poll interval: rebuilt");
    free(got);
    if (orig) CHECK(shader_rewrite(dir, "add.comp", orig) == 0, "restore add.comp");
    free(orig);
    free(doubled);
    sym_tensor *ts[] = {&x, &y, &out};
    for (int i = 0; i < 3; i++)
        b->ops->release(b, ts[i]);
    b->ops->destroy(b);
}

int main(void) {
    g_rng = test_rng_init("test_vk_hot_reload");
    sym_backend *emb = NULL;
    sym_status st = make_backend(NULL, 0, &emb);
    if (st == SYM_ERR_NO_DEVICE) {
        fprintf(stderr, "test_vk_hot_reload: no Vulkan device (%s): skipped\n", sym_last_error());
        return TEST_SKIP;
    }
    CHECK_OK(st);
    if (st != SYM_OK) return test_finish("test_vk_hot_reload");
    char dir[1024], log_path[1100];
    CHECK(shader_copy_dir("test_vk_hot_reload", dir, sizeof dir) == 0, "copy shaders to %s", dir);
    if (!sym_vk_shader_dir_available()) {
        sym_backend *b = NULL;
        CHECK_STATUS(make_backend(dir, 0, &b), SYM_ERR_UNSUPPORTED);
        fprintf(stderr, "test_vk_hot_reload: built without libshaderc: the error is checked\n");
        emb->ops->destroy(emb);
        shader_remove_dir(dir);
        return test_finish("test_vk_hot_reload");
    }
    snprintf(log_path, sizeof log_path, "%s.log", dir);
    unlink(log_path);
    CHECK_OK(sym_log_open_file(log_path, 0));
    sym_log_set_level(SYM_LOG_DEBUG);

    static inputs in;
    fill(in.x, N_ROWS * N_COLS);
    fill(in.y, N_ROWS * N_COLS);
    fill(in.w_norm, N_COLS);
    fill(in.xm, 20 * 256);
    fill(in.xr, N_ROWS * 64);
    for (size_t i = 0; i < 300 * 256; i++)
        in.w_mat[i] = sym_f32_to_f16(test_rng_f32(&g_rng));

    /* (a) the same results from the shader dir as from the embedded SPIR-V */
    size_t n_emb = 0, n_dir = 0;
    float *r_emb = run_ops(emb, &in, &n_emb);
    sym_backend *fromdir = NULL;
    CHECK_OK(make_backend(dir, -1, &fromdir));
    if (fromdir) {
        float *r_dir = run_ops(fromdir, &in, &n_dir);
        CHECK(n_emb == n_dir && !memcmp(r_emb, r_dir, n_emb * sizeof *r_emb),
              "results from the shader dir differ from the embedded kernels'");
        free(r_dir);
        fromdir->ops->destroy(fromdir);
    }
    free(r_emb);
    char *log = shader_log_text(log_path);
    static const char *const used[] = {"add",  "silu_mul", "rmsnorm", "softmax",
                                       "rope", "matvec",   "matmul"};
    for (int i = 0; i < 7; i++) {
        char want[1200];
        snprintf(want, sizeof want, "compiled %s/%s.comp", dir, used[i]);
        CHECK(strstr(log, want), "kernel %s was not compiled from the dir", used[i]);
    }
    free(log);

    /* (b), (c): rebuilt on change, kept on a compile error */
    test_reload(dir, log_path, &in);
    test_poll_interval(dir, &in);

    /* a kernel without a file in the dir: the embedded SPIR-V, logged */
    char sm[1200];
    snprintf(sm, sizeof sm, "%s/softmax.comp", dir);
    CHECK(unlink(sm) == 0, "remove %s", sm);
    CHECK_OK(make_backend(dir, -1, &fromdir));
    if (fromdir) {
        float *r_dir = run_ops(fromdir, &in, &n_dir);
        r_emb = run_ops(emb, &in, &n_emb);
        CHECK(n_emb == n_dir && !memcmp(r_emb, r_dir, n_emb * sizeof *r_emb),
              "results with the embedded softmax differ");
        free(r_emb);
        free(r_dir);
        fromdir->ops->destroy(fromdir);
    }
    log = shader_log_text(log_path);
    CHECK(strstr(log, "kernel softmax uses its built-in SPIR-V"), "fallback logged");
    free(log);

    emb->ops->destroy(emb);
    sym_log_close_file();
    CHECK(sym_vk_validation_error_count() == 0, "%d validation errors",
          sym_vk_validation_error_count());
    if (!g_test_failures) {
        shader_remove_dir(dir);
        unlink(log_path);
    }
    return test_finish("test_vk_hot_reload");
}
