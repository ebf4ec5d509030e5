/* chat.h — chat templates: turning a list of (role, content) messages into the text a chat model
 * was trained on. Models carry a Jinja template (GGUF tokenizer.chat_template, HF
 * tokenizer_config.json); rather than running Jinja, we recognize the common families by their
 * markers, as llama.cpp does, and format them in C. Unknown templates → SYM_CHAT_NONE: messages
 * are concatenated as plain text (completion-style). */
#ifndef SYM_TEXT_CHAT_H
#define SYM_TEXT_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

typedef enum sym_chat_template {
    SYM_CHAT_NONE = 0, /* plain text: each message's content, nothing around it */
    SYM_CHAT_CHATML,   /* <|im_start|>role\n…<|im_end|>\n  (Qwen, many fine-tunes) */
    SYM_CHAT_LLAMA2,   /* [INST] <<SYS>>…<</SYS>> … [/INST] …</s> */
    SYM_CHAT_LLAMA3,   /* <|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|> */
    SYM_CHAT_MISTRAL,  /* [INST] …[/INST] …</s> */
    SYM_CHAT_PHI3,     /* <|role|>\n…<|end|>\n */
    SYM_CHAT_ZEPHYR,   /* <|role|>\n…</s>\n */
    SYM_CHAT_GEMMA,    /* <start_of_turn>user|model\n…<end_of_turn>\n */
    SYM_CHAT_COUNT
} sym_chat_template;

typedef struct sym_chat_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} sym_chat_msg;

/* The family a Jinja template text belongs to (SYM_CHAT_NONE if unrecognized or NULL). */
sym_chat_template sym_chat_detect(const char *jinja, size_t len);
/* "none", "chatml", "llama2", "llama3", "mistral", "phi3", "zephyr", "gemma". */
const char *sym_chat_template_name(sym_chat_template t);
/* Parses a name above; SYM_ERR_ARG listing the names otherwise. */
sym_status sym_chat_template_parse(const char *name, sym_chat_template *out);

/* Formats msgs (add_generation_prompt: end with the assistant turn's opening). Roles other than
 * system/user/assistant → SYM_ERR_ARG. The text never contains BOS: the tokenizer adds it.
 * Writes at most cap bytes (NUL-terminated when it fits); *n_out gets the full length and
 * SYM_ERR_RANGE says cap was too small. */
sym_status sym_chat_format(sym_chat_template t, const sym_chat_msg *msgs, size_t n,
                           bool add_generation_prompt, char *out, size_t cap, size_t *n_out);

#endif
