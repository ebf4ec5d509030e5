/* symbiote info MODEL --packs [--max-pack-mb N] [--pack-cut buddy|even] [--json]: the pack plan —
 * one line per pack (id, type, layer, size, file ranges, pieces; expert packs name their expert)
 * and totals per type — or the same as one JSON object. The limit comes from [memory] max_pack_mb
 * (defaults < INI < environment <
 * --max-pack-mb). */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "pack/pack.h"

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

/* "attn_q.weight" for layer weights (the layer has its own column), rows if not all of them. */
static void piece_label(const sym_pack_plan *p, const sym_pack_piece *pc, char *buf, size_t cap) {
    const sym_pack_weight *w = &p->weights[pc->weight_idx];
    const char *name = w->name;
    if (w->layer >= 0 && !strncmp(name, "blk.", 4)) {
        const char *dot = strchr(name + 4, '.');
        if (dot) name = dot + 1;
    }
    if (pc->row0 == 0 && pc->n_rows == w->n_rows)
        snprintf(buf, cap, "%s", name);
    else
        snprintf(buf, cap, "%s[%lld:%lld]", name, (long long)pc->row0,
                 (long long)(pc->row0 + pc->n_rows));
}

static void print_text(const char *path, const sym_pack_plan *p, int max_pack_mb) {
    printf("pack plan:  %s, packs of at most %d MiB, %s cut%s\n", path, max_pack_mb,
           sym_pack_cut_name(p->cut),
           p->tied_embeddings ? " (tied embeddings: the output projection reads the embed packs)"
                              : "");
    printf("%6s  %-9s %5s %10s %6s  %s\n", "id", "type", "layer", "MiB", "ranges", "pieces");
    for (uint32_t i = 0; i < p->n_packs; i++) {
        const sym_pack *k = &p->packs[i];
        char layer[16];
        if (k->layer >= 0)
            snprintf(layer, sizeof layer, "%d", k->layer);
        else
            snprintf(layer, sizeof layer, "-");
        printf("%6u  %-9s %5s %10.3f %6u  ", k->id, sym_pack_type_name(k->type), layer,
               mib(k->n_bytes), k->n_ranges);
        if (k->type == SYM_PACK_EXPERT) printf("expert %d: ", k->expert);
        const sym_pack_piece *pc = sym_pack_pieces(p, k);
        for (uint32_t j = 0; j < k->n_pieces; j++) {
            char label[96];
            piece_label(p, &pc[j], label, sizeof label);
            printf("%s%s", j ? ", " : "", label);
        }
        printf("%s\n", k->oversized ? "  (oversized: one row above the limit)" : "");
    }
    printf("totals:\n");
    for (int t = 0; t < SYM_PACK_TYPE_COUNT; t++)
        if (p->n_packs_by_type[t])
            printf("  %-9s %6u pack%s %12.3f MiB\n", sym_pack_type_name((sym_pack_type)t),
                   p->n_packs_by_type[t], p->n_packs_by_type[t] == 1 ? " " : "s",
                   mib(p->bytes_by_type[t]));
    printf("  %-9s %6u pack%s %12.3f MiB\n", "all", p->n_packs, p->n_packs == 1 ? " " : "s",
           mib(p->total_bytes));
    printf("largest:    pack %u, %.3f MiB; %u oversized\n", p->largest_pack_id,
           mib(p->largest_pack_bytes), p->n_oversized);
    printf("buddy:      %.3f MiB in power-of-two blocks (%.1f%% rounding)\n", mib(p->pow2_bytes),
           p->pow2_bytes ? 100.0 * (double)(p->pow2_bytes - p->total_bytes) / (double)p->pow2_bytes
                         : 0.0);
    printf("per token:  %u uses, %.3f MiB read in full (embedding rows are gathered)\n", p->n_uses,
           mib(p->full_bytes_per_token));
    if (p->n_expert > 0)
        printf("experts:    %d per layer, %d routed per token: %.3f MiB read per token (the "
               "schedule lists every expert; a token uses the ones its router picks)\n",
               p->n_expert, p->n_expert_used, mib(p->routed_bytes_per_token));
}

static json_object *plan_json(const char *path, const sym_pack_plan *p, int max_pack_mb) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "path", json_object_new_string(path));
    json_object_object_add(o, "max_pack_mb", json_object_new_int(max_pack_mb));
    json_object_object_add(o, "max_pack_bytes", json_object_new_uint64(p->max_pack_bytes));
    json_object_object_add(o, "cut", json_object_new_string(sym_pack_cut_name(p->cut)));
    json_object_object_add(o, "tied_embeddings", json_object_new_boolean(p->tied_embeddings));
    json_object_object_add(o, "n_expert", json_object_new_int(p->n_expert));
    json_object_object_add(o, "n_expert_used", json_object_new_int(p->n_expert_used));
    json_object *packs = json_object_new_array();
    for (uint32_t i = 0; i < p->n_packs; i++) {
        const sym_pack *k = &p->packs[i];
        json_object *e = json_object_new_object();
        json_object_object_add(e, "id", json_object_new_int64(k->id));
        json_object_object_add(e, "type", json_object_new_string(sym_pack_type_name(k->type)));
        json_object_object_add(e, "layer", json_object_new_int(k->layer));
        json_object_object_add(e, "expert", json_object_new_int(k->expert));
        json_object_object_add(e, "bytes", json_object_new_uint64(k->n_bytes));
        json_object_object_add(e, "buffer_bytes", json_object_new_uint64(k->buffer_bytes));
        json_object_object_add(e, "oversized", json_object_new_boolean(k->oversized));
        json_object *pieces = json_object_new_array();
        const sym_pack_piece *pc = sym_pack_pieces(p, k);
        for (uint32_t j = 0; j < k->n_pieces; j++) {
            json_object *x = json_object_new_object();
            json_object_object_add(x, "weight",
                                   json_object_new_string(p->weights[pc[j].weight_idx].name));
            json_object_object_add(x, "row0", json_object_new_int64(pc[j].row0));
            json_object_object_add(x, "n_rows", json_object_new_int64(pc[j].n_rows));
            json_object_object_add(x, "bytes", json_object_new_uint64(pc[j].n_bytes));
            json_object_object_add(x, "pack_offset", json_object_new_uint64(pc[j].pack_offset));
            json_object_array_add(pieces, x);
        }
        json_object_object_add(e, "pieces", pieces);
        json_object *ranges = json_object_new_array();
        const sym_pack_range *rg = sym_pack_ranges(p, k);
        for (uint32_t j = 0; j < k->n_ranges; j++) {
            json_object *x = json_object_new_object();
            json_object_object_add(x, "file", json_object_new_int(rg[j].file_idx));
            json_object_object_add(x, "offset", json_object_new_uint64(rg[j].file_offset));
            json_object_object_add(x, "bytes", json_object_new_uint64(rg[j].n_bytes));
            json_object_object_add(x, "pack_offset", json_object_new_uint64(rg[j].pack_offset));
            json_object_array_add(ranges, x);
        }
        json_object_object_add(e, "ranges", ranges);
        json_object_array_add(packs, e);
    }
    json_object_object_add(o, "packs", packs);
    json_object *sched = json_object_new_array();
    for (uint32_t u = 0; u < p->n_uses; u++) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "pack", json_object_new_int64(p->schedule[u].pack_id));
        json_object_object_add(
            x, "use",
            json_object_new_string(p->schedule[u].kind == SYM_PACK_USE_GATHER ? "gather" : "full"));
        json_object_array_add(sched, x);
    }
    json_object_object_add(o, "schedule", sched);
    json_object *t = json_object_new_object();
    json_object_object_add(t, "packs", json_object_new_int64(p->n_packs));
    json_object_object_add(t, "bytes", json_object_new_uint64(p->total_bytes));
    json_object_object_add(t, "pow2_bytes", json_object_new_uint64(p->pow2_bytes));
    json_object_object_add(t, "largest_pack_id", json_object_new_int64(p->largest_pack_id));
    json_object_object_add(t, "largest_pack_bytes", json_object_new_uint64(p->largest_pack_bytes));
    json_object_object_add(t, "oversized", json_object_new_int64(p->n_oversized));
    json_object_object_add(t, "full_bytes_per_token",
                           json_object_new_uint64(p->full_bytes_per_token));
    json_object_object_add(t, "routed_bytes_per_token",
                           json_object_new_uint64(p->routed_bytes_per_token));
    json_object *by = json_object_new_object();
    for (int i = 0; i < SYM_PACK_TYPE_COUNT; i++) {
        json_object *x = json_object_new_object();
        json_object_object_add(x, "packs", json_object_new_int64(p->n_packs_by_type[i]));
        json_object_object_add(x, "bytes", json_object_new_uint64(p->bytes_by_type[i]));
        json_object_object_add(by, sym_pack_type_name((sym_pack_type)i), x);
    }
    json_object_object_add(t, "by_type", by);
    json_object_object_add(o, "totals", t);
    return o;
}

int cli_info_packs(const char *path, const sym_model *m, cli_common *common, const char *cut,
                   bool json) {
    sym_pack_options o;
    sym_pack_options_init(&o);
    sym_status st;
    if (cut && (st = sym_pack_cut_parse(cut, &o.cut)) != SYM_OK) {
        fprintf(stderr, "symbiote: error: --pack-cut: '%s' is not buddy or even (see --help)\n",
                cut);
        return 2;
    }
    if (cli_common_finish(common) != 0) return 1;
    if ((st = sym_pack_limit_from_mb(common->cfg.max_pack_mb, &o.max_pack_bytes)) != SYM_OK)
        return cli_fail(st);
    sym_pack_plan *p = NULL;
    if ((st = sym_pack_plan_create(m, &o, &p)) != SYM_OK) return cli_fail(st);
    int mb = (int)(o.max_pack_bytes >> 20); /* 0 (automatic) resolved */
    if (json) {
        json_object *j = plan_json(path, p, mb);
        printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
    } else {
        print_text(path, p, mb);
    }
    sym_pack_plan_destroy(p);
    return 0;
}
