#!/bin/bash
# symbiote run: stdout is exactly prompt + generated text (matching the independent reference for
# the shared model), stats JSON, seeded reproducibility, the bundled default model, and errors.
set -u
SYM=$1; SHARED=$2; TMP=$3
mkdir -p "$TMP"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
M=$SHARED/models/aidreams260K.gguf

# greedy text must be a prefix of the reference decode (the reference ran to the full context)
want=$(grep -m1 '^text: I dreamed' "$SHARED/models/aidreams260K.expected.txt" | sed 's/^text: //')
out=$("$SYM" run -m "$M" --disable-gpu --temp 0 -p "I dreamed" -n 30 --stats-json "$TMP/s.json" 2>"$TMP/err")
rc=$?
check '[[ $rc -eq 0 ]]' "run rc=$rc: $(cat "$TMP/err")"
check '[[ ${#out} -gt 40 && "$want" == "$out"* ]]' "greedy text is not a prefix of the reference: '$out'"
for k in prompt_tokens generated_tokens prefill_tok_s decode_tok_s peak_ram_bytes peak_vram_bytes backend; do
  check 'grep -q "\"$k\"" "$TMP/s.json"' "stats json lacks $k"
done
check 'grep -Eq "\"generated_tokens\": ?30," "$TMP/s.json"' "30 tokens generated: $(cat "$TMP/s.json")"
check 'grep -q "tok/s" "$TMP/err"' "summary on stderr"

# --progress: the live line goes to stderr (a line a second off a terminal, and the last one);
# stdout is the same text as without it
p=$("$SYM" run -m "$M" --disable-gpu --temp 0 -p "I dreamed" -n 30 --progress 2>"$TMP/perr")
check '[[ "$p" == "$out" ]]' "--progress changed stdout: '$p'"
check 'grep -Eq "^symbiote: \[token 30/30\] [0-9.]+ tok/s, [0-9.]+ ms/token" "$TMP/perr"' \
  "no final progress line: $(cat "$TMP/perr")"
"$SYM" run -m "$M" --disable-gpu --temp 0 -p "I dreamed" -n 5 --no-progress >/dev/null 2>"$TMP/perr"
check '! grep -q "\[token" "$TMP/perr"' "--no-progress printed progress: $(cat "$TMP/perr")"

# the prompt comes out exactly as given, even with odd whitespace
out=$("$SYM" run -m "$M" --disable-gpu --temp 0 -p "  two  spaces" -n 3 2>/dev/null)
check '[[ "$out" == "  two  spaces"* ]]' "prompt echoed exactly: '$out'"

# seeded sampling is reproducible
a=$("$SYM" run -m "$M" --disable-gpu --temp 0.9 --seed 7 -p "The" -n 40 2>/dev/null)
b=$("$SYM" run -m "$M" --disable-gpu --temp 0.9 --seed 7 -p "The" -n 40 2>/dev/null)
c=$("$SYM" run -m "$M" --disable-gpu --temp 0.9 --seed 8 -p "The" -n 40 2>/dev/null)
check '[[ "$a" == "$b" ]]' "same seed, same text"
check '[[ "$a" != "$c" ]]' "different seed, different text"

# the bundled toy model runs without -m
out=$("$SYM" run --disable-gpu --temp 0 -p "A computer" -n 12 2>/dev/null); rc=$?
check '[[ $rc -eq 0 && "$out" == "A computer is a mistake"* ]]' "default model: rc=$rc '$out'"

# errors
"$SYM" run -m "$TMP/missing.gguf" -p x >/dev/null 2>"$TMP/err"; rc=$?
check '[[ $rc -eq 1 ]] && grep -q "missing.gguf" "$TMP/err"' "missing model: rc=$rc $(cat "$TMP/err")"
long=$(printf 'dream %.0s' $(seq 1 300))
"$SYM" run -m "$M" --disable-gpu -p "$long" -n 2 >/dev/null 2>"$TMP/err"; rc=$?
check '[[ $rc -eq 1 ]] && grep -q "context" "$TMP/err"' "long prompt: rc=$rc $(cat "$TMP/err")"
"$SYM" run -m "$M" --temp hot >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "bad --temp rc=$rc"
printf 'not a model' > "$TMP/bad.gguf"
"$SYM" run -m "$TMP/bad.gguf" >/dev/null 2>"$TMP/err"; rc=$?
check '[[ $rc -eq 1 ]] && grep -q "SYM_ERR_FORMAT" "$TMP/err"' "corrupt model: rc=$rc $(cat "$TMP/err")"
exit $fail
