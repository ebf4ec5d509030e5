#!/bin/bash
# CLI: `info` (text and --json) on the shared model and on made models; `make-model` in both
# formats; a quantized GGUF is described and then refused; errors exit non-zero with a message.
set -u
SYM=$1; SHARED=$2; TMP=$3
rm -rf "$TMP"; mkdir -p "$TMP"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
# "key": value in pretty JSON
jget() { printf '%s\n' "$1" | grep -E "^ *\"$2\":" | head -1 | sed -E 's/^ *"[^"]*": *//; s/,$//'; }

M="$SHARED/models/aidreams260K.gguf"
out=$("$SYM" info "$M" --json); rc=$?
check '[[ $rc -eq 0 ]]' "info --json rc=$rc"
for kv in architecture:'"llama"' n_embd:64 n_layer:4 n_head:4 n_head_kv:4 n_ff:172 n_vocab:512 \
          n_ctx_train:128 n_params:263744 weight_bytes:1054976 runnable:true; do
  k=${kv%%:*}; v=${kv#*:}
  got=$(jget "$out" "$k")
  check '[[ "$got" == "$v" ]]' "info --json $k = '$got', want $v"
done
check '[[ "$out" == *"\"tensor_types\""*"\"f32\""*"\"count\":39"* ]]' "tensor_types"
check '[[ "$out" == *"\"bos_id\":1"* && "$out" == *"\"eos_id\":2"* ]]' "tokenizer ids"
out=$("$SYM" info -m "$M"); rc=$?
check '[[ $rc -eq 0 && "$out" == *"architecture:  llama"* && "$out" == *"n_ff 172"* ]]' "info text: $out"
check '[[ "$out" == *"tokenizer:     llama, 512 tokens, bos 1, eos 2"* ]]' "info tokenizer line"

# make-model, both formats, then info
out=$("$SYM" make-model -o "$TMP/t.gguf" --preset tiny --dtype bf16 --seed 5); rc=$?
check '[[ $rc -eq 0 && "$out" == *"wrote"* ]]' "make-model gguf rc=$rc"
out=$("$SYM" info --json "$TMP/t.gguf")
check '[[ $(jget "$out" n_embd) == 80 && $(jget "$out" n_head_kv) == 2 && $(jget "$out" n_vocab) == 515 ]]' "made gguf dims"
check '[[ "$out" == *"\"bf16\""* ]]' "made gguf dtype"
"$SYM" make-model -o "$TMP/st" --format safetensors --preset tiny-qwen2 --n-layer 3 --dtype f32 -q >/dev/null; rc=$?
check '[[ $rc -eq 0 && -f "$TMP/st/config.json" && -f "$TMP/st/model.safetensors" && -f "$TMP/st/tokenizer.json" ]]' "make-model safetensors rc=$rc"
out=$("$SYM" info --json "$TMP/st")
check '[[ $(jget "$out" architecture) == "\"qwen2\"" && $(jget "$out" n_layer) == 3 && $(jget "$out" format) == "\"safetensors\"" ]]' "made safetensors: $out"
check '[[ $(jget "$out" tied_embeddings) == true && $(jget "$out" rope_neox) == 1 ]]' "qwen2 tied/neox"
"$SYM" make-model -o "$TMP/sh" --format safetensors --n-embd 256 --n-head 4 --n-head-kv 4 --n-ff 1024 --dtype f32 --shard-mb 1 >/dev/null; rc=$?
check '[[ $rc -eq 0 && -f "$TMP/sh/model.safetensors.index.json" && $(ls "$TMP/sh" | grep -c "^model-000..-of-000..\.safetensors$") -gt 5 ]]' "sharded: $(ls "$TMP/sh")"
"$SYM" info "$TMP/sh" >/dev/null; rc=$?
check '[[ $rc -eq 0 ]]' "info sharded rc=$rc"
"$SYM" make-model -o "$TMP/v.gguf" --vocab-from "$SHARED/tokenizer/ggml-vocab-llama-spm.gguf" --n-layer 1 >/dev/null; rc=$?
out=$("$SYM" info --json "$TMP/v.gguf")
check '[[ $rc -eq 0 && $(jget "$out" n_vocab) == 32000 ]]' "vocab-from n_vocab"

# a quantized GGUF: blk.0.attn_q.weight's type (after name, n_dims and two dims) becomes Q8_0
"$SYM" make-model -o "$TMP/q.gguf" --n-embd 64 --dtype f32 >/dev/null
pos=$(grep -obUa 'blk\.0\.attn_q\.weight' "$TMP/q.gguf" | head -1 | cut -d: -f1)
printf '\x08' | dd of="$TMP/q.gguf" bs=1 seek=$((pos + 19 + 4 + 16)) conv=notrunc 2>/dev/null
out=$("$SYM" info --json "$TMP/q.gguf" 2>"$TMP/err"); rc=$?; err=$(cat "$TMP/err")
check '[[ $rc -eq 1 && $(jget "$out" runnable) == false && "$out" == *"\"Q8_0\""* ]]' "quantized described: rc=$rc $out"
check '[[ "$err" == *"SYM_ERR_UNSUPPORTED"*"blk.0.attn_q.weight is Q8_0: Symbiote runs unquantized models"* ]]' "quantized refused: $err"
out=$("$SYM" info "$TMP/q.gguf" 2>/dev/null)
check '[[ "$out" == *"runnable:      no"* && "$out" == *"Q8_0 1"* ]]' "quantized text: $out"

# errors
err=$("$SYM" info "$TMP/none.gguf" 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"SYM_ERR_IO"*"none.gguf"* ]]' "missing file: rc=$rc $err"
head -c 100 "$M" > "$TMP/cut.gguf"
err=$("$SYM" info "$TMP/cut.gguf" 2>&1 >/dev/null); rc=$?
check '[[ $rc -eq 1 && "$err" == *"SYM_ERR_FORMAT"*"cut.gguf: gguf:"* ]]' "truncated: rc=$rc $err"
"$SYM" info >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "info without model rc=$rc"
"$SYM" info "$M" --bogus >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "info bad flag rc=$rc"
"$SYM" make-model --preset tiny >/dev/null 2>&1; rc=$?
check '[[ $rc -eq 2 ]]' "make-model without -o rc=$rc"
err=$("$SYM" make-model -o "$TMP/x.gguf" --dtype q4 2>&1); rc=$?
check '[[ $rc -eq 2 && "$err" == *"--dtype"* ]]' "bad dtype rc=$rc"
err=$("$SYM" make-model -o "$TMP/x.gguf" --preset huge 2>&1); rc=$?
check '[[ $rc -eq 2 && "$err" == *"unknown preset"* ]]' "bad preset rc=$rc $err"
err=$("$SYM" make-model -o "$TMP/x.gguf" --n-vocab 600 --vocab-from "$M" 2>&1); rc=$?
check '[[ $rc -eq 2 && "$err" == *"conflicts"* ]]' "n-vocab + vocab-from rc=$rc"
err=$("$SYM" make-model -o "$TMP/x.gguf" --n-embd 81 2>&1); rc=$?
check '[[ $rc -eq 1 && "$err" == *"SYM_ERR_ARG"*"not a multiple of n_head"* ]]' "bad dims rc=$rc $err"
err=$("$SYM" make-model -o "$TMP/st" --format safetensors 2>&1); rc=$?
check '[[ $rc -eq 1 && "$err" == *"not empty"* ]]' "non-empty dir rc=$rc $err"
check '[[ ! -e "$TMP/x.gguf" ]]' "failed make-model left a file"
cp "$SHARED/tokenizer/ggml-vocab-llama-spm.gguf" "$TMP/voc.gguf"
err=$("$SYM" make-model -o "$TMP/voc.gguf" --vocab-from "$TMP/voc.gguf" 2>&1); rc=$?
check '[[ $rc -eq 1 && "$err" == *"refusing to overwrite"* ]] && cmp -s "$TMP/voc.gguf" "$SHARED/tokenizer/ggml-vocab-llama-spm.gguf"' "vocab-from protected: $err"

help=$("$SYM" make-model --help)
for flag in --output --preset --arch --n-embd --n-layer --n-head --n-head-kv --head-dim --n-ff \
            --n-vocab --n-ctx --rope-theta --rms-eps --tied --untied --dtype --seed --vocab-from \
            --format --shard-mb --quiet tinyllama-1.1b llama2-7b llama3-8b mistral-7b; do
  check '[[ "$help" == *"$flag"* ]]' "make-model --help lists $flag"
done
help=$("$SYM" info --help)
check '[[ "$help" == *"--json"* && "$help" == *"--model"* ]]' "info --help"
help=$("$SYM" --help)
check '[[ "$help" == *"make-model"* && "$help" == *"info"* ]]' "top-level help lists the commands"
exit $fail
