/* cli.h — shared pieces of the `symbiote` command: the common flags every engine command takes,
 * configuration assembly (defaults < INI < environment < command line) and small helpers.
 * Only tools/ print; the library reports through sym_status + sym_last_error(). */
#ifndef SYM_CLI_H
#define SYM_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "base/config.h"
#include "symbiote.h"

#define CLI_MAX_OVERRIDES 64

typedef struct cli_common {
    sym_config cfg;          /* the merged result, after cli_common_finish */
    const char *config_path; /* --config, else VK_SYMBIOTE_CONFIG */
    const char *model_path;  /* -m/--model (also [model] model_path) */
    bool fp32;
    bool force_integrated_gpu;
    const char *device;      /* --device INDEX|NAME */
    const char *backend;     /* --backend auto|vulkan|cpu|reference */
    struct { const char *section, *key, *value, *flag; } overrides[CLI_MAX_OVERRIDES];
    int n_overrides;
} cli_common;

void cli_common_init(cli_common *c);
/* If argv[*i] is a common flag, consumes it (and its values), advancing *i, and returns 1;
 * returns 0 if it is not one; -1 after printing an error (missing or bad value). */
int cli_common_parse(cli_common *c, int argc, char **argv, int *i);
/* Builds c->cfg: defaults, the INI file, the environment, then the command-line overrides;
 * applies the logging settings. Prints the error and returns non-zero on failure. */
int cli_common_finish(cli_common *c);
/* Copies the merged configuration and the engine flags (--fp32, --device, --backend, …) into
 * *ep (which keeps its own n_ctx / n_batch). */
struct sym_engine_params;
void cli_engine_params(const cli_common *c, struct sym_engine_params *ep);
/* With no model given (-m or [model] model_path), points c->cfg.model_path at the bundled toy
 * model (beside the source tree the binary was built from, or ../models beside the executable).
 * Prints an error and returns 1 if it cannot be found. */
int cli_default_model(cli_common *c);

/* A progress line on stderr for long work ("LABEL: done / total GiB (pct%) MiB/s"), redrawn at
 * most 4 times a second; cli_progress_end ends the line if one was drawn. */
typedef struct cli_progress {
    const char *label;
    double start_s, last_s;
    bool shown;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label);
void cli_progress_update(void *p, uint64_t done, uint64_t total);
int cli_progress_update_fn(void *p, uint64_t done, uint64_t total); /* returns 0: go on */
void cli_progress_end(cli_progress *p);
double cli_progress_elapsed(const cli_progress *p); /* seconds since start */
double cli_now_s(void);                              /* CLOCK_MONOTONIC, in seconds */

/* Prints the common flags' help. */
void cli_common_help(FILE *out);

/* Prints "symbiote: error: <status name>: <detail>" to stderr; returns 1 (an exit code). */
int cli_fail(sym_status st);
/* Prints "symbiote: error: <message>" to stderr; returns 2 (usage error exit code). */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sampling flags (--temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --seed):
 * like cli_common_parse (1 consumed, 0 not one, -1 error printed). *seed_set tells whether
 * --seed was given. */
int cli_sampling_parse(sym_sampling *s, bool *seed_set, int argc, char **argv, int *i);
void cli_sampling_help(FILE *out);

/* Parses a number flag value; prints an error and returns false if invalid. */
bool cli_parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out);
bool cli_parse_double(const char *flag, const char *s, double lo, double hi, double *out);

/* Prints every Vulkan device and what it offers (text, or JSON with json != 0); returns an exit
 * code (1 without a device). For `symbiote devices` and `symbiote info --devices`. */
int cli_print_devices(int json);

/* `info --packs`: builds the configuration (common holds --config / --max-pack-mb), plans the
 * packs of m with cut "buddy" or "even" (NULL: buddy) and prints the plan as text or JSON
 * (packs.c). Returns an exit code. */
typedef struct sym_model sym_model;
int cli_info_packs(const char *path, const sym_model *m, cli_common *common, const char *cut,
                   bool json);
/* The Vulkan backend's per-kernel GPU times (profile.c): a table (kernel, calls, total ms, % of
 * GPU time, ms per unit of work — per = units, e.g. tokens — and the achieved GB/s and TFLOP/s
 * of the kernels' nominal bytes and flops), or the same as a JSON array. */
struct sym_engine;
struct json_object;
void cli_print_profile(FILE *f, struct sym_engine *e, const char *title, double per);
struct json_object *cli_profile_json(struct sym_engine *e, double per);

/* Commands: each in its own cmd_*.c file, receiving argv after the command name. */
int cmd_config(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_make_model(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_devices(int argc, char **argv); /* devices.c */
int cmd_policy_sim(int argc, char **argv);

#endif
