#!/bin/bash
# CLI: `policy-sim` on a dense preset (the oracle equals MIN at every size), a written trace read
# back (same table), a damaged trace (exit 1, SYM_ERR_FORMAT), a small MoE run as JSON (machine,
# per-size results, predictions), oracle weights saved and loaded again, and misuse (exit 2).
set -u
SYM=$1; SHARED=$2; TMP=$3
rm -rf "$TMP"; mkdir -p "$TMP"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }

out=$("$SYM" --help); rc=$?
check '[[ $rc -eq 0 && "$out" == *"policy-sim"* ]]' "main help lists policy-sim"
out=$("$SYM" policy-sim --help); rc=$?
check '[[ $rc -eq 0 && "$out" == *"--trace FILE"* && "$out" == *"--moe PRESET"* && "$out" == *"--cache-pct"* ]]' "help: $out"

# dense: the oracle moves exactly MIN's bytes at all nine sizes; LRU never hits
out=$("$SYM" policy-sim --dense tinyllama-1.1b --tokens 3 --write-trace "$TMP/d.symtrace"); rc=$?
check '[[ $rc -eq 0 ]]' "dense rc=$rc: $out"
check '[[ $(printf "%s\n" "$out" | grep -c "+0.00%$") -eq 9 ]]' "dense: oracle = min at 9 sizes: $out"
check '[[ $(printf "%s\n" "$out" | grep -cE "^ *[0-9.]+% [0-9.e+]+ +0\.0% ") -eq 9 ]]' "dense: lru 0% hits: $out"
check '[[ -s "$TMP/d.symtrace" ]]' "trace written"
again=$("$SYM" policy-sim --trace "$TMP/d.symtrace"); rc=$?
check '[[ $rc -eq 0 && "$(printf "%s\n" "$out" | head -11)" == "$(printf "%s\n" "$again" | head -11)" ]]' "the trace read back gives the same table: $again"

# a damaged trace
head -c 500 "$TMP/d.symtrace" > "$TMP/short.symtrace"
out=$("$SYM" policy-sim --trace "$TMP/short.symtrace" 2>&1); rc=$?
check '[[ $rc -eq 1 && "$out" == *"SYM_ERR_FORMAT"* && "$out" == *"truncated"* ]]' "truncated trace: rc=$rc $out"
out=$("$SYM" policy-sim --trace "$TMP/missing.symtrace" 2>&1); rc=$?
check '[[ $rc -eq 1 && "$out" == *"SYM_ERR_IO"* ]]' "missing trace: rc=$rc $out"

# MoE as JSON, with the oracle's weights cached
args=(--moe tinyllama-1.1b --tokens 48 --experts 16 --top-k 2 --cache-pct 30,60 --json --oracle-cache "$TMP/cache")
out=$("$SYM" policy-sim "${args[@]}"); rc=$?
check '[[ $rc -eq 0 && "$out" == *"\"machine\":"* && "$out" == *"\"cores\":"* ]]' "moe json: machine"
check '[[ $(printf "%s\n" "$out" | grep -c "\"cache_pct\":") -eq 2 && $(printf "%s\n" "$out" | grep -c "\"oracle_gap_to_min\":") -eq 2 ]]' "moe json: 2 sizes"
check '[[ "$out" == *"\"prediction\":"* && $(printf "%s\n" "$out" | grep -c "\"layer\":") -eq 22 ]]' "moe json: predictions for 22 layers"
check '[[ "$out" == *"\"oracle_weights\":\"fresh\""* && $(ls "$TMP/cache" | grep -c "^oracle-.*\.weights$") -eq 1 ]]' "weights saved"
out=$("$SYM" policy-sim "${args[@]}"); rc=$?
check '[[ $rc -eq 0 && "$out" == *"\"oracle_weights\":\"loaded\""* ]]' "weights loaded on the second run"
printf 'junk' > "$TMP/cache/$(ls "$TMP/cache")"
out=$("$SYM" policy-sim "${args[@]}" 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 0 && "$out" == *"starting the oracle afresh"* ]]' "a damaged weight file is reported and replaced: $out"

# misuse
"$SYM" policy-sim >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "no trace: rc=$rc"
"$SYM" policy-sim --dense tiny --moe tiny >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "two traces: rc=$rc"
"$SYM" policy-sim --dense tiny --policies lru,belady >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "unknown policy: rc=$rc"
"$SYM" policy-sim --dense tiny --cache-pct 0 >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "cache 0%: rc=$rc"
out=$("$SYM" policy-sim --dense no-such-preset 2>&1); rc=$?
check '[[ $rc -eq 1 && "$out" == *"unknown preset"* ]]' "unknown preset: rc=$rc $out"

# a trace of a real run (run --trace-out): a mixture of experts, its tokens and expert records
"$SYM" make-model --preset tiny-moe -o "$TMP/moe.gguf" >/dev/null 2>&1
"$SYM" run -m "$TMP/moe.gguf" -p "hello world" -n 6 --temp 0 --backend cpu \
  --trace-out "$TMP/run.symtrace" --stats-json "$TMP/run.json" >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 0 && -s "$TMP/run.symtrace" ]]' "run --trace-out: rc=$rc"
n_tok=$(python3 -c "import json; d=json.load(open('$TMP/run.json')); print(d['prompt_tokens'] + d['generated_tokens'] - 1)")
out=$("$SYM" policy-sim --trace "$TMP/run.symtrace" 2>&1); rc=$?
check '[[ $rc -eq 0 && "$out" == *"$n_tok tokens"* && "$out" == *"expert prediction"* ]]' "policy-sim on the run's trace ($n_tok tokens): rc=$rc $out"
out=$("$SYM" run -m "$TMP/moe.gguf" -p "hi" -n 2 --backend cpu --trace-out "$TMP/no/such/dir/t.symtrace" 2>&1 >/dev/null); rc=$?
check '[[ $rc -ne 0 && "$out" == *"SYM_ERR_IO"* ]]' "trace into a missing directory: rc=$rc $out"

exit $fail
