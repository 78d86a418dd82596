"""The gpicl Transformer and training step in PyTorch, for timing against `gpicl bench`.

Same model as crates/gpicl-core/src/model.rs (pre-LayerNorm, no positional encoding, causal
multi-head attention with biases, GELU feed-forward, final LayerNorm, linear head), same step as
crates/gpicl-core/src/train.rs (a new batch of tasks every step: each sequence's examples, its
random projection A ~ N(0, 1/n_in) and its label permutation drawn on the device; the projection
matmul, mean cross-entropy over positions, Adam with gradient-norm clipping at 1.0), same shapes
as the CLI's presets. Both sides sample their tasks inside the timed step.
Float32 throughout (TF32 off; --tf32 also times the step with the matrix products in TF32 on the
tensor cores, which burn's autotuned CUDA matmul may choose for float32), eager mode and, with
--compile, torch.compile.

Usage: python3 bench/reference_torch.py --preset bench --steps 20 [--device cuda] [--compile] [--tf32]
Prints one line per (preset, mode): ms/step and steps/s, after warm-up, synchronised.

       python3 bench/reference_torch.py --check-export learner.safetensors
Loads a learner written by `gpicl export` into this model (strict: every name and shape must
match), runs it on the file's check batch and compares its logits with the ones gpicl computed
(exit status 1 when they differ by more than 1e-4).
"""

import argparse
import json
import math
import struct
import sys
import time

import torch
from torch import nn

# (B, T, tokens per example, n_in, d_in, n_classes, d_model, layers, heads, d_ff)
PRESETS = {
    "browser": (32, 30, 2, 49, 49, 10, 64, 2, 4, 256),
    "bench": (32, 50, 1, 196, 196, 10, 128, 4, 8, 512),
    "cpu": (32, 50, 2, 49, 49, 10, 128, 2, 8, 256),
    "pretrained": (128, 100, 2, 49, 49, 10, 128, 4, 8, 512),
    "paper": (128, 100, 1, 784, 784, 10, 256, 4, 8, 1024),
}


class Block(nn.Module):
    def __init__(self, d, heads, d_ff):
        super().__init__()
        self.heads = heads
        self.ln_attn = nn.LayerNorm(d)
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out = nn.Linear(d, d)
        self.ln_ff = nn.LayerNorm(d)
        self.ff_in, self.ff_out = nn.Linear(d, d_ff), nn.Linear(d_ff, d)

    def forward(self, x, mask):
        b, l, d = x.shape
        h, dh = self.heads, d // self.heads
        y = self.ln_attn(x)
        q, k, v = (
            f(y).view(b, l, h, dh).transpose(1, 2) for f in (self.query, self.key, self.value)
        )
        w = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(dh) + mask, dim=-1)
        x = x + self.attn_out((w @ v).transpose(1, 2).reshape(b, l, d))
        return x + self.ff_out(nn.functional.gelu(self.ff_in(self.ln_ff(x))))


class Transformer(nn.Module):
    def __init__(self, width, n_classes, d, layers, heads, d_ff):
        super().__init__()
        self.embed = nn.Linear(width, d)
        self.blocks = nn.ModuleList(Block(d, heads, d_ff) for _ in range(layers))
        self.ln_final = nn.LayerNorm(d)
        self.head = nn.Linear(d, n_classes)

    def forward(self, tokens):
        l = tokens.shape[1]
        mask = torch.full((l, l), -1e9, device=tokens.device).triu(1)
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln_final(x))


def bench(preset, device, steps, warmup, compile_):
    b, t, k, n_in, d_in, c, d, layers, heads, d_ff = PRESETS[preset]
    torch.manual_seed(0)
    model = Transformer(d_in + c + 1, c, d, layers, heads, d_ff).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    # A dataset of the bench's size (`gpicl bench` uses 1000 synthetic examples).
    data_x = torch.rand(1000, n_in, device=device)
    data_y = torch.randint(0, c, (1000,), device=device)

    def step():
        # The batch of tasks: examples, projections and label permutations, new every step.
        idx = torch.randint(0, data_x.shape[0], (b, t), device=device)
        a = torch.randn(b, n_in, d_in, device=device) / math.sqrt(n_in)
        perm = torch.argsort(torch.rand(b, c, device=device), dim=1)
        targets = perm.gather(1, data_y[idx])
        labels = torch.nn.functional.one_hot(targets.repeat_interleave(k, dim=1), c + 1)
        projected = (data_x[idx] @ a).repeat_interleave(k, dim=1)
        tokens = torch.cat([projected, labels.float()], dim=2)
        logits = model(tokens)[:, ::k]
        loss = nn.functional.cross_entropy(logits.reshape(-1, c), targets.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    if compile_:
        step = torch.compile(step)
    for _ in range(warmup):
        step()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    sync()
    per = (time.perf_counter() - t0) / steps
    mode = "torch-compile" if compile_ else "torch-eager"
    if torch.backends.cuda.matmul.allow_tf32:
        mode += "-tf32"
    print(f"{preset:<11} {mode:<14} {device:<6} {per * 1e3:>10.2f} ms/step {1 / per:>9.1f} steps/s")


def read_safetensors(path):
    """The tensors (float32) and metadata of a safetensors file, read with nothing but torch."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    metadata = header.pop("__metadata__", {})
    body = raw[8 + n :]
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise SystemExit(f"{name}: dtype {entry['dtype']}, expected F32")
        start, end = entry["data_offsets"]
        values = torch.frombuffer(bytearray(body[start:end]), dtype=torch.float32)
        tensors[name] = values.reshape(entry["shape"])
    return tensors, metadata


def check_export(path, device):
    tensors, metadata = read_safetensors(path)
    m = json.loads(metadata["model"])
    if m.get("arch", "transformer") != "transformer":
        raise SystemExit("only the Transformer has a model here")
    width = m["d_in"] + m["n_classes"] + 1
    model = Transformer(width, m["n_classes"], m["d_model"], m["n_layers"], m["n_heads"], m["d_ff"])
    tokens, expected = tensors.pop("check.tokens"), tensors.pop("check.logits")
    model.load_state_dict(tensors, strict=True)
    model = model.to(device).eval()
    with torch.no_grad():
        logits = model(tokens.to(device)).cpu()
    diff = (logits - expected).abs().max().item()
    n_params = sum(t.numel() for t in tensors.values())
    print(
        f"{path}: {len(tensors)} tensors, {n_params} parameters loaded; logits on the check batch "
        f"{tuple(tokens.shape)} differ from gpicl's by at most {diff:.2e} (tolerance 1e-4)"
    )
    return diff <= 1e-4


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check-export", metavar="FILE", help="check a `gpicl export` file")
    p.add_argument("--preset", action="append", choices=sorted(PRESETS))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    p.add_argument("--tf32", action="store_true", help="then time each again with TF32 matmuls")
    args = p.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if args.check_export:
        sys.exit(0 if check_export(args.check_export, args.device) else 1)
    for tf32 in [False, True] if args.tf32 else [False]:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        for preset in args.preset or ["bench"]:
            bench(preset, args.device, args.steps, args.warmup, False)
            if args.compile:
                bench(preset, args.device, args.steps, args.warmup, True)


if __name__ == "__main__":
    main()
