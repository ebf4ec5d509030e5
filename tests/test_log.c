/* Logging: level filtering and rotation at the size limit. */
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "test_util.h"

static long file_size(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 ? (long)sb.st_size : -1;
}

int main(void) {
    char path[1024], rotated[1100];
    snprintf(path, sizeof path, "%s/test_log.%d.log", SYM_BUILD_DIR, (int)getpid());
    snprintf(rotated, sizeof rotated, "%s.1", path);
    unlink(path);
    unlink(rotated);
    sym_log_level lv;
    CHECK_OK(sym_log_level_parse("warning", &lv));
    CHECK(lv == SYM_LOG_WARNING, "parse");
    CHECK_STATUS(sym_log_level_parse("chatty", &lv), SYM_ERR_CONFIG);

    CHECK_OK(sym_log_open_file(path, 4096));
    sym_log_set_level(SYM_LOG_INFO);
    SYM_DEBUG("hidden %d", 1);
    SYM_INFO("shown %d", 2);
    size_t n = 0;
    unsigned char *text = test_read_file(path, &n);
    CHECK(text && strstr((char *)text, "INFO shown 2") && !strstr((char *)text, "hidden"),
          "level filter: '%.*s'", (int)n, text ? (char *)text : "");
    free(text);
    for (int i = 0; i < 200; i++) SYM_WARN("line %03d padding padding padding padding", i);
    CHECK(file_size(rotated) >= 4096, "rotated file size %ld", file_size(rotated));
    CHECK(file_size(path) >= 0 && file_size(path) < 4096 + 256, "current file size %ld",
          file_size(path));
    text = test_read_file(path, &n);
    CHECK(text && strstr((char *)text, "line 199"), "last line in the current file");
    free(text);
    sym_log_close_file();
    CHECK_STATUS(sym_log_open_file("/nonexistent/dir/x.log", 0), SYM_ERR_IO);
    unlink(path);
    unlink(rotated);
    return test_finish("test_log");
}
