#include "text/chat.h"

#include <string.h>

static const char *const k_names[SYM_CHAT_COUNT] = {
    "none", "chatml", "llama2", "llama3", "mistral", "phi3", "zephyr", "gemma",
};

const char *sym_chat_template_name(sym_chat_template t) {
    return (unsigned)t < SYM_CHAT_COUNT ? k_names[t] : "?";
}

sym_status sym_chat_template_parse(const char *name, sym_chat_template *out) {
    for (int i = 0; i < SYM_CHAT_COUNT; i++)
        if (!strcmp(name, k_names[i])) {
            *out = (sym_chat_template)i;
            return SYM_OK;
        }
    return SYM_FAIL(SYM_ERR_ARG, "unknown chat template '%s' (none, chatml, llama2, llama3, "
                    "mistral, phi3, zephyr, gemma)", name);
}

static bool has(const char *s, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++)
        if (!memcmp(s + i, needle, n)) return true;
    return false;
}

sym_chat_template sym_chat_detect(const char *j, size_t len) {
    if (!j || !len) return SYM_CHAT_NONE;
    if (has(j, len, "<|im_start|>")) return SYM_CHAT_CHATML;
    if (has(j, len, "<|start_header_id|>")) return SYM_CHAT_LLAMA3;
    if (has(j, len, "<start_of_turn>")) return SYM_CHAT_GEMMA;
    if (has(j, len, "<|assistant|>") && has(j, len, "<|end|>")) return SYM_CHAT_PHI3;
    if (has(j, len, "<|user|>")) return SYM_CHAT_ZEPHYR;
    if (has(j, len, "[INST]")) return has(j, len, "<<SYS>>") ? SYM_CHAT_LLAMA2 : SYM_CHAT_MISTRAL;
    return SYM_CHAT_NONE;
}

/* A bounded string builder: counts the full length even past cap. */
typedef struct sb {
    char *out;
    size_t cap, len;
} sb;

static void put(sb *b, const char *s) {
    size_t n = strlen(s);
    if (b->len < b->cap) {
        size_t room = b->cap - b->len;
        memcpy(b->out + b->len, s, n < room ? n : room);
    }
    b->len += n;
}

typedef enum { R_SYSTEM, R_USER, R_ASSISTANT } role;

static int role_of(const char *r) {
    if (!strcmp(r, "system")) return R_SYSTEM;
    if (!strcmp(r, "user")) return R_USER;
    if (!strcmp(r, "assistant")) return R_ASSISTANT;
    return -1;
}

/* [INST] families: the system prompt rides inside the first user turn. */
static void format_inst(sb *b, const sym_chat_msg *m, size_t n, bool llama2) {
    const char *system = NULL;
    bool first_user = true;
    for (size_t i = 0; i < n; i++) {
        int r = role_of(m[i].role);
        if (r == R_SYSTEM) {
            system = m[i].content;
        } else if (r == R_USER) {
            put(b, first_user ? "[INST] " : "<s>[INST] ");
            if (system) {
                put(b, llama2 ? "<<SYS>>\n" : "");
                put(b, system);
                put(b, llama2 ? "\n<</SYS>>\n\n" : "\n\n");
                system = NULL;
            }
            put(b, m[i].content);
            put(b, llama2 ? " [/INST]" : "[/INST]");
            first_user = false;
        } else {
            put(b, " ");
            put(b, m[i].content);
            put(b, "</s>");
        }
    }
}

sym_status sym_chat_format(sym_chat_template t, const sym_chat_msg *m, size_t n, bool add_gen,
                           char *out, size_t cap, size_t *n_out) {
    for (size_t i = 0; i < n; i++)
        SYM_CHECK(role_of(m[i].role) >= 0, SYM_ERR_ARG,
                  "chat: unknown role '%s' (system, user, assistant)", m[i].role);
    SYM_CHECK((unsigned)t < SYM_CHAT_COUNT, SYM_ERR_ARG, "chat: bad template");
    sb b = {out, cap, 0};
    switch (t) {
    case SYM_CHAT_NONE:
        for (size_t i = 0; i < n; i++) put(&b, m[i].content);
        break;
    case SYM_CHAT_CHATML:
        for (size_t i = 0; i < n; i++) {
            put(&b, "<|im_start|>");
            put(&b, m[i].role);
            put(&b, "\n");
            put(&b, m[i].content);
            put(&b, "<|im_end|>\n");
        }
        if (add_gen) put(&b, "<|im_start|>assistant\n");
        break;
    case SYM_CHAT_LLAMA3:
        for (size_t i = 0; i < n; i++) {
            put(&b, "<|start_header_id|>");
            put(&b, m[i].role);
            put(&b, "<|end_header_id|>\n\n");
            put(&b, m[i].content);
            put(&b, "<|eot_id|>");
        }
        if (add_gen) put(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case SYM_CHAT_LLAMA2:
    case SYM_CHAT_MISTRAL:
        format_inst(&b, m, n, t == SYM_CHAT_LLAMA2);
        break;
    case SYM_CHAT_PHI3:
    case SYM_CHAT_ZEPHYR:
        for (size_t i = 0; i < n; i++) {
            put(&b, "<|");
            put(&b, m[i].role);
            put(&b, "|>\n");
            put(&b, m[i].content);
            put(&b, t == SYM_CHAT_PHI3 ? "<|end|>\n" : "</s>\n");
        }
        if (add_gen) put(&b, "<|assistant|>\n");
        break;
    case SYM_CHAT_GEMMA: {
        const char *system = NULL;
        for (size_t i = 0; i < n; i++) {
            int r = role_of(m[i].role);
            if (r == R_SYSTEM) { /* Gemma has no system role: prepend to the next user turn */
                system = m[i].content;
                continue;
            }
            put(&b, r == R_USER ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
            if (system && r == R_USER) {
                put(&b, system);
                put(&b, "\n\n");
                system = NULL;
            }
            put(&b, m[i].content);
            put(&b, "<end_of_turn>\n");
        }
        if (add_gen) put(&b, "<start_of_turn>model\n");
        break;
    }
    default:
        break;
    }
    *n_out = b.len;
    if (b.len < cap) out[b.len] = '\0';
    return b.len < cap ? SYM_OK : SYM_FAIL(SYM_ERR_RANGE, "chat: %zu bytes needed", b.len + 1);
}
