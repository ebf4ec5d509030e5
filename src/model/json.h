/* json.h — strict JSON for the model loaders (config.json, safetensors headers, index files),
 * on top of json-c. json-c alone accepts single quotes and NaN and silently keeps the last of
 * duplicate keys; sym_json_parse rejects all three, so a hostile file cannot smuggle in a second
 * definition of a tensor or a hyperparameter. */
#ifndef SYM_MODEL_JSON_H
#define SYM_MODEL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "base/status.h"

#define SYM_JSON_MAX_DEPTH 64

/* Parses len bytes of text (trailing whitespace allowed). what names the input in details
 * ("safetensors header", "config.json"). SYM_ERR_FORMAT with the offset of the problem,
 * SYM_ERR_OOM. On success the caller owns *out (json_object_put). */
sym_status sym_json_parse(const char *what, const char *text, size_t len, json_object **out);

/* Reads a whole file of at most max_bytes into a NUL-terminated buffer (caller: sym_free).
 * SYM_ERR_IO if it cannot be read, SYM_ERR_FORMAT if larger than max_bytes. */
sym_status sym_json_read_file(const char *path, size_t max_bytes, char **text, size_t *len);

/* Members of objects, with types checked. Absent: *_opt return SYM_OK and leave *out unset;
 * a value of another type (or out of range) is SYM_ERR_FORMAT naming what.key. A JSON null
 * counts as absent for the _opt getters. */
sym_status sym_json_get_int(const char *what, json_object *obj, const char *key, int64_t lo,
                            int64_t hi, int64_t *out);
sym_status sym_json_get_int_opt(const char *what, json_object *obj, const char *key, int64_t lo,
                                int64_t hi, int64_t *out);
sym_status sym_json_get_num_opt(const char *what, json_object *obj, const char *key, double *out);
sym_status sym_json_get_bool_opt(const char *what, json_object *obj, const char *key, int *out);
sym_status sym_json_get_str(const char *what, json_object *obj, const char *key,
                            const char **out);
sym_status sym_json_get_str_opt(const char *what, json_object *obj, const char *key,
                                const char **out);

/* Copies at most 40 bytes of an untrusted string for a message, replacing non-printable bytes. */
const char *sym_json_show(const char *s, char buf[48]);

#endif
