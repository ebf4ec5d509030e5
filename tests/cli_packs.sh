#!/bin/bash
# CLI: `info --packs` (text and --json) on the shared model and on a made model cut at 1 MiB;
# the limit from an INI file, the environment's config and the flag (in that precedence); bad
# limits exit 1 with SYM_ERR_CONFIG, misuse exits 2.
set -u
SYM=$1; SHARED=$2; TMP=$3
rm -rf "$TMP"; mkdir -p "$TMP"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
# "key": value in pretty JSON (first occurrence)
jget() { printf '%s\n' "$1" | grep -E "^ *\"$2\":" | head -1 | sed -E 's/^ *"[^"]*": *//; s/,$//'; }

M="$SHARED/models/aidreams260K.gguf"
out=$("$SYM" info "$M" --packs); rc=$?
check '[[ $rc -eq 0 && "$out" == *"packs of at most 32 MiB, buddy cut"* ]]' "text rc=$rc: $out"
check '[[ "$out" == *"     0  embed "*"token_embd.weight"* ]]' "embed pack line"
check '[[ "$out" == *"     1  attention     0 "*"attn_norm.weight, attn_q.weight"* ]]' "attention pack line"
check '[[ "$out" == *"     8  mlp           3 "*"ffn_down.weight"* ]]' "last mlp pack line"
check '[[ "$out" == *"all           10 packs"* && "$out" == *"0 oversized"* ]]' "totals: $out"

out=$("$SYM" info --json --packs -m "$M"); rc=$?
check '[[ $rc -eq 0 ]]' "json rc=$rc"
check '[[ $(jget "$out" max_pack_mb) == 32 && $(jget "$out" max_pack_bytes) == 33554432 && $(jget "$out" cut) == "\"buddy\"" ]]' "json limit"
check '[[ $(printf "%s\n" "$out" | grep -c "\"id\":") == 10 ]]' "json: 10 packs"
check '[[ "$out" == *"\"totals\":"*"\"packs\":10"*"\"bytes\":1054976"* ]]' "json totals"
check '[[ "$out" == *"\"use\":\"gather\""* && $(printf "%s\n" "$out" | grep -c "\"use\":") -ge 10 ]]' "json schedule"

# a made model (23.4 MiB) cut at 1 MiB: even: 28 packs; buddy: 30, filling power-of-two blocks
"$SYM" make-model -o "$TMP/m.gguf" --n-embd 512 --n-head 8 --n-head-kv 2 --n-ff 1400 --n-layer 2 \
  --dtype f32 -q >/dev/null || { echo "FAIL: make-model"; exit 1; }
out=$("$SYM" info "$TMP/m.gguf" --packs --max-pack-mb 1 --pack-cut even --json); rc=$?
largest=$(printf '%s\n' "$out" | grep -E '"largest_pack_bytes":' | sed -E 's/[^0-9]//g')
check '[[ $rc -eq 0 && $(jget "$out" max_pack_bytes) == 1048576 && $largest -le 1048576 && $largest -gt 900000 ]]' "1 MiB: largest $largest"
check '[[ "$out" == *"\"totals\":"*"\"packs\":28"* && $(jget "$out" cut) == "\"even\"" ]]' "1 MiB even: 28 packs"
even_pow2=$(printf '%s\n' "$out" | grep -E '"pow2_bytes":' | sed -E 's/[^0-9]//g')
out=$("$SYM" info "$TMP/m.gguf" --packs --max-pack-mb 1 --json)
buddy_pow2=$(printf '%s\n' "$out" | grep -E '"pow2_bytes":' | sed -E 's/[^0-9]//g')
check '[[ "$out" == *"\"totals\":"*"\"packs\":30"* && $buddy_pow2 -lt $even_pow2 ]]' "1 MiB buddy: $buddy_pow2 < $even_pow2"
out=$("$SYM" info "$TMP/m.gguf" --packs --max-pack-mb 1 --pack-cut even)
check '[[ "$out" == *"attn_q.weight[426:512]"* && "$out" == *"mlp           1 "* ]]' "row slices shown: $out"
check '[[ "$out" == *"buddy:      28.000 MiB in power-of-two blocks"* ]]' "buddy line: $out"
out=$("$SYM" info "$TMP/m.gguf" --packs --max-pack-mb 1)
check '[[ "$out" == *"attn_q.weight[510:512]"* && "$out" == *"(0.5% rounding)"* ]]' "buddy cut: $out"

# a mixture of experts: one expert pack per expert and layer (stacked rows of three tensors, or
# the split tensors), the router riding with ffn_norm, the routed bytes per token
"$SYM" make-model -o "$TMP/moe.gguf" --preset tiny-moe -q >/dev/null || { echo "FAIL: make-model moe"; exit 1; }
out=$("$SYM" info "$TMP/moe.gguf" --packs); rc=$?
check '[[ $rc -eq 0 && "$out" == *"     2  mlp           0 "*"ffn_norm.weight, ffn_gate_inp.weight"* ]]' "moe mlp pack: $out"
check '[[ "$out" == *"     3  expert        0 "*"expert 0: ffn_gate_exps.weight[0:216], ffn_up_exps.weight[0:216], ffn_down_exps.weight[0:80]"* ]]' "moe expert 0 pack: $out"
check '[[ "$out" == *"    20  expert        1 "*"expert 7: "*"ffn_down_exps.weight[560:640]"* ]]' "moe last expert pack: $out"
check '[[ "$out" == *"expert        16 packs"* && "$out" == *"experts:    8 per layer, 2 routed per token"* ]]' "moe totals: $out"
out=$("$SYM" info "$TMP/moe.gguf" --packs --json)
check '[[ $(jget "$out" n_expert) == 8 && $(jget "$out" n_expert_used) == 2 && "$out" == *"\"expert\":7"* && "$out" == *"\"routed_bytes_per_token\":"* ]]' "moe json"
"$SYM" make-model -o "$TMP/moe-split.gguf" --preset tiny-moe --split-experts -q >/dev/null
out=$("$SYM" info "$TMP/moe-split.gguf" --packs)
check '[[ "$out" == *"     4  expert        0      0.099      1  expert 1: ffn_gate.1.weight, ffn_up.1.weight, ffn_down.1.weight"* ]]' "moe split expert pack: $out"

# precedence: INI < flag; VK_SYMBIOTE_CONFIG names the INI
printf '[memory]\nmax_pack_mb = 2\n' > "$TMP/p.ini"
out=$("$SYM" info "$TMP/m.gguf" --packs --config "$TMP/p.ini")
check '[[ "$out" == *"packs of at most 2 MiB"* ]]' "ini limit"
out=$(VK_SYMBIOTE_CONFIG="$TMP/p.ini" "$SYM" info "$TMP/m.gguf" --packs)
check '[[ "$out" == *"packs of at most 2 MiB"* ]]' "VK_SYMBIOTE_CONFIG limit"
out=$("$SYM" info "$TMP/m.gguf" --packs --config "$TMP/p.ini" --max-pack-mb 4)
check '[[ "$out" == *"packs of at most 4 MiB"* ]]' "flag over ini"

# errors
for bad in 257 -1 lots; do
  err=$("$SYM" info "$M" --packs --max-pack-mb "$bad" 2>&1 >/dev/null); rc=$?
  check '[[ $rc -eq 1 && "$err" == *"SYM_ERR_CONFIG"*"max_pack_mb"* ]]' "--max-pack-mb $bad: rc=$rc $err"
done
printf '[memory]\nmax_pack_mb = 300\n' > "$TMP/bad.ini"
err=$("$SYM" info "$M" --packs --config "$TMP/bad.ini" 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"SYM_ERR_CONFIG"*"bad.ini:2"* ]]' "ini out of range: rc=$rc $err"
"$SYM" info "$M" --packs --max-pack-mb >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "missing value rc=$rc"
err=$("$SYM" info "$M" --packs --pack-cut half 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 2 && "$err" == *"--pack-cut"* ]]' "bad --pack-cut: rc=$rc $err"
err=$("$SYM" info "$M" --max-pack-mb 4 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 2 && "$err" == *"--packs"* ]]' "--max-pack-mb without --packs: rc=$rc"
head -c 100 "$M" > "$TMP/cut.gguf"
out=$("$SYM" info "$TMP/cut.gguf" --packs 2>"$TMP/err"); rc=$?
check '[[ $rc -eq 1 && -z "$out" && "$(cat "$TMP/err")" == *"SYM_ERR_FORMAT"* ]]' "truncated model: rc=$rc $out"
err=$("$SYM" info "$TMP/none.gguf" --packs 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"SYM_ERR_IO"* ]]' "missing model rc=$rc"
help=$("$SYM" info --help)
check '[[ "$help" == *"--packs"* && "$help" == *"--max-pack-mb"* && "$help" == *"--pack-cut"* ]]' "help"
exit $fail
