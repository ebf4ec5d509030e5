/* shader_dir_util.h — for the shader-dir tests: a scratch copy of shaders/, files rewritten with
 * a new modification time, the log captured in a file. */
#ifndef SYM_TEST_SHADER_DIR_UTIL_H
#define SYM_TEST_SHADER_DIR_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "test_util.h"

/* Makes SYM_BUILD_DIR/<name>.<pid>.tmp/ holding a copy of the source tree's shaders/ (out gets
 * its path). -1 on failure. */
static inline int shader_copy_dir(const char *name, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s.%d.tmp", SYM_BUILD_DIR, name, (int)getpid());
    if (mkdir(out, 0755) != 0) return -1;
    DIR *d = opendir(SYM_SOURCE_DIR "/shaders");
    if (!d) return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char src[2048], dst[2048];
        snprintf(src, sizeof src, "%s/shaders/%s", SYM_SOURCE_DIR, e->d_name);
        snprintf(dst, sizeof dst, "%s/%s", out, e->d_name);
        size_t n = 0;
        unsigned char *text = test_read_file(src, &n);
        if (!text || test_write_file(dst, text, n) != 0) rc = -1;
        free(text);
    }
    closedir(d);
    return rc;
}

static inline void shader_remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Writes text to dir/file and gives it a modification time no earlier write had (whatever the
 * file system's timestamp granularity). -1 on failure. */
static inline int shader_rewrite(const char *dir, const char *file, const char *text) {
    static long s_tick = 1000000000;
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    if (test_write_file(p, text, strlen(text)) != 0) return -1;
    struct timespec ts[2] = {{.tv_sec = ++s_tick}, {.tv_sec = s_tick}};
    return utimensat(AT_FDCWD, p, ts, 0);
}

/* dir/file's text with the first `from` replaced by `to` (caller frees); NULL if absent. */
static inline char *shader_edit(const char *dir, const char *file, const char *from,
                                const char *to) {
    char p[2048];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    size_t n = 0;
    char *text = (char *)test_read_file(p, &n);
    char *at = text ? strstr(text, from) : NULL;
    if (!at) {
        free(text);
        return NULL;
    }
    size_t lf = strlen(from), lt = strlen(to);
    char *out = malloc(n - lf + lt + 1);
    if (out) {
        memcpy(out, text, (size_t)(at - text));
        memcpy(out + (at - text), to, lt);
        strcpy(out + (at - text) + lt, at + lf);
    }
    free(text);
    return out;
}

/* The log so far (caller frees); "" if none. */
static inline char *shader_log_text(const char *path) {
    size_t n = 0;
    char *t = (char *)test_read_file(path, &n);
    return t ? t : calloc(1, 1);
}

#endif
