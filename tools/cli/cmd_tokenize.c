/* symbiote tokenize: text -> token ids with the model's tokenizer (GGUF metadata or an HF
 * tokenizer.json), printed on one line, or one "id<TAB>piece" line per token. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cli.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

static void usage(FILE *out) {
    fputs(
        "usage: symbiote tokenize -m MODEL [--no-bos] [--special] [--pieces] (--file PATH | TEXT)\n"
        "Prints the token ids of TEXT (or of the raw bytes of PATH; '-' reads stdin) on one line.\n"
        "MODEL is a .gguf file (vocab-only files too), a tokenizer.json, or a directory holding\n"
        "one.\n\n"
        "  --no-bos    do not prepend BOS (by default it is added when the model asks for it)\n"
        "  --special   parse control tokens such as <s> or <|im_start|> in the text\n"
        "  --pieces    print 'id<TAB>piece' per token; the piece is the text the token stands\n"
        "              for, with \\n \\t \\r \\\\ escaped and bytes that are not complete UTF-8\n"
        "              written as \\xNN\n\n",
        out);
    cli_common_help(out);
}

static int read_input(const char *path, char **data, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "symbiote: error: cannot open '%s'\n", path);
        return 1;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *bigger = realloc(buf, cap *= 2);
        if (!bigger) free(buf);
        buf = bigger;
    }
    int err = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || err) {
        free(buf);
        fprintf(stderr, "symbiote: error: cannot read '%s'\n", path);
        return 1;
    }
    *data = buf;
    *len = n;
    return 0;
}

static void print_piece(const char *p, size_t n) {
    const uint8_t *s = (const uint8_t *)p;
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else if (c < 0x80)
            putchar(c);
        else {
            size_t l = sym_utf8_valid_len(s + i, n - i);
            if (l) {
                fwrite(s + i, 1, l, stdout);
                i += l;
                continue;
            }
            printf("\\x%02x", c);
        }
        i++;
    }
}

int cmd_tokenize(int argc, char **argv) {
    cli_common c;
    cli_common_init(&c);
    bool no_bos = false, special = false, pieces = false;
    const char *file = NULL, *text = NULL;
    for (int i = 0; i < argc;) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--no-bos"))
            no_bos = true;
        else if (!strcmp(a, "--special"))
            special = true;
        else if (!strcmp(a, "--pieces"))
            pieces = true;
        else if (!strcmp(a, "--file")) {
            if (i + 1 >= argc) return cli_usage_error("--file needs a path");
            file = argv[++i];
        } else {
            int r = cli_common_parse(&c, argc, argv, &i);
            if (r < 0) return 2;
            if (r > 0) continue;
            if (a[0] == '-' && a[1] != '\0')
                return cli_usage_error("tokenize: unknown option '%s'", a);
            if (text) return cli_usage_error("tokenize: give the text as one argument");
            text = a;
        }
        i++;
    }
    if (!c.model_path) return cli_usage_error("tokenize: no model (-m MODEL)");
    if (file && text) return cli_usage_error("tokenize: give either --file or TEXT, not both");
    if (!file && !text) return cli_usage_error("tokenize: no text (TEXT or --file PATH)");
    if (cli_common_finish(&c)) return 1;

    char *data = NULL;
    size_t len = 0;
    if (file && read_input(file, &data, &len)) return 1;
    if (!file) len = strlen(text);
    const char *input = file ? data : text;

    sym_tokenizer *t = NULL;
    int32_t *ids = NULL;
    int rc = 1;
    sym_status st = sym_tokenizer_open(c.model_path, &t);
    if (st != SYM_OK) {
        rc = cli_fail(st);
        goto done;
    }
    bool bos = sym_tokenizer_wants_bos(t) && !no_bos;
    size_t n = 0, cap = len + 2; /* usually enough: about one id per byte at most */
    ids = malloc(cap * sizeof *ids);
    if (!ids) {
        fprintf(stderr, "symbiote: error: out of memory\n");
        goto done;
    }
    st = sym_tokenizer_encode(t, input, len, bos, special, ids, cap, &n);
    if (st == SYM_ERR_RANGE) { /* prefix spaces after special tokens can add ids */
        int32_t *bigger = realloc(ids, n * sizeof *ids);
        if (!bigger) {
            fprintf(stderr, "symbiote: error: out of memory\n");
            goto done;
        }
        ids = bigger;
        cap = n;
        st = sym_tokenizer_encode(t, input, len, bos, special, ids, cap, &n);
    }
    if (st != SYM_OK) {
        rc = cli_fail(st);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (pieces) {
            const char *p;
            size_t pl;
            sym_tokenizer_piece(t, ids[i], &p, &pl);
            printf("%d\t", ids[i]);
            print_piece(p, pl);
            putchar('\n');
        } else {
            printf(i ? " %d" : "%d", ids[i]);
        }
    }
    if (!pieces) putchar('\n');
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    free(ids);
    free(data);
    sym_tokenizer_destroy(t);
    return rc;
}
