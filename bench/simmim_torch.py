#!/usr/bin/python3
"""simmim_torch.py - the PyTorch 1.13 CPU peer of bench/run: SimMIM pretraining steps, fine-tuning
steps and the evaluation forward, timed per step (a copy of ../shared/peer/simmim_torch.py,
extended to fine-tuning, evaluation, gradient clipping and bf16 autocast).

Models (torchvision 0.14, random init):
  vit   : vit_b_16 at 224 (patch 16). Pretraining: SimMIM wiring: patch embed -> masked tokens
          replaced by a learnable mask token -> [cls] + encoder -> drop cls -> 1x1 conv to
          16*16*3 -> PixelShuffle(16) -> L1 on masked pixels (mask patch 32, ratio 0.6).
          Fine-tuning: vit_b_16(num_classes) (class-token head).
          torchvision's ViT has absolute position embeddings and no layer scale, relative position
          bias or drop path: a little less work than the configs' ViT (docs/performance.md).
  swin  : torchvision SwinTransformer (Swin-B: embed 128, depths 2-2-18-2, heads 4-8-16-32), drop
          path 0.1, built directly (swin_b() fixes window 7 and drop path 0.5). Pretraining at 192
          with window 6: mask token after the patch embedding (conv+LN), features -> norm -> 1x1
          conv to 32*32*3 -> PixelShuffle(32) -> L1 on masked pixels. Fine-tuning at 224 with
          window 7 and a linear head (num_classes).
Tasks (--task): pretrain (default) or finetune (cross-entropy on random labels).
Modes:
  train : forward + backward + gradient clipping (--clip, default 5.0 as the configs'
          train_wrapper; 0 = off) + AdamW step (lr 1e-4, wd 0.05), per-step wall time
  infer : model.eval(), torch.no_grad(), forward per batch: the encoder (pretrain) or the
          classifier's logits (finetune)
  count : one training step under a TorchDispatchMode that counts GEMM/conv FLOPs and the
          bytes touched by every other (non-view) aten op; prints a table; no timing.
--flush-denormal: torch.set_flush_denormal(True) first (FTZ/DAZ, as simmimctl runs); off by
          default, as in PyTorch.
--bf16: torch.autocast("cpu", dtype=torch.bfloat16) around the forward (and loss), as
          `backend.precision: bf16` does on our side; the master weights and AdamW stay fp32.
          LayerNorm runs in fp32 on an fp32 copy of its input, as on our side and as later
          PyTorch versions' CPU autocast does: 1.13's leaves layer_norm out of its lists, so
          torchvision's Swin (a LayerNorm straight after the bf16 patch convolution) stops
          with "expected scalar type BFloat16 but found Float". For the same error in ViT's
          evaluation, nn.MultiheadAttention's inference fast path (torch 1.13's
          _native_multi_head_attention, not autocast-aware) is turned off under --bf16 by
          leaving those modules in training mode (their dropout is 0).
Each timed step also records the CPU seconds used by OTHER processes during that step
(from /proc/stat minus this process' own CPU time) and the VM steal time, so noisy steps
can be seen.  Prints one JSON line at the end.

Run: /usr/bin/python3 simmim_torch.py --model vit --batch 8 --mode train --steps 5 --warmup 2
Threads: torch.set_num_threads(--threads, default 2).  The BLAS library's own threads are
set by its environment variables (BLIS_NUM_THREADS / OPENBLAS_NUM_THREADS): bench/run sets
BLIS_NUM_THREADS to --threads. BLIS picks its kernel set itself (zen3 on Zen 3); on CPUs BLIS
0.9 does not know, ../shared/peer/README.md explains BLIS_ARCH_TYPE.
"""
import argparse, json, math, os, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.swin_transformer import SwinTransformer


# ----------------------------------------------------------------------------- models
class SimMIMViT(nn.Module):
    def __init__(self, patch=16):
        super().__init__()
        self.enc = torchvision.models.vit_b_16()  # dropout 0, no drop path in torchvision's ViT
        D = self.enc.hidden_dim
        self.patch = patch
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.decoder = nn.Sequential(nn.Conv2d(D, patch * patch * 3, 1), nn.PixelShuffle(patch))

    def encode(self, x, mask=None):
        B = x.shape[0]
        t = self.enc._process_input(x)  # B, N, D
        if mask is not None:
            w = mask.flatten(1).unsqueeze(-1).type_as(t)
            t = t * (1 - w) + self.mask_token.expand(B, t.shape[1], -1) * w
        t = torch.cat([self.enc.class_token.expand(B, -1, -1), t], dim=1)
        return self.enc.encoder(t)  # pos-embedding, blocks, final LN

    def forward(self, x, mask):
        t = self.encode(x, mask)[:, 1:]
        B, N, D = t.shape
        h = int(math.isqrt(N))
        z = t.transpose(1, 2).reshape(B, D, h, h)
        rec = self.decoder(z)
        m = mask.repeat_interleave(self.patch, 1).repeat_interleave(self.patch, 2).unsqueeze(1).contiguous()
        loss = (F.l1_loss(x, rec, reduction="none") * m).sum() / (m.sum() + 1e-5) / 3
        return loss


class SimMIMSwin(nn.Module):
    def __init__(self, window=6, stride=32):
        super().__init__()
        sw = SwinTransformer(patch_size=[4, 4], embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                             window_size=[window, window], stochastic_depth_prob=0.1)
        self.features, self.norm = sw.features, sw.norm
        self.patch = 4
        self.stride = stride
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 1, 128))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.decoder = nn.Sequential(nn.Conv2d(1024, stride * stride * 3, 1), nn.PixelShuffle(stride))

    def encode(self, x, mask=None):
        t = self.features[0](x)  # B, H, W, C (conv 4x4/4 + LayerNorm)
        if mask is not None:
            w = mask.unsqueeze(-1).type_as(t)
            t = t * (1 - w) + self.mask_token * w
        for f in self.features[1:]:
            t = f(t)
        return self.norm(t)  # B, h, w, 1024

    def forward(self, x, mask):
        z = self.encode(x, mask).permute(0, 3, 1, 2)
        rec = self.decoder(z)
        m = mask.repeat_interleave(self.patch, 1).repeat_interleave(self.patch, 2).unsqueeze(1).contiguous()
        loss = (F.l1_loss(x, rec, reduction="none") * m).sum() / (m.sum() + 1e-5) / 3
        return loss


def make_classifier(name, classes, img, window):
    """The fine-tuning model: torchvision's ViT-B/16 or a Swin-B with window `window`."""
    if name == "vit":
        return torchvision.models.vit_b_16(num_classes=classes, image_size=img)
    return SwinTransformer(patch_size=[4, 4], embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                           window_size=[window, window], stochastic_depth_prob=0.1, num_classes=classes)


def make_mask(B, img, model_patch, mask_patch=32, ratio=0.6, gen=None):
    """SimMIM MaskGenerator: random mask on a (img/32)^2 grid, upsampled to model patches."""
    n = img // mask_patch
    cnt = int(math.ceil(n * n * ratio))
    scale = mask_patch // model_patch
    ms = []
    for _ in range(B):
        idx = torch.randperm(n * n, generator=gen)[:cnt]
        m = torch.zeros(n * n)
        m[idx] = 1
        m = m.reshape(n, n).repeat_interleave(scale, 0).repeat_interleave(scale, 1)
        ms.append(m)
    return torch.stack(ms)


# ----------------------------------------------------------------------------- noise accounting
def proc_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return (user + nice + system + irq + softirq) / hz, steal / hz


def own_cpu():
    t = os.times()
    return t.user + t.system


class Noise:
    def __enter__(self):
        self.b0, self.s0 = proc_stat(); self.o0 = own_cpu(); self.t0 = time.perf_counter(); return self

    def __exit__(self, *a):
        b1, s1 = proc_stat(); o1 = own_cpu(); self.wall = time.perf_counter() - self.t0
        self.foreign = max(0.0, (b1 - self.b0) - (o1 - self.o0))  # CPU-s used by other processes
        self.steal = s1 - self.s0
        self.own = o1 - self.o0


# ----------------------------------------------------------------------------- FLOP / byte counter
def count_step(model, x, mask, opt):
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    aten = torch.ops.aten
    VIEW = {"view", "_unsafe_view", "t", "transpose", "permute", "expand", "as_strided", "detach", "alias",
            "slice", "select", "unsqueeze", "squeeze", "reshape", "_reshape_alias", "unbind", "split",
            "split_with_sizes", "chunk", "lift_fresh", "numel", "size", "stride", "is_same_size",
            "_to_copy_meta", "empty", "empty_like", "new_empty", "new_empty_strided", "empty_strided",
            "zeros", "zeros_like", "ones_like", "new_zeros", "scalar_tensor", "_local_scalar_dense",
            "sym_size", "sym_stride", "dim", "randperm"}

    def prod(s):
        p = 1
        for d in s:
            p *= d
        return p

    def gemm_flops(name, args, out):
        if name in ("mm",):
            a, b = args[0], args[1]; return 2 * a.shape[0] * a.shape[1] * b.shape[1]
        if name == "addmm":
            a, b = args[1], args[2]; return 2 * a.shape[0] * a.shape[1] * b.shape[1]
        if name == "bmm":
            a, b = args[0], args[1]; return 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        if name == "baddbmm":
            a, b = args[1], args[2]; return 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        if name == "convolution":
            w = args[1]; groups = args[8]
            return 2 * prod(out.shape) * (w.shape[1]) * prod(w.shape[2:])
        if name == "convolution_backward":
            gout, inp, w = args[0], args[1], args[2]; mask3 = args[10]; groups = args[9]
            f = 2 * prod(gout.shape) * w.shape[1] * prod(w.shape[2:])
            return f * (int(mask3[0]) + int(mask3[1]))
        return None

    class Counter(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.phase = "fwd"
            self.flops = {}
            self.bytes = {}
            self.calls = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            name = func.__name__.split(".")[0]
            key = (self.phase, name)
            self.calls[key] = self.calls.get(key, 0) + 1
            g = gemm_flops(name, args, out if isinstance(out, torch.Tensor) else None)
            if g is not None:
                self.flops[key] = self.flops.get(key, 0) + g
            elif name not in VIEW:
                ins = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
                outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
                nb = 0
                seen = set()
                for t in ins:  # each distinct input read once
                    if t.data_ptr() in seen:
                        continue
                    seen.add(t.data_ptr()); nb += t.numel() * t.element_size()
                for t in outs:  # each output written once (in-place outputs too)
                    nb += t.numel() * t.element_size()
                self.bytes[key] = self.bytes.get(key, 0) + nb
            return out

    c = Counter()
    with c:
        if opt is None:  # encoder forward only
            model.encode(x)
            return c
        loss = model(x, mask)
        c.phase = "bwd"
        opt.zero_grad(set_to_none=True)
        loss.backward()
        c.phase = "opt"
        opt.step()
    return c


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["vit", "swin"], default="vit")
    ap.add_argument("--task", choices=["pretrain", "finetune"], default="pretrain")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--img", type=int, default=0, help="default 224; 192 for swin pretraining")
    ap.add_argument("--window", type=int, default=0, help="swin: default 6 (pretrain), 7 (finetune)")
    ap.add_argument("--classes", type=int, default=46, help="finetune: classes of the head")
    ap.add_argument("--mode", choices=["train", "infer", "count"], default="train")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clip", type=float, default=5.0, help="gradient clipping max norm (0: off)")
    ap.add_argument("--bf16", action="store_true", help="autocast the forward to bfloat16")
    ap.add_argument("--flush-denormal", action="store_true",
                    help="torch.set_flush_denormal(True): subnormal floats read and written as "
                         "zero, as simmimctl runs (docs/performance.md); PyTorch's default is off")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.flush_denormal and not torch.set_flush_denormal(True):
        sys.exit("simmim_torch.py: this CPU cannot flush subnormals (torch.set_flush_denormal)")
    torch.manual_seed(0)
    ft = a.task == "finetune"
    img = a.img or (224 if a.model == "vit" or ft else 192)
    window = a.window or (7 if ft else 6)
    if ft:
        model = make_classifier(a.model, a.classes, img, window); mp = 16 if a.model == "vit" else 4
    elif a.model == "vit":
        model = SimMIMViT(); mp = 16
    else:
        model = SimMIMSwin(window=window); mp = 4
    nparam = sum(p.numel() for p in model.parameters())
    x = torch.randn(a.batch, 3, img, img)
    gen = torch.Generator().manual_seed(0)
    mask = make_mask(a.batch, img, mp, gen=gen)
    labels = torch.randint(0, a.classes, (a.batch,), generator=gen)
    res = dict(model=a.model, task=a.task, img=img, batch=a.batch, mode=a.mode, threads=a.threads,
               flush_denormal=a.flush_denormal,
               torch_threads=torch.get_num_threads(), params=nparam, tag=a.tag, bf16=a.bf16, clip=a.clip,
               torch=torch.__version__,
               env={k: os.environ[k] for k in sorted(os.environ) if k.startswith(("BLIS", "OMP", "OPENBLAS", "GOMP", "LD_"))},
               mask_ratio=float(mask.mean()))
    if a.model == "swin":
        res["window"] = window
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16)

    if a.bf16:  # LayerNorm in fp32 (see --bf16 above)
        def ln_fp32(self, t):
            return F.layer_norm(t.float(), self.normalized_shape, self.weight, self.bias, self.eps)
        nn.LayerNorm.forward = ln_fp32

    def loss_of():
        with autocast():
            if ft:
                return F.cross_entropy(model(x), labels)
            return model(x, mask)

    if a.mode == "count":
        model.train()
        if ft:  # count_step calls model(x, mask): hand it the fine-tuning loss instead
            class _Loss(nn.Module):
                def forward(self, x_, m_):
                    return F.cross_entropy(model(x_), labels)

                def encode(self, x_):
                    return model(x_)
            c = count_step(_Loss(), x, mask, opt)
        else:
            c = count_step(model, x, mask, opt)
        tot = {}
        for (ph, nm), v in sorted(c.flops.items()):
            tot[ph] = tot.get(ph, 0) + v
        res["gemm_flops"] = {f"{ph}.{nm}": v for (ph, nm), v in sorted(c.flops.items())}
        res["gemm_flops_total"] = tot
        res["nongemm_bytes"] = {f"{ph}.{nm}": v for (ph, nm), v in sorted(c.bytes.items(), key=lambda kv: -kv[1])}
        bt = {}
        for (ph, nm), v in c.bytes.items():
            bt[ph] = bt.get(ph, 0) + v
        res["nongemm_bytes_total"] = bt
        res["calls"] = {f"{ph}.{nm}": v for (ph, nm), v in sorted(c.calls.items())}
        # forward FLOPs of what "infer" runs; counted in train mode with grad enabled so that
        # the fused inference MHA kernel does not hide its GEMMs (same math)
        c2 = count_step(model if not ft else _Loss(), x, None, None)
        res["infer_gemm_flops"] = sum(v for (ph, nm), v in c2.flops.items())
        res["infer_nongemm_bytes"] = sum(v for (ph, nm), v in c2.bytes.items())
        print(json.dumps(res))
        return

    times, noise = [], []
    if a.mode == "train":
        model.train()
        params = [p for p in model.parameters()]

        def step():
            loss = loss_of()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if a.clip > 0:
                torch.nn.utils.clip_grad_norm_(params, a.clip)
            opt.step()
            return float(loss)
    else:
        model.eval()
        if a.bf16:  # see --bf16 above: MultiheadAttention's inference fast path under autocast
            for m in model.modules():
                if isinstance(m, nn.MultiheadAttention):
                    m.train()  # its dropout is 0: only the fast path is turned off

        def step():
            with torch.no_grad(), autocast():
                out = model(x) if ft else model.encode(x)
            return float(out.flatten()[0])

    for i in range(a.warmup + a.steps):
        with Noise() as n:
            v = step()
        if i >= a.warmup:
            times.append(n.wall); noise.append((round(n.foreign, 3), round(n.steal, 3), round(n.own, 3)))
        print(f"step {i} {'(warmup) ' if i < a.warmup else ''}{n.wall:.3f} s  loss/out {v:.4f}  "
              f"foreign-cpu {n.foreign:.2f} s  steal {n.steal:.2f} s  own-cpu {n.own:.2f} s", file=sys.stderr, flush=True)
    st = sorted(times)
    med = st[len(st) // 2] if len(st) % 2 else 0.5 * (st[len(st) // 2 - 1] + st[len(st) // 2])
    res.update(step_times=[round(t, 4) for t in times], median_s=round(med, 4), min_s=round(st[0], 4),
               max_s=round(st[-1], 4), images_per_s=round(a.batch / med, 3), noise_foreign_steal_own=noise)
    import resource
    res["maxrss_MiB_self"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
