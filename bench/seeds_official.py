#!/usr/bin/env python3
"""The official side of bench/seeds: one run of the protocol's fine-tuning (configs/protocol/
finetune.yaml, docs/protocol.md) through microsoft/SimMIM's own main_finetune.py code.

What runs unchanged from the official code (imported from --simmim-src, a checkout that is not
part of this repository): config.py defaults, models/vision_transformer.py via build_model,
optimizer.build_optimizer (layer decay, weight-decay groups), lr_scheduler.build_scheduler,
utils.load_pretrained (the shared relative-position table copied into every block), the
criterion choice of main(), and main_finetune.train_one_epoch and validate for every epoch,
in main()'s order. timm, yacs and termcolor are the stand-ins of tools/golden_train/stubs
(timm 0.4.12 semantics); the transforms are timm's create_transform stand-in on Pillow.

What this file supplies, as main() would get it from data/data_finetune.py:
- the data: Fashion-MNIST's training file reduced to the same seeded stratified 20 % as our idx
  reader's train_ratio/split_seed (the same stream, re-implemented below and checked against
  tests/check_datasets), padded 2 px to 32 x 32 and converted to RGB, and the whole test file;
- the training transform: timm's create_transform(32, is_training=True, scale=(0.5, 1),
  interpolation='bicubic', no colour jitter, no RandAugment, no erasing). NOTE: the official
  build_transform would replace the crop by RandomCrop(32, padding=4) at 32 px and pass no scale;
  the protocol uses RandomResizedCrop(scale 0.5-1) on both sides instead;
- evaluation: ToTensor + Normalize of the whole 32 px image (what build_transform does at 32 px);
- a DistributedSampler over a one-process gloo group (so that validate's reduce_tensor runs
  unchanged), shuffling with seed = SEED (the official code uses the sampler's default seed 0,
  so its data order would not change with SEED; here the order is part of the seed's noise, as
  in our trainer). torch, numpy and Python's `random` (timm's crop) are seeded with SEED.

Writes OUT/metrics.jsonl ("epoch" and "eval" records as our trainer writes them: mean training
loss, top-1, top-5, loss) and OUT/summary.json.

    /usr/bin/python3 bench/seeds_official.py --simmim-src /tmp/SimMIM --out DIR --seed 0 \
        [--pretrained CKPT.safetensors] [--epochs 15] [--threads 2] [--train-ratio 0.2]
        [--embed-dim 192 --depth 6 --num-heads 3 --warmup-epochs 2]
"""
import argparse
import gzip
import json
import logging
import os
import random
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "tools", "golden_train")
sys.path.insert(0, GOLDEN)
import gen_golden_train as ggt  # noqa: E402  (load_official: stand-ins first, CPU shims)
import st  # noqa: E402

LOG = logging.getLogger("seeds_official")

# ------------------------------------------------------------------------------------------
# The idx reader's stratified subset (datasets/common/dscommon.c sm__ds_split with the keyed
# stream of core/base/rng.c: SplitMix64 hashing into xoshiro256**).

_M = (1 << 64) - 1
_G = 0x9e3779b97f4a7c15


def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & _M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & _M
    return z ^ (z >> 31)


class KeyedRng:
    """sm_rng_init(seed, a, b, c) and sm_rng_below."""

    def __init__(self, seed, a, b, c):
        h = _mix64((seed + _G) & _M)
        for i, k in enumerate((a, b, c)):
            h = _mix64(h ^ ((k + (i + 2) * _G) & _M))
        self.s = []
        for _ in range(4):
            h = (h + _G) & _M
            self.s.append(_mix64(h))

    def u64(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & _M  # noqa: E731
        out = (rotl((s[1] * 5) & _M, 7) * 9) & _M
        t = (s[1] << 17) & _M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return out

    def below(self, n):
        if n <= 1:
            return 0
        limit = _M - _M % n
        while True:
            x = self.u64()
            if x < limit:
                return x % n


def stratified_subset(labels, ratio, seed):
    """File positions kept by train_ratio/split_seed, in file order."""
    keep = []
    for k in sorted(set(int(v) for v in labels)):
        idx = [i for i, v in enumerate(labels) if v == k]
        r = KeyedRng(seed, k, 0, 0x73706C6974)
        for i in range(len(idx) - 1, 0, -1):  # Fisher-Yates, as sm__ds_split
            j = r.below(i + 1)
            idx[i], idx[j] = idx[j], idx[i]
        n = len(idx)
        m = max(1, int(round(ratio * n)))  # nearbyint: ties to even, as Python's round
        if n >= 2:
            m = min(m, n - 1)
        keep += idx[:m]
    return sorted(keep)


def read_idx(data_path, prefix):
    """(N, 28, 28) uint8 images and (N,) labels of <prefix>-{images,labels}-*-ubyte[.gz]."""
    def load(kind, magic):
        for name in (f"{prefix}-{kind}.gz", f"{prefix}-{kind}"):
            p = os.path.join(data_path, name)
            if os.path.exists(p):
                with gzip.open(p) if name.endswith(".gz") else open(p, "rb") as f:
                    b = f.read()
                assert int.from_bytes(b[:4], "big") == magic, p
                return b
        raise FileNotFoundError(os.path.join(data_path, f"{prefix}-{kind}"))
    img = load("images-idx3-ubyte", 0x803)
    lab = load("labels-idx1-ubyte", 0x801)
    n, rows, cols = (int.from_bytes(img[4 * i:4 * i + 4], "big") for i in (1, 2, 3))
    x = np.frombuffer(img, np.uint8, offset=16).reshape(n, rows, cols)
    y = np.frombuffer(lab, np.uint8, offset=8).astype(np.int64)
    return x, y


class PaddedGray(torch.utils.data.Dataset):
    """Gray images zero-padded by `pad` on each side, served as RGB PIL images."""

    def __init__(self, images, labels, pad, transform):
        self.x = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
        self.y = labels
        self.transform = transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        from PIL import Image
        img = Image.fromarray(self.x[i], mode="L").convert("RGB")
        return self.transform(img), int(self.y[i])


# ------------------------------------------------------------------------------------------


def protocol_config(args):
    """config.py defaults with configs/protocol/finetune.yaml's values (before main's scaling)."""
    c = ggt.OFF.config._C.clone()
    c.defrost()
    c.MODEL.TYPE = "vit"
    c.MODEL.NAME = "protocol_finetune"
    c.MODEL.NUM_CLASSES = 10
    c.MODEL.DROP_RATE = 0.0
    c.MODEL.DROP_PATH_RATE = 0.1
    c.MODEL.LABEL_SMOOTHING = 0.1
    c.MODEL.VIT.update(dict(PATCH_SIZE=4, IN_CHANS=3, EMBED_DIM=args.embed_dim, DEPTH=args.depth,
                            NUM_HEADS=args.num_heads,
                            MLP_RATIO=4, QKV_BIAS=True, INIT_VALUES=0.1, USE_APE=False,
                            USE_RPB=True, USE_SHARED_RPB=False, USE_MEAN_POOLING=True))
    c.DATA.IMG_SIZE = 32
    c.DATA.BATCH_SIZE = 128
    c.DATA.NUM_WORKERS = 0
    c.DATA.INTERPOLATION = "bicubic"
    c.AUG.COLOR_JITTER = 0.0
    c.AUG.AUTO_AUGMENT = "none"
    c.AUG.REPROB = 0.0
    c.AUG.MIXUP = 0.0
    c.AUG.CUTMIX = 0.0
    c.AUG.CUTMIX_MINMAX = None
    c.TRAIN.EPOCHS = args.epochs
    c.TRAIN.WARMUP_EPOCHS = args.warmup_epochs
    c.TRAIN.BASE_LR = 5e-3
    c.TRAIN.WARMUP_LR = 1e-6
    c.TRAIN.MIN_LR = 1e-6
    c.TRAIN.WEIGHT_DECAY = 0.05
    c.TRAIN.LAYER_DECAY = 0.75
    c.TRAIN.CLIP_GRAD = 5.0
    c.TRAIN.AUTO_RESUME = False
    c.AMP_OPT_LEVEL = "O0"
    c.SEED = args.seed
    c.PRINT_FREQ = 10 ** 9
    c.OUTPUT = args.out
    if args.pretrained:
        c.PRETRAINED = os.path.join(args.out, "pretrained.pth")
    c.freeze()
    return c


def write_pretrained(src, dst):
    """Our SimMIM checkpoint (safetensors, official names) as the official {'model': ...}."""
    tensors, _ = st.read(src)
    model = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()
             if k.startswith("encoder.") or k.startswith("decoder.")}
    if not any(k.startswith("encoder.") for k in model):
        raise SystemExit(f"{src}: no encoder.* tensors (not a SimMIM checkpoint?)")
    torch.save({"model": model}, dst)


class LossMean:
    """The criterion's outputs of one epoch (a forward hook: observes only)."""

    def __init__(self, criterion):
        self.values = []
        criterion.register_forward_hook(lambda m, i, out: self.values.append(out.item()))

    def take(self):
        v, self.values = self.values, []
        return sum(v) / len(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--simmim-src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrained", help="our SimMIM checkpoint (.safetensors); none: random init")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-path", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--train-ratio", type=float, default=0.2)
    ap.add_argument("--split-seed", type=int, default=0)
    # a reduced protocol (bench/seeds --reduced): a smaller ViT, a shorter warmup
    ap.add_argument("--embed-dim", type=int, default=192)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--num-heads", type=int, default=3)
    ap.add_argument("--warmup-epochs", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.FileHandler(os.path.join(args.out, "log.txt"), "w")])
    torch.set_num_threads(args.threads)
    ggt.load_official(args.simmim_src)
    off = ggt.OFF
    off.main_finetune.logger = LOG
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{os.path.abspath(args.out)}/.gloo",
                            rank=0, world_size=1)
    if args.pretrained:
        write_pretrained(args.pretrained, os.path.join(args.out, "pretrained.pth"))
    config = ggt.scale_lrs_like_main(protocol_config(args))

    # main_finetune.py __main__: the seeds (Python's random too: timm's crop draws from it)
    torch.manual_seed(config.SEED)
    np.random.seed(config.SEED)
    random.seed(config.SEED)

    # the data, as build_loader_finetune would hand it over
    from timm.data import create_transform
    from timm.data.transforms import Compose, Normalize, ToTensor
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    train_tf = create_transform(input_size=32, is_training=True, color_jitter=None,
                                auto_augment=None, re_prob=0.0, interpolation="bicubic",
                                scale=(0.5, 1.0), mean=mean, std=std)
    eval_tf = Compose([ToTensor(), Normalize(mean, std)])
    x, y = read_idx(args.data_path, "train")
    keep = stratified_subset(y.tolist(), args.train_ratio, args.split_seed)
    xt, yt = read_idx(args.data_path, "t10k")
    ds_train = PaddedGray(x[keep], y[keep], 2, train_tf)
    ds_val = PaddedGray(xt, yt, 2, eval_tf)
    sampler = torch.utils.data.DistributedSampler(ds_train, num_replicas=1, rank=0, shuffle=True,
                                                  seed=config.SEED)
    dl_train = torch.utils.data.DataLoader(ds_train, sampler=sampler, batch_size=128,
                                           num_workers=0, drop_last=True)
    dl_val = torch.utils.data.DataLoader(ds_val, batch_size=128, shuffle=False, num_workers=0,
                                         drop_last=False)

    # main(): model, optimizer, scheduler, criterion, pretrained weights, the epoch loop
    model = off.models.build_model(config, is_pretrain=False)
    optimizer = off.optimizer.build_optimizer(config, model, LOG, is_pretrain=False)
    scheduler = off.lr_scheduler.build_scheduler(config, optimizer, len(dl_train))
    criterion = ggt.criterion_for(config)
    if config.PRETRAINED:
        off.utils.load_pretrained(config, model, LOG)
    losses = LossMean(criterion)
    metrics = open(os.path.join(args.out, "metrics.jsonl"), "w")
    t0 = time.time()
    best = (None, None)
    for epoch in range(config.TRAIN.START_EPOCH, config.TRAIN.EPOCHS):
        sampler.set_epoch(epoch)
        off.main_finetune.train_one_epoch(config, model, criterion, dl_train, optimizer, epoch,
                                          None, scheduler)
        loss = losses.take()
        metrics.write(json.dumps(dict(event="epoch", epoch=epoch, loss=loss,
                                      seconds=time.time() - t0,
                                      steps=(epoch + 1) * len(dl_train))) + "\n")
        acc1, acc5, vloss = off.main_finetune.validate(config, dl_val, model)
        losses.values = []  # validate uses its own criterion; nothing of it is counted
        acc1, acc5 = float(acc1), float(acc5)
        metrics.write(json.dumps(dict(event="eval", epoch=epoch, images=len(ds_val), top1=acc1,
                                      top5=acc5, loss=float(vloss))) + "\n")
        metrics.flush()
        if best[0] is None or acc1 > best[0]:
            best = (acc1, epoch)
        print(f"official seed {args.seed} epoch {epoch + 1}/{config.TRAIN.EPOCHS}: loss {loss:.4f}"
              f" top-1 {acc1:.2f} ({time.time() - t0:.0f} s)", flush=True)
    metrics.close()
    summary = dict(task="finetune", status="completed", side="official", seed=args.seed,
                   pretrained=args.pretrained, epochs=config.TRAIN.EPOCHS, eval_top1=acc1,
                   eval_top5=acc5, best_eval_top1=best[0], best_eval_epoch=best[1],
                   seconds=time.time() - t0, train_images=len(ds_train),
                   official_commit=off.commit, torch_version=torch.__version__)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
