#!/usr/bin/env python3
"""Trains Symbiote's default toy model: a small llama-architecture model on the quotes of Debian's
`fortunes` package, and writes it as a GGUF v3 file (f16 weights, f32 norms) with its
SentencePiece vocabulary, plus reference greedy outputs computed here in f32.

Run once on a machine with a GPU and PyTorch + sentencepiece (the project's H100 machine):
    python3 tools/train/train_toy.py --corpus corpus.txt --out models/toy-fortunes.gguf
The corpus is made here by tools/train/make_corpus.sh (fortunes joined, '%' lines between quotes).

The architecture matches Symbiote's llama path exactly: RMSNorm, RoPE on interleaved pairs (the
GGUF llama layout, so no permutation on export), grouped-query attention, SiLU-gated MLP, tied
input/output embedding.
"""
import argparse, json, math, os, random, struct, sys, time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- model ------------------------------------------------------------------------------------

class Cfg:
    n_vocab = 1024
    n_embd = 256
    n_layer = 4
    n_head = 8
    n_head_kv = 4
    n_ff = 704
    n_ctx = 256
    rope_theta = 10000.0
    rms_eps = 1e-5

def rope_interleaved(x, pos, theta):
    # x: (B, T, H, D); rotates pairs (2i, 2i+1) by pos * theta^(-2i/D)
    d = x.shape[-1]
    i = torch.arange(0, d, 2, device=x.device, dtype=torch.float32)
    freq = theta ** (-i / d)
    ang = pos[:, None].float() * freq[None, :]              # (T, D/2)
    c, s = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
    x0, x1 = x[..., 0::2].float(), x[..., 1::2].float()
    out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)
    return out.type_as(x)

class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.w = nn.Parameter(torch.ones(n))
        self.eps = eps
    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.w

class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        hd = c.n_embd // c.n_head
        self.c, self.hd = c, hd
        self.attn_norm = RMSNorm(c.n_embd, c.rms_eps)
        self.wq = nn.Linear(c.n_embd, c.n_head * hd, bias=False)
        self.wk = nn.Linear(c.n_embd, c.n_head_kv * hd, bias=False)
        self.wv = nn.Linear(c.n_embd, c.n_head_kv * hd, bias=False)
        self.wo = nn.Linear(c.n_head * hd, c.n_embd, bias=False)
        self.ffn_norm = RMSNorm(c.n_embd, c.rms_eps)
        self.w_gate = nn.Linear(c.n_embd, c.n_ff, bias=False)
        self.w_up = nn.Linear(c.n_embd, c.n_ff, bias=False)
        self.w_down = nn.Linear(c.n_ff, c.n_embd, bias=False)
    def forward(self, x, pos, dropout):
        c, hd = self.c, self.hd
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = rope_interleaved(self.wq(h).view(B, T, c.n_head, hd), pos, c.rope_theta)
        k = rope_interleaved(self.wk(h).view(B, T, c.n_head_kv, hd), pos, c.rope_theta)
        v = self.wv(h).view(B, T, c.n_head_kv, hd)
        rep = c.n_head // c.n_head_kv
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=True, dropout_p=dropout)
        x = x + F.dropout(self.wo(a.transpose(1, 2).reshape(B, T, -1)), dropout, self.training)
        h = self.ffn_norm(x)
        x = x + F.dropout(self.w_down(F.silu(self.w_gate(h)) * self.w_up(h)), dropout, self.training)
        return x

class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.tok = nn.Embedding(c.n_vocab, c.n_embd)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = RMSNorm(c.n_embd, c.rms_eps)
        nn.init.normal_(self.tok.weight, std=0.02)
        for b in self.blocks:
            for lin in (b.wq, b.wk, b.wv, b.w_gate, b.w_up):
                nn.init.normal_(lin.weight, std=0.02)
            for lin in (b.wo, b.w_down):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * c.n_layer))
    def forward(self, idx, dropout=0.0):
        T = idx.shape[1]
        pos = torch.arange(T, device=idx.device)
        x = self.tok(idx)
        for b in self.blocks:
            x = b(x, pos, dropout if self.training else 0.0)
        return self.norm(x) @ self.tok.weight.t()   # tied output projection

# ---- data ---------------------------------------------------------------------------------------

def load_quotes(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    quotes = [q.strip("\n") for q in text.split("\n%\n")]
    return [q.replace("\t", "    ") for q in quotes if 20 <= len(q) <= 2000]

def train_tokenizer(quotes, prefix, n_vocab):
    lines = os.path.join(os.path.dirname(prefix), "sp_input.txt")
    with open(lines, "w", encoding="utf-8") as f:
        for q in quotes:
            f.write(q.replace("\n", " ") + "\n")
    spm.SentencePieceTrainer.train(
        input=lines, model_prefix=prefix, vocab_size=n_vocab, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, split_digits=True,
        add_dummy_prefix=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, max_sentence_length=8192,
        num_threads=16, minloglevel=2)
    return spm.SentencePieceProcessor(model_file=prefix + ".model")

# ---- GGUF writer --------------------------------------------------------------------------------

GGUF_U32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_I32 = 4, 6, 7, 8, 9, 5

def gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b

def gguf_kv(key, vtype, value):
    out = gguf_str(key) + struct.pack("<I", vtype)
    if vtype == GGUF_U32: out += struct.pack("<I", value)
    elif vtype == GGUF_I32: out += struct.pack("<i", value)
    elif vtype == GGUF_F32: out += struct.pack("<f", value)
    elif vtype == GGUF_BOOL: out += struct.pack("<B", 1 if value else 0)
    elif vtype == GGUF_STRING: out += gguf_str(value)
    elif vtype == GGUF_ARRAY:
        et, items = value
        out += struct.pack("<IQ", et, len(items))
        for it in items:
            if et == GGUF_STRING: out += gguf_str(it)
            elif et == GGUF_F32: out += struct.pack("<f", it)
            elif et == GGUF_I32: out += struct.pack("<i", it)
    return out

def write_gguf(path, c, sp, tensors):
    """tensors: list of (name, np.ndarray 2-D or 1-D, ggml type 0=f32 1=f16)."""
    n = sp.get_piece_size()
    tokens, scores, types = [], [], []
    for i in range(n):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i): types.append(2)
        elif sp.is_control(i): types.append(3)
        elif sp.is_byte(i): types.append(6)
        else: types.append(1)
    kvs = [
        gguf_kv("general.architecture", GGUF_STRING, "llama"),
        gguf_kv("general.name", GGUF_STRING, "symbiote-toy-fortunes"),
        gguf_kv("general.description", GGUF_STRING,
                "A toy model trained by tools/train/train_toy.py on Debian's fortunes quotes"),
        gguf_kv("llama.context_length", GGUF_U32, c.n_ctx),
        gguf_kv("llama.embedding_length", GGUF_U32, c.n_embd),
        gguf_kv("llama.block_count", GGUF_U32, c.n_layer),
        gguf_kv("llama.feed_forward_length", GGUF_U32, c.n_ff),
        gguf_kv("llama.rope.dimension_count", GGUF_U32, c.n_embd // c.n_head),
        gguf_kv("llama.attention.head_count", GGUF_U32, c.n_head),
        gguf_kv("llama.attention.head_count_kv", GGUF_U32, c.n_head_kv),
        gguf_kv("llama.attention.layer_norm_rms_epsilon", GGUF_F32, c.rms_eps),
        gguf_kv("llama.rope.freq_base", GGUF_F32, c.rope_theta),
        gguf_kv("tokenizer.ggml.model", GGUF_STRING, "llama"),
        gguf_kv("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_STRING, tokens)),
        gguf_kv("tokenizer.ggml.scores", GGUF_ARRAY, (GGUF_F32, scores)),
        gguf_kv("tokenizer.ggml.token_type", GGUF_ARRAY, (GGUF_I32, types)),
        gguf_kv("tokenizer.ggml.unknown_token_id", GGUF_U32, 0),
        gguf_kv("tokenizer.ggml.bos_token_id", GGUF_U32, 1),
        gguf_kv("tokenizer.ggml.eos_token_id", GGUF_U32, 2),
        gguf_kv("tokenizer.ggml.add_bos_token", GGUF_BOOL, True),
        gguf_kv("tokenizer.ggml.add_eos_token", GGUF_BOOL, False),
    ]
    align = 32
    infos, blobs, off = b"", [], 0
    for name, arr, gtype in tensors:
        arr = np.ascontiguousarray(arr.astype(np.float16 if gtype == 1 else np.float32))
        dims = list(reversed(arr.shape))                   # ggml: ne[0] is the contiguous dim
        infos += gguf_str(name) + struct.pack("<I", len(dims))
        infos += b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", gtype, off)
        blob = arr.tobytes()
        pad = (-len(blob)) % align
        blobs.append(blob + b"\0" * pad)
        off += len(blob) + pad
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    header += b"\0" * ((-len(header)) % align)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header)
        for b in blobs: f.write(b)
    os.replace(tmp, path)

# ---- main ---------------------------------------------------------------------------------------

def greedy(model, ids, n_ctx):
    ids = list(ids)
    logits0 = None
    with torch.no_grad():
        while len(ids) < n_ctx:
            out = model(torch.tensor([ids], device=next(model.parameters()).device))[0, -1].float()
            if logits0 is None: logits0 = out.cpu().numpy()
            nxt = int(out.argmax())
            ids.append(nxt)
            if nxt == 2: break
    return ids, logits0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    torch.manual_seed(a.seed); random.seed(a.seed); np.random.seed(a.seed)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    c = Cfg()
    workdir = os.path.dirname(os.path.abspath(a.out))
    quotes = load_quotes(a.corpus)
    sp = train_tokenizer(quotes, os.path.join(workdir, "toy_sp"), c.n_vocab)
    random.shuffle(quotes)
    n_val = max(50, len(quotes) // 50)
    enc = lambda qs: np.concatenate([np.array([1] + sp.encode(q) + [2], dtype=np.int64) for q in qs])
    train, val = enc(quotes[n_val:]), enc(quotes[:n_val])
    print(f"{len(quotes)} quotes, {len(train)} train tokens, {len(val)} val tokens", flush=True)
    train_t, val_t = torch.from_numpy(train).to(dev), torch.from_numpy(val).to(dev)

    def batch(data):
        ix = torch.randint(0, len(data) - c.n_ctx - 1, (a.batch,), device=dev)
        x = torch.stack([data[i:i + c.n_ctx] for i in ix])
        y = torch.stack([data[i + 1:i + c.n_ctx + 1] for i in ix])
        return x, y

    model = Model(c).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
    t0 = time.time()
    for step in range(a.steps + 1):
        lr = a.lr * min(1.0, step / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / a.steps)))
        for g in opt.param_groups: g["lr"] = lr
        model.train()
        x, y = batch(train_t)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=dev == "cuda"):
            loss = F.cross_entropy(model(x, dropout=0.1).float().view(-1, c.n_vocab), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 500 == 0:
            model.eval()
            with torch.no_grad():
                vx, vy = batch(val_t)
                vl = F.cross_entropy(model(vx).float().view(-1, c.n_vocab), vy.view(-1))
            print(f"step {step} train {loss.item():.3f} val {vl.item():.3f} {time.time()-t0:.0f}s",
                  flush=True)

    # Export: f16 matrices, f32 norms; the reference below runs on exactly these f16 values.
    model = model.float().eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2: p.copy_(p.half().float())
    def t(p): return p.detach().cpu().numpy()
    tensors = [("token_embd.weight", t(model.tok.weight), 1),
               ("output_norm.weight", t(model.norm.w), 0)]
    for i, b in enumerate(model.blocks):
        tensors += [(f"blk.{i}.attn_norm.weight", t(b.attn_norm.w), 0),
                    (f"blk.{i}.attn_q.weight", t(b.wq.weight), 1),
                    (f"blk.{i}.attn_k.weight", t(b.wk.weight), 1),
                    (f"blk.{i}.attn_v.weight", t(b.wv.weight), 1),
                    (f"blk.{i}.attn_output.weight", t(b.wo.weight), 1),
                    (f"blk.{i}.ffn_norm.weight", t(b.ffn_norm.w), 0),
                    (f"blk.{i}.ffn_gate.weight", t(b.w_gate.weight), 1),
                    (f"blk.{i}.ffn_up.weight", t(b.w_up.weight), 1),
                    (f"blk.{i}.ffn_down.weight", t(b.w_down.weight), 1)]
    write_gguf(a.out, c, sp, tensors)

    # Reference greedy continuations in f32 (TF32 off) for the engine's tests.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    lines = ["# Greedy continuations of toy-fortunes.gguf computed by tools/train/train_toy.py in",
             "# PyTorch f32 from the exported f16 weights. ids: BOS=1 first, SentencePiece encoding."]
    for prompt in ["The meaning of life is", "A computer", "Never trust"]:
        ids = [1] + sp.encode(prompt)
        out, logits = greedy(model, ids, 96)
        lines += [f"prompt: {prompt}", "prompt_ids: " + " ".join(map(str, ids)),
                  "generated_ids: " + " ".join(map(str, out[len(ids):])),
                  "text: " + json.dumps(sp.decode(out[1:])),
                  "top_logits: " + " ".join(f"{i}:{logits[i]:.6f}" for i in np.argsort(-logits)[:8])]
        print(prompt, "->", sp.decode(out[1:]), flush=True)
    open(os.path.splitext(a.out)[0] + ".expected.txt", "w").write("\n".join(lines) + "\n")
    print("wrote", a.out, os.path.getsize(a.out), "bytes", flush=True)

if __name__ == "__main__":
    main()
