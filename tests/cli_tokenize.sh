#!/bin/bash
# symbiote tokenize: ids, --pieces, --file (raw bytes: tabs, newlines, emoji), --no-bos,
# --special, tokenizer.json models, and clear errors (exit 1) for bad models.
set -u
SYM=$1; SHARED=$2; TMP=$3
mkdir -p "$TMP"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
AID="$SHARED/models/aidreams260K.gguf"
SPM="$SHARED/tokenizer/ggml-vocab-llama-spm.gguf"
GPT2="$SHARED/tokenizer/ggml-vocab-gpt-2.gguf"

out=$("$SYM" tokenize -m "$AID" "I dreamed")
check '[[ "$out" == "1 303 281 269 435 447 328" ]]' "aidreams ids: $out"
out=$("$SYM" tokenize -m "$AID" --no-bos "The network")
check '[[ "$out" == "368 430 324 323 449 284 453" ]]' "--no-bos: $out"
out=$("$SYM" tokenize -m "$AID" "")
check '[[ "$out" == "1" ]]' "empty text: $out"
out=$("$SYM" tokenize -m "$GPT2" "Hello world")
check '[[ "$out" == "15496 995" ]]' "gpt-2 adds no BOS: $out"

out=$("$SYM" tokenize -m "$GPT2" --pieces "Hello world")
check '[[ "$out" == $'"'"'15496\tHello\n995\t world'"'"' ]]' "--pieces: $out"
out=$("$SYM" tokenize -m "$SPM" --no-bos --pieces $'a\tb')
check '[[ "$out" == *$'"'"'12\t\\t'"'"'* ]]' "--pieces escapes a tab: $out"

# --file: the raw bytes, exactly as the same text given as an argument
printf 'line one\n\tindented \xf0\x9f\xa6\x99 emoji\n\n  two spaces\n' > "$TMP/in.txt"
a=$("$SYM" tokenize -m "$SPM" --file "$TMP/in.txt")
b=$("$SYM" tokenize -m "$SPM" "$(cat "$TMP/in.txt"; printf x)" | sed 's/ [0-9]*$//')
check '[[ -n "$a" && "$a" == "$b" ]]' "--file equals argument: '$a' vs '$b'"
check '[[ "$a" == *" 13 13 "* && "$a" == *"243 162 169 156"* ]]' "--file keeps newlines and emoji: $a"
printf '\t\n' > "$TMP/tab.txt"
out=$("$SYM" tokenize -m "$SPM" --no-bos --file "$TMP/tab.txt")
check '[[ "$out" == "29871 12 13" ]]' "tab+newline (from the .out file): $out"
out=$(printf 'Hello' | "$SYM" tokenize -m "$SPM" --file -)
check '[[ "$out" == "1 15043" ]]' "--file - reads stdin: $out"

# --special
out=$("$SYM" tokenize -m "$SPM" --no-bos --special "<s>Hello")
check '[[ "$out" == "1 15043" ]]' "--special parses <s>: $out"
out=$("$SYM" tokenize -m "$SPM" --no-bos "<s>Hello")
check '[[ "$out" != 1\ * ]]' "<s> is text without --special: $out"

# tokenizer.json: a file and a directory
mkdir -p "$TMP/hf"
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}' \
  > "$TMP/hf/tokenizer.json"
out=$("$SYM" tokenize -m "$TMP/hf" "abab")
check '[[ "$out" == "2 2" ]]' "tokenizer.json directory: $out"
out=$("$SYM" tokenize -m "$TMP/hf/tokenizer.json" "aba")
check '[[ "$out" == "2 0" ]]' "tokenizer.json file: $out"

# errors: exit 1 with a clear message
u32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $((($1 >> 8) & 255)))\\x$(printf %02x $((($1 >> 16) & 255)))\\x$(printf %02x $((($1 >> 24) & 255)))"; }
u64() { u32 "$1"; u32 0; }
gstr() { u64 ${#1}; printf '%s' "$1"; }
kv_str() { gstr "$1"; u32 8; gstr "$2"; }
kv_strs() { local key=$1; shift; gstr "$key"; u32 9; u32 8; u64 $#; for s in "$@"; do gstr "$s"; done; }
gguf() { printf 'GGUF'; u32 3; u64 0; u64 "$1"; }
{ gguf 2; kv_str tokenizer.ggml.model t5; kv_strs tokenizer.ggml.tokens a b; } > "$TMP/t5.gguf"
{ gguf 2; kv_str tokenizer.ggml.model gpt2; kv_strs tokenizer.ggml.tokens a b ab; } > "$TMP/nomerges.gguf"
{ gguf 4; kv_str tokenizer.ggml.model gpt2; kv_str tokenizer.ggml.pre bogus-pre;
  kv_strs tokenizer.ggml.tokens a b ab; kv_strs tokenizer.ggml.merges "a b"; } > "$TMP/badpre.gguf"
{ gguf 4; kv_str tokenizer.ggml.model gpt2; kv_str tokenizer.ggml.pre gpt-2;
  kv_strs tokenizer.ggml.tokens a b ab; kv_strs tokenizer.ggml.merges "a b"; } > "$TMP/good.gguf"
out=$("$SYM" tokenize -m "$TMP/good.gguf" "abab")
check '[[ "$out" == "2 2" ]]' "hand-written gguf: $out"
for c in "t5.gguf:not supported" "nomerges.gguf:without merges" "badpre.gguf:bogus-pre" \
         "missing.gguf:cannot open"; do
  f=${c%%:*}; want=${c#*:}
  err=$("$SYM" tokenize -m "$TMP/$f" "x" 2>&1 >/dev/null); rc=$?
  check '[[ $rc -eq 1 && "$err" == *"$want"* ]]' "$f: rc=$rc err=$err"
done
err=$("$SYM" tokenize -m "$SPM" --file "$TMP/nope.txt" 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"nope.txt"* ]]' "missing --file: rc=$rc err=$err"
"$SYM" tokenize "x" >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "no model: rc=$rc"
"$SYM" tokenize -m "$SPM" >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "no text: rc=$rc"
"$SYM" tokenize -m "$SPM" --bogus x >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "unknown option: rc=$rc"
help=$("$SYM" --help)
check '[[ "$help" == *tokenize* ]]' "--help lists tokenize"
exit $fail
