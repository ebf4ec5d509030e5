#include "base/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "base/alloc.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static sym_log_level g_level = SYM_LOG_WARNING;
static FILE *g_file;          /* NULL: stderr */
static char *g_path;
static uint64_t g_max_bytes;
static uint64_t g_written;

static const char *const k_level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR", "OFF"};

void sym_log_set_level(sym_log_level level) { g_level = level; }
sym_log_level sym_log_get_level(void) { return g_level; }

const char *sym_log_level_name(sym_log_level level) {
    return (unsigned)level <= SYM_LOG_OFF ? k_level_names[level] : "?";
}

sym_status sym_log_level_parse(const char *name, sym_log_level *out) {
    for (int i = 0; i <= SYM_LOG_OFF; i++) {
        if (strcasecmp(name, k_level_names[i]) == 0) {
            *out = (sym_log_level)i;
            return SYM_OK;
        }
    }
    if (strcasecmp(name, "WARN") == 0) {
        *out = SYM_LOG_WARNING;
        return SYM_OK;
    }
    return SYM_FAIL(SYM_ERR_CONFIG, "unknown log level '%s' (DEBUG, INFO, WARNING, ERROR, OFF)",
                    name);
}

sym_status sym_log_open_file(const char *path, uint64_t max_bytes) {
    FILE *f = fopen(path, "a");
    if (!f) return SYM_FAIL(SYM_ERR_IO, "log: cannot open '%s': %s", path, strerror(errno));
    char *copy = sym_strdup(path);
    if (!copy) {
        fclose(f);
        return SYM_FAIL(SYM_ERR_OOM, "log: out of memory");
    }
    struct stat sb;
    pthread_mutex_lock(&g_lock);
    if (g_file) fclose(g_file);
    sym_free(g_path);
    g_file = f;
    g_path = copy;
    g_max_bytes = max_bytes;
    g_written = fstat(fileno(f), &sb) == 0 ? (uint64_t)sb.st_size : 0;
    pthread_mutex_unlock(&g_lock);
    return SYM_OK;
}

void sym_log_close_file(void) {
    pthread_mutex_lock(&g_lock);
    if (g_file) fclose(g_file);
    g_file = NULL;
    sym_free(g_path);
    g_path = NULL;
    pthread_mutex_unlock(&g_lock);
}

/* Called with the lock held. On failure to reopen, logging falls back to stderr. */
static void rotate_locked(void) {
    size_t n = strlen(g_path);
    char *old = sym_malloc(n + 3);
    if (!old) return;
    memcpy(old, g_path, n);
    memcpy(old + n, ".1", 3);
    fclose(g_file);
    rename(g_path, old);
    sym_free(old);
    g_file = fopen(g_path, "a");
    g_written = 0;
}

void sym_log(sym_log_level level, const char *fmt, ...) {
    if (level < g_level || level >= SYM_LOG_OFF) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&g_lock);
    FILE *out = g_file ? g_file : stderr;
    int n;
    if (g_file) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = fprintf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s\n", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    ts.tv_nsec / 1000000, k_level_names[level], msg);
    } else {
        n = fprintf(out, "symbiote: %s: %s\n", level == SYM_LOG_WARNING ? "warning"
                                               : level == SYM_LOG_ERROR ? "error"
                                               : level == SYM_LOG_INFO  ? "info"
                                                                        : "debug",
                    msg);
    }
    fflush(out);
    if (g_file && n > 0) {
        g_written += (uint64_t)n;
        if (g_max_bytes && g_written >= g_max_bytes) rotate_locked();
    }
    pthread_mutex_unlock(&g_lock);
}
