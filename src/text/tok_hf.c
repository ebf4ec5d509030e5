#include "text/tok_impl.h"
sym_status sym_tokenizer_create_hf(const char *json, size_t json_len, const char *config,
                                   size_t config_len, sym_tokenizer **out) {
    (void)json; (void)json_len; (void)config; (void)config_len;
    *out = NULL;
    return SYM_FAIL(SYM_ERR_UNSUPPORTED, "todo");
}
