/* bench_tokenizer — tokenization speed per vocabulary on a few MB of generated mixed text (prose,
 * code, numbers, non-Latin scripts, emoji; deterministic), as JSON on stdout:
 *   {"bench": "tokenizer", "machine": {...}, "text_bytes": N, "results": [{"vocab", "mb_per_s",
 *    "chunked_mb_per_s", "tokens", "bytes_per_token", ...}]}
 * "mb_per_s" encodes the whole text in one call; "chunked_mb_per_s" in 4 KiB calls (prompt-sized,
 * so per-call setup counts). Best of 3 runs. Usage: bench_tokenizer [--mb N] [SHARED_DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "text/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t g_rng = 0x5eed5eed5eedull;
static uint64_t rnd(void) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static size_t below(size_t n) { return (size_t)(rnd() % n); }

static const char *const k_words[] = {
    "the",       "of",         "and",        "to",          "in",          "a",
    "is",        "that",       "for",        "it",          "as",          "was",
    "with",      "be",         "by",         "on",          "not",         "he",
    "this",      "are",        "or",         "his",         "from",        "at",
    "which",     "but",        "have",       "an",          "had",         "they",
    "you",       "were",       "their",      "one",         "all",         "we",
    "can",       "her",        "has",        "there",       "been",        "if",
    "more",      "when",       "will",       "would",       "who",         "so",
    "no",        "memory",     "model",      "tokens",      "inference",   "engine",
    "weights",   "gradient",   "attention",  "transformer", "vocabulary",  "streaming",
    "bandwidth", "throughput", "latency",    "parameters",  "unquantized", "schedule",
    "cathedral", "river",      "morning",    "quietly",     "remarkable",  "however",
    "although",  "because",    "government", "university",  "experiment",  "language",
    "history",   "mountain",   "beautiful",  "don't",       "it's",        "we'll",
    "they're",   "I've",       "you'd",
};
static const char *const k_unicode[] = {
    "café",    "naïve",  "résumé",   "Straße",   "über", "façade",   "jalapeño",    "Привет",
    "мир",     "данные", "日本語",   "中文文本", "東京", "한국어",   "데이터",      "Ελληνικά",
    "العربية", "हिन्दी",  "ภาษาไทย",  "🦙",     "😀",    "👍🏽", "👩‍💻", "🚀",
    "✅",       "—",      "“quoted”", "…",        "½",    "€42",
};
static const char *const k_code[] = {
    "for (int i = 0; i < n; i++) {\n",
    "    sum += a[i] * b[i];\n",
    "}\n",
    "def forward(self, x):\n",
    "    return self.proj(F.silu(x))\n",
    "if (st != SYM_OK) goto fail;\n",
    "#include <stdio.h>\n",
    "    // TODO: handle the edge case\n",
    "const auto it = map.find(key);\n",
    "\tprintf(\"%d\\n\", value);\n",
    "let total: u64 = items.iter().map(|x| x.len() as u64).sum();\n",
    "SELECT id, name FROM users WHERE age > 30;\n",
    "<div class=\"row\"><span>{{ item.title }}</span></div>\n",
    "x = [1, 2, 3]; y = {'a': 1}\n",
};

static size_t append(char *buf, size_t n, size_t cap, const char *s) {
    size_t l = strlen(s);
    if (n + l > cap) return n;
    memcpy(buf + n, s, l);
    return n + l;
}

static size_t make_text(char *buf, size_t cap) {
    size_t n = 0;
    char tmp[64];
    while (n + 256 < cap) {
        size_t kind = below(10);
        if (kind < 5) { /* a prose sentence */
            size_t words = 5 + below(20);
            for (size_t w = 0; w < words; w++) {
                const char *word = below(12)
                                       ? k_words[below(sizeof k_words / sizeof *k_words)]
                                       : k_unicode[below(sizeof k_unicode / sizeof *k_unicode)];
                if (w == 0) {
                    snprintf(tmp, sizeof tmp, "%s", word);
                    if (tmp[0] >= 'a' && tmp[0] <= 'z') tmp[0] = (char)(tmp[0] - 32);
                    n = append(buf, n, cap, tmp);
                } else {
                    n = append(buf, n, cap, " ");
                    n = append(buf, n, cap, word);
                }
                if (below(10) == 0) n = append(buf, n, cap, ",");
            }
            n = append(buf, n, cap, below(5) ? ". " : "!\n\n");
        } else if (kind < 8) { /* code */
            size_t lines = 1 + below(6);
            for (size_t l = 0; l < lines; l++)
                n = append(buf, n, cap, k_code[below(sizeof k_code / sizeof *k_code)]);
        } else if (kind < 9) { /* numbers */
            snprintf(tmp, sizeof tmp, "%zu.%02zu, %zu%%, 20%02zu-%02zu-%02zu, 0x%04zx; ",
                     below(100000), below(100), below(100), below(30), 1 + below(12), 1 + below(28),
                     below(65536));
            n = append(buf, n, cap, tmp);
        } else { /* a line of non-Latin text */
            size_t words = 3 + below(10);
            for (size_t w = 0; w < words; w++) {
                n = append(buf, n, cap, k_unicode[below(sizeof k_unicode / sizeof *k_unicode)]);
                n = append(buf, n, cap, below(3) ? " " : "");
            }
            n = append(buf, n, cap, "\n");
        }
    }
    return n;
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if ((unsigned char)*s >= 0x20) putchar(*s);
    }
    putchar('"');
}

static void cpu_model(char *out, size_t cap) {
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ')
            v++;
        snprintf(out, cap, "%s", v);
        out[strcspn(out, "\n")] = 0;
        break;
    }
    fclose(f);
}

int main(int argc, char **argv) {
    const char *shared = SYM_SHARED_DIR;
    double mb = 4.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = atof(argv[++i]);
        else
            shared = argv[i];
    }
    if (mb <= 0 || mb > 1024) mb = 4.0;
    size_t cap = (size_t)(mb * 1024 * 1024);
    char *text = malloc(cap);
    int32_t *ids = malloc(sizeof *ids * (cap + 1));
    if (!text || !ids) return 1;
    size_t len = make_text(text, cap);

    char host[256] = "unknown", cpu[256];
    gethostname(host, sizeof host - 1);
    cpu_model(cpu, sizeof cpu);
    printf("{\n  \"bench\": \"tokenizer\",\n  \"machine\": {\"hostname\": ");
    json_str(host);
    printf(", \"cpu\": ");
    json_str(cpu);
    printf(", \"n_cpu\": %ld},\n  \"text_bytes\": %zu,\n  \"results\": [",
           sysconf(_SC_NPROCESSORS_ONLN), len);

    static const char *const vocabs[] = {"llama-spm",      "phi-3", "gpt-2", "falcon",
                                         "deepseek-coder", "mpt",   "refact"};
    int rc = 0;
    for (size_t v = 0; v < sizeof vocabs / sizeof *vocabs; v++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf", shared, vocabs[v]);
        sym_tokenizer *t = NULL;
        double t0 = now_s();
        sym_status st = sym_tokenizer_open(path, &t);
        double load_s = now_s() - t0;
        if (st != SYM_OK) {
            fprintf(stderr, "bench_tokenizer: %s: %s\n", path, sym_last_error());
            rc = 1;
            continue;
        }
        double best = 1e30, best_chunked = 1e30;
        size_t n = 0;
        for (int rep = 0; rep < 3; rep++) {
            t0 = now_s();
            st = sym_tokenizer_encode(t, text, len, false, false, ids, cap + 1, &n);
            double dt = now_s() - t0;
            if (dt < best) best = dt;
            t0 = now_s();
            for (size_t off = 0; off < len && st == SYM_OK;) {
                size_t chunk = len - off < 4096 ? len - off : 4096;
                size_t m;
                st = sym_tokenizer_encode(t, text + off, chunk, false, false, ids, cap + 1, &m);
                off += chunk;
            }
            dt = now_s() - t0;
            if (dt < best_chunked) best_chunked = dt;
        }
        if (st != SYM_OK) {
            fprintf(stderr, "bench_tokenizer: %s: %s\n", vocabs[v], sym_last_error());
            rc = 1;
        }
        printf("%s\n    {\"vocab\": \"%s\", \"model\": \"%s\", \"pre\": \"%s\", \"n_vocab\": %d, "
               "\"load_s\": %.4f, \"tokens\": %zu, \"bytes_per_token\": %.3f, \"seconds\": %.4f, "
               "\"mb_per_s\": %.2f, \"chunked_mb_per_s\": %.2f}",
               v ? "," : "", vocabs[v], sym_tokenizer_model(t), sym_tokenizer_pre(t),
               sym_tokenizer_n_vocab(t), load_s, n, (double)len / (double)(n ? n : 1), best,
               (double)len / 1048576.0 / best, (double)len / 1048576.0 / best_chunked);
        sym_tokenizer_destroy(t);
    }
    printf("\n  ]\n}\n");
    free(text);
    free(ids);
    return rc;
}
