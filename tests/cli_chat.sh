#!/bin/bash
# symbiote chat: turns from stdin, answers on stdout, the KV cache kept (the second turn
# evaluates only its own tokens), /reset, bad template name.
set -u
SYM=$1; SHARED=$2; TMP=$3
mkdir -p "$TMP"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
out=$(printf 'A computer\nNever trust\n' | "$SYM" chat --disable-gpu --temp 0 -n 12 2>"$TMP/err"); rc=$?
check '[[ $rc -eq 0 ]]' "chat rc=$rc $(cat "$TMP/err")"
check '[[ "$out" == " is a mistake, a machine which is"* ]]' "first answer: '$out'"
# 4 tokens (BOS + 3) for the first turn, then the pending sampled token + 4 for the second
check 'grep -q "9 prompt tokens evaluated" "$TMP/err"' "KV cache kept: $(cat "$TMP/err")"
out=$(printf 'A computer\n/reset\nA computer\n/exit\nNever\n' | "$SYM" chat --disable-gpu --temp 0 -n 5 2>"$TMP/err"); rc=$?
first=$(printf '%s' "$out" | sed -n 1p); second=$(printf '%s' "$out" | sed -n 2p)
check '[[ $rc -eq 0 && "$first" == "$second" && $(printf "%s\n" "$out" | wc -l) -eq 2 ]]' "/reset and /exit: '$out'"
"$SYM" chat --chat-template vicuna </dev/null >/dev/null 2>"$TMP/err"; rc=$?
check '[[ $rc -eq 1 ]] && grep -q "unknown chat template" "$TMP/err"' "bad template rc=$rc"
exit $fail
