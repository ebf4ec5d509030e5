#!/bin/bash
# CLI: the eviction flags. Bad --eviction-aggression values (flag or INI) and unknown
# --eviction-policy names exit 1 with an error naming the flag and the allowed range, before any
# work; a streamed mixture of experts runs under the oracle (the default) or the policy asked for,
# reports it with its expert pack counters (summary and --stats-json), and keeps the oracle's
# weights in $XDG_CACHE_HOME/symbiote, loading them on the next run.
set -u
SYM=$1; SHARED=$2; TMP=$3
rm -rf "$TMP"; mkdir -p "$TMP"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
export XDG_CACHE_HOME="$TMP/cache"

out=$("$SYM" run --help); rc=$?
check '[[ $rc -eq 0 && "$out" == *"--eviction-policy P"* && "$out" == *"--eviction-aggression X"* ]]' "run --help lists the eviction flags"

"$SYM" make-model -q -o "$TMP/moe.gguf" --n-embd 256 --n-layer 4 --n-head 4 --n-head-kv 2 \
  --n-ff 512 --n-expert 8 --n-expert-used 2 --n-vocab 2048 --untied --seed 7 >/dev/null 2>&1
check '[[ -s "$TMP/moe.gguf" ]]' "make-model"

# bad aggressions: exit 1, the flag and what is wrong named, nothing generated
for v in 1.5 -0.1 2 1e9 abc nan inf "" 0.5x; do
  err=$("$SYM" run -m "$TMP/moe.gguf" --disable-gpu --eviction-aggression "$v" -p hi -n 1 2>&1 >"$TMP/out"); rc=$?
  check '[[ $rc -eq 1 && "$err" == *"--eviction-aggression"* && ( "$err" == *"outside [0, 1]"* || "$err" == *"is not a number"* ) && ! -s "$TMP/out" ]]' "--eviction-aggression '$v': rc=$rc $err"
done
"$SYM" run -m "$TMP/moe.gguf" --eviction-aggression >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "--eviction-aggression without a value: rc=$rc"
err=$("$SYM" bench -m "$TMP/moe.gguf" --eviction-aggression 1.01 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"outside [0, 1]"* ]]' "bench --eviction-aggression 1.01: rc=$rc $err"
printf '[memory]\nprefetch_lookahead = 2\neviction_aggression = -1\n' > "$TMP/bad.ini"
err=$("$SYM" run -m "$TMP/moe.gguf" --config "$TMP/bad.ini" -p hi -n 1 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"bad.ini:3"* && "$err" == *"eviction_aggression"* && "$err" == *"outside [0, 1]"* ]]' "INI eviction_aggression = -1: rc=$rc $err"
err=$("$SYM" run -m "$TMP/moe.gguf" --eviction-policy lfu -p hi -n 1 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"--eviction-policy"* && "$err" == *"auto, oracle, belady, lru"* ]]' "--eviction-policy lfu: rc=$rc $err"
out=$("$SYM" config --eviction-policy ORACLE --eviction-aggression 0.8); rc=$?
check '[[ $rc -eq 0 && "$out" == *"eviction_policy = oracle"* && "$out" == *"eviction_aggression = 0.8"* ]]' "config: $out"

# a budget that streams: the --ram-gb budget counts the process's own memory, which varies with
# the build (sanitizers) and from run to run, so take the next size above the smallest that
# streamed, where that one still streams
streams() {
  "$SYM" run -m "$TMP/moe.gguf" --disable-gpu -t 2 --ram-gb $1 --max-pack-mb 1 -p hi -n 1 \
    --eviction-policy lru 2>"$TMP/err" >/dev/null && grep -q "placement: streaming" "$TMP/err"
}
sizes=(0.024 0.028 0.034 0.042 0.055 0.07 0.09 0.12)
budget=""
for ((i = 0; i < ${#sizes[@]}; i++)); do
  if streams ${sizes[i]}; then
    budget=${sizes[i]}
    if ((i + 1 < ${#sizes[@]})) && streams ${sizes[i + 1]}; then budget=${sizes[i + 1]}; fi
    break
  fi
done
check '[[ -n "$budget" ]]' "no budget streams the model: $(cat "$TMP/err")"
budget=${budget:-0.05}
run() { "$SYM" run -m "$TMP/moe.gguf" --disable-gpu -t 2 --ram-gb $budget --max-pack-mb 1 -p "the cat" -n 16 --temp 0 "$@"; }

run --eviction-aggression 1 --stats-json "$TMP/o.json" >/dev/null 2>"$TMP/err"; rc=$?
check '[[ $rc -eq 0 ]] && grep -q "placement: streaming" "$TMP/err"' "oracle run (--ram-gb $budget) rc=$rc: $(cat "$TMP/err")"
check 'grep -q "eviction oracle | expert packs: [0-9]* hits, [0-9]* misses" "$TMP/err"' "oracle summary: $(cat "$TMP/err")"
for k in eviction_policy expert_pack_hits expert_pack_misses expert_bytes_moved oracle_samples_learned oracle_log_loss; do
  check 'grep -q "\"$k\"" "$TMP/o.json"' "stats json lacks $k"
done
check 'grep -Eq "\"eviction_policy\": ?\"oracle\"" "$TMP/o.json"' "the default policy of a MoE is the oracle"
n1=$(grep -oE '"oracle_samples_learned": ?[0-9]+' "$TMP/o.json" | grep -oE '[0-9]+$')
check '[[ $(ls "$XDG_CACHE_HOME/symbiote" 2>/dev/null | grep -c "^oracle-.*\.weights$") -eq 1 ]]' "weights saved in \$XDG_CACHE_HOME/symbiote"
run --stats-json "$TMP/o2.json" >/dev/null 2>&1
n2=$(grep -oE '"oracle_samples_learned": ?[0-9]+' "$TMP/o2.json" | grep -oE '[0-9]+$')
check '[[ -n "$n1" && -n "$n2" && $n2 -eq $((2 * n1)) ]]' "weights loaded on the next run: $n1 then $n2 samples"
for f in "$XDG_CACHE_HOME"/symbiote/oracle-*.weights; do printf 'junk' > "$f"; done
run >/dev/null 2>"$TMP/err"; rc=$?
check '[[ $rc -eq 0 ]] && grep -q "warning.*oracle.*fresh weights" "$TMP/err"' "a junk weight file: warned and replaced: rc=$rc $(cat "$TMP/err")"

run --eviction-policy lru --stats-json "$TMP/l.json" >/dev/null 2>"$TMP/err"; rc=$?
check '[[ $rc -eq 0 ]] && grep -Eq "\"eviction_policy\": ?\"lru\"" "$TMP/l.json" && ! grep -q oracle_samples "$TMP/l.json"' "lru run: rc=$rc $(cat "$TMP/l.json")"
check 'grep -q "eviction lru" "$TMP/err"' "lru summary: $(cat "$TMP/err")"

exit $fail
