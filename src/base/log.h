/* log.h — leveled logging to stderr or a size-rotated file. Thread-safe.
 * The library logs only through here; tools decide the level and the sink. */
#ifndef SYM_BASE_LOG_H
#define SYM_BASE_LOG_H

#include <stdint.h>

#include "base/status.h"

typedef enum sym_log_level {
    SYM_LOG_DEBUG = 0,
    SYM_LOG_INFO,
    SYM_LOG_WARNING,
    SYM_LOG_ERROR,
    SYM_LOG_OFF,
} sym_log_level;

void sym_log_set_level(sym_log_level level);
sym_log_level sym_log_get_level(void);
/* "DEBUG", "INFO", "WARNING" (or "WARN"), "ERROR", "OFF", case-insensitive. */
sym_status sym_log_level_parse(const char *name, sym_log_level *out);
const char *sym_log_level_name(sym_log_level level);

/* Sends log lines to path (appending); when the file would grow past max_bytes it is renamed to
 * path.1 (replacing an older one) and a new file is started. max_bytes 0: never rotate.
 * Fails with SYM_ERR_IO if the file cannot be opened. */
sym_status sym_log_open_file(const char *path, uint64_t max_bytes);
/* Back to stderr (closes any log file). */
void sym_log_close_file(void);

void sym_log(sym_log_level level, const char *fmt, ...) SYM_PRINTF(2, 3);

#define SYM_DEBUG(...) sym_log(SYM_LOG_DEBUG, __VA_ARGS__)
#define SYM_INFO(...) sym_log(SYM_LOG_INFO, __VA_ARGS__)
#define SYM_WARN(...) sym_log(SYM_LOG_WARNING, __VA_ARGS__)
#define SYM_ERROR(...) sym_log(SYM_LOG_ERROR, __VA_ARGS__)

#endif
