#!/usr/bin/env python3
"""Training golden files: step-by-step references of the official microsoft/SimMIM training
procedure (parameter groups, layer-wise lr decay, weight-decay exclusions, per-step cosine
schedule with warmup, gradient clipping, AdamW, gradient accumulation, fine-tuning remaps,
label smoothing) on tiny models, plus one reference with RingMo-Framework's optimizer semantics.

The official code is imported from --simmim-src (a checkout of github.com/microsoft/SimMIM; it is
not part of this repository). timm, yacs and termcolor are replaced by the stand-ins in stubs/.
What runs unchanged from the official code: config.py defaults, models/*, build_optimizer,
build_scheduler, utils.load_pretrained, and the body of train_one_epoch of main_simmim.py /
main_finetune.py. Instrumentation only observes (forward hooks and wrappers that call through).

    python3 tools/golden_train/gen_golden_train.py --simmim-src /tmp/SimMIM --out tests/golden_train

See tools/golden_train/README.md for the file layout and what a replay must do.
"""
import argparse
import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ringmo_ref  # noqa: E402
import st  # noqa: E402

FORMAT = "simmim-golden-train-1"
OFFICIAL_REPO = "https://github.com/microsoft/SimMIM"
OFFICIAL_FILES = ["config.py", "main_simmim.py", "main_finetune.py", "optimizer.py",
                  "lr_scheduler.py", "utils.py", "models/simmim.py", "models/build.py",
                  "models/vision_transformer.py", "models/swin_transformer.py"]
RINGMO_REPO = "https://github.com/comeony/RingMo (mirror of RingMo-Framework), HEAD 9078d16"

OFF = types.SimpleNamespace()  # the official modules, filled by load_official()
LOG = logging.getLogger("golden_train")


# ----------------------------------------------------------------------------------------------
# Loading the official code on a CPU-only machine


def load_official(src):
    """Import the official modules with the stand-ins first on the path."""
    sys.path.insert(0, os.path.join(HERE, "stubs"))
    sys.path.insert(0, src)
    # The official data package needs torchvision; the generator feeds fixed batches instead.
    data = types.ModuleType("data")

    def no_loader(*args, **kwargs):
        raise RuntimeError("golden_train feeds fixed batches; the official loader is not used")

    data.build_loader = no_loader
    sys.modules["data"] = data
    # CPU only: .cuda() is the identity; synchronize/memory queries do nothing.
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.max_memory_allocated = lambda *a, **k: 0
    torch.cuda.empty_cache = lambda *a, **k: None
    import config
    import lr_scheduler
    import main_finetune
    import main_simmim
    import models
    import models.simmim
    import optimizer
    import utils
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
    main_simmim.logger = LOG  # the official scripts set this global in __main__
    main_finetune.logger = LOG
    OFF.config, OFF.models, OFF.simmim = config, models, models.simmim
    OFF.optimizer, OFF.lr_scheduler, OFF.utils = optimizer, lr_scheduler, utils
    OFF.main_simmim, OFF.main_finetune = main_simmim, main_finetune
    OFF.LabelSmoothingCrossEntropy = LabelSmoothingCrossEntropy
    OFF.SoftTargetCrossEntropy = SoftTargetCrossEntropy
    OFF.sha256 = {}
    for rel in OFFICIAL_FILES:
        with open(os.path.join(src, rel), "rb") as f:
            OFF.sha256[rel] = hashlib.sha256(f.read()).hexdigest()
    try:
        OFF.commit = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True,
                                    text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        OFF.commit = None


# ----------------------------------------------------------------------------------------------
# Cases

VIT_MODEL = dict(PATCH_SIZE=4, IN_CHANS=3, EMBED_DIM=32, DEPTH=2, NUM_HEADS=2, MLP_RATIO=4,
                 QKV_BIAS=True, INIT_VALUES=0.1, USE_APE=False)
SWIN_MODEL = dict(PATCH_SIZE=2, IN_CHANS=3, EMBED_DIM=16, DEPTHS=[2, 2], NUM_HEADS=[2, 4],
                  WINDOW_SIZE=4, MLP_RATIO=4.0, QKV_BIAS=True, QK_SCALE=None, APE=False,
                  PATCH_NORM=True)

# Learning rates as written in the config, before the official x batch*world/512 scaling
# (batch 2: factor 1/256, so BASE_LR 0.256 becomes 1e-3).
PRETRAIN_LR = dict(BASE_LR=0.256, WARMUP_LR=0.00256, MIN_LR=0.0256)
FINETUNE_LR = dict(BASE_LR=0.512, WARMUP_LR=0.00256, MIN_LR=0.0256)

CASES = {
    "vit_pretrain": dict(
        task="pretrain", arch="vit", seed=10, batches=5, epochs=6, warmup_epochs=2,
        img=32, batch=2, mask_patch=8, mask_ratio=0.6, clip=2.0, accumulation=0,
        vit=dict(VIT_MODEL, USE_RPB=False, USE_SHARED_RPB=True, USE_MEAN_POOLING=False),
        lr=PRETRAIN_LR,
        adam_state=["encoder.patch_embed.proj.weight", "encoder.mask_token",
                    "encoder.rel_pos_bias.relative_position_bias_table",
                    "encoder.blocks.1.attn.q_bias", "decoder.0.weight"],
        about="SimMIM pretraining of a tiny ViT (img 32, patch 4, dim 32, depth 2, heads 2, "
              "shared rel-pos bias, layer scale 0.1, no abs pos), official optimizer groups, "
              "cosine schedule with warmup, clipping"),
    "swin_pretrain": dict(
        task="pretrain", arch="swin", seed=25, batches=5, epochs=6, warmup_epochs=2,
        img=32, batch=2, mask_patch=8, mask_ratio=0.6, clip=0.3, accumulation=0,
        swin=dict(SWIN_MODEL),
        lr=PRETRAIN_LR,
        adam_state=["encoder.patch_embed.proj.weight", "encoder.mask_token",
                    "encoder.layers.0.blocks.1.attn.relative_position_bias_table",
                    "encoder.layers.0.downsample.reduction.weight", "decoder.0.bias"],
        about="SimMIM pretraining of a tiny Swin (img 32, patch 2, window 4, depths [2,2], "
              "heads [2,4], dim 16), official optimizer groups, cosine schedule with warmup, "
              "clipping"),
    "vit_finetune": dict(
        task="finetune", arch="vit", seed=30, batches=5, epochs=6, warmup_epochs=2,
        img=32, batch=2, num_classes=5, clip=3.0, accumulation=0, layer_decay=0.75,
        label_smoothing=0.1, pretrained_from="vit_pretrain",
        vit=dict(VIT_MODEL, USE_RPB=True, USE_SHARED_RPB=False, USE_MEAN_POOLING=True),
        lr=FINETUNE_LR,
        adam_state=["patch_embed.proj.weight", "cls_token",
                    "blocks.0.attn.relative_position_bias_table", "fc_norm.weight",
                    "head.weight"],
        about="fine-tuning of the tiny ViT from vit_pretrain's final weights through the "
              "official load_pretrained (shared rel-pos table copied into every block), mean "
              "pooling + fc_norm, 5 classes, layer decay 0.75, label smoothing 0.1, mixup off"),
    "swin_finetune": dict(
        task="finetune", arch="swin", seed=40, batches=5, epochs=6, warmup_epochs=2,
        img=40, batch=2, num_classes=5, clip=2.2, accumulation=0, layer_decay=0.75,
        label_smoothing=0.1, pretrained_from="swin_pretrain",
        swin=dict(SWIN_MODEL, WINDOW_SIZE=5),
        lr=FINETUNE_LR,
        adam_state=["patch_embed.proj.weight", "layers.0.blocks.0.attn.relative_position_bias_table",
                    "layers.0.downsample.norm.weight", "norm.bias", "head.weight"],
        about="fine-tuning of the tiny Swin from swin_pretrain's final weights at img 40 with "
              "window 5 (pretrained with window 4): every rel-pos table goes through the official "
              "geometric bicubic resize 7x7 -> 9x9; 5 classes, layer decay 0.75, label "
              "smoothing 0.1, mixup off"),
    "vit_pretrain_accum2": dict(
        task="pretrain", arch="vit", seed=50, batches=6, epochs=5, warmup_epochs=2,
        img=32, batch=2, mask_patch=8, mask_ratio=0.6, clip=1.0, accumulation=2,
        vit=dict(VIT_MODEL, USE_RPB=False, USE_SHARED_RPB=True, USE_MEAN_POOLING=False),
        lr=PRETRAIN_LR,
        adam_state=["encoder.patch_embed.proj.weight", "encoder.mask_token",
                    "encoder.blocks.1.attn.q_bias", "decoder.0.weight"],
        about="the vit_pretrain setup with TRAIN.ACCUMULATION_STEPS = 2 (6 micro-batches per "
              "epoch, 5 epochs: 30 micro-batches, 15 optimizer steps), clipping on"),
    "ringmo_vit_pretrain": dict(
        task="pretrain", arch="vit", seed=10, batches=5, epochs=6, warmup_epochs=2,
        img=32, batch=2, mask_patch=8, mask_ratio=0.6, clip=2.0, accumulation=0,
        vit=dict(VIT_MODEL, USE_RPB=False, USE_SHARED_RPB=True, USE_MEAN_POOLING=False),
        lr=PRETRAIN_LR, ringmo=True,
        adam_state=["encoder.patch_embed.proj.weight", "encoder.mask_token",
                    "encoder.rel_pos_bias.relative_position_bias_table",
                    "encoder.blocks.1.attn.q_bias", "decoder.0.weight"],
        about="the vit_pretrain model, data and initial weights trained with RingMo-Framework's "
              "step semantics (re-implemented from its source, not run): AdamWeightDecay "
              "without bias correction, mask_token excluded from decay, lr table indexed by the "
              "global step without lag, clip only when the coefficient is below 1"),
}


def official_config(case):
    """The official config (config.py defaults) with the case's values, as main_*.py would have
    it after parsing (before its lr scaling)."""
    c = OFF.config._C.clone()
    c.defrost()
    c.MODEL.TYPE = case["arch"]
    c.MODEL.NAME = "golden_train"
    c.DATA.IMG_SIZE = case["img"]
    c.DATA.BATCH_SIZE = case["batch"]
    c.DATA.NUM_WORKERS = 0
    if case["task"] == "pretrain":
        c.DATA.MASK_PATCH_SIZE = case["mask_patch"]
        c.DATA.MASK_RATIO = case["mask_ratio"]
    else:
        c.MODEL.NUM_CLASSES = case["num_classes"]
        c.MODEL.LABEL_SMOOTHING = case["label_smoothing"]
        c.TRAIN.LAYER_DECAY = case["layer_decay"]
        c.AUG.MIXUP = 0.0
        c.AUG.CUTMIX = 0.0
        c.AUG.AUTO_AUGMENT = "none"
        c.AUG.REPROB = 0.0
    c.MODEL.DROP_RATE = 0.0
    c.MODEL.DROP_PATH_RATE = 0.0
    for k, v in case.get("vit", {}).items():
        c.MODEL.VIT[k] = v
    for k, v in case.get("swin", {}).items():
        c.MODEL.SWIN[k] = v
    c.TRAIN.EPOCHS = case["epochs"]
    c.TRAIN.WARMUP_EPOCHS = case["warmup_epochs"]
    c.TRAIN.WEIGHT_DECAY = 0.05
    c.TRAIN.CLIP_GRAD = case["clip"]
    c.TRAIN.ACCUMULATION_STEPS = case["accumulation"]
    c.TRAIN.AUTO_RESUME = False
    for k, v in case["lr"].items():
        c.TRAIN[k] = v
    c.AMP_OPT_LEVEL = "O0"
    c.SEED = case["seed"]
    c.freeze()
    return c


def scale_lrs_like_main(c, world_size=1):
    """The lr scaling of main_simmim.py / main_finetune.py's __main__ block, same operation order
    (BASE_LR * BATCH_SIZE * world / 512.0, then * ACCUMULATION_STEPS when it is > 1)."""
    c = c.clone()
    c.defrost()
    lr = c.TRAIN.BASE_LR * c.DATA.BATCH_SIZE * world_size / 512.0
    warm = c.TRAIN.WARMUP_LR * c.DATA.BATCH_SIZE * world_size / 512.0
    mn = c.TRAIN.MIN_LR * c.DATA.BATCH_SIZE * world_size / 512.0
    if c.TRAIN.ACCUMULATION_STEPS > 1:
        lr = lr * c.TRAIN.ACCUMULATION_STEPS
        warm = warm * c.TRAIN.ACCUMULATION_STEPS
        mn = mn * c.TRAIN.ACCUMULATION_STEPS
    c.TRAIN.BASE_LR, c.TRAIN.WARMUP_LR, c.TRAIN.MIN_LR = lr, warm, mn
    c.freeze()
    return c


def encoder_stride(case):
    if case["arch"] == "vit":
        return case["vit"]["PATCH_SIZE"]
    return case["swin"]["PATCH_SIZE"] * 2 ** (len(case["swin"]["DEPTHS"]) - 1)


def build_model(case, c):
    """Pretraining: the official build_simmim hard-codes encoder_stride 32 (Swin) / 16 (ViT),
    which does not fit a tiny model; its encoder (built from the config exactly as build_simmim
    does) is wrapped in SimMIM(encoder, stride) with the stride the architecture needs."""
    if case["task"] == "pretrain":
        tmp = OFF.simmim.build_simmim(c)
        return OFF.simmim.SimMIM(encoder=tmp.encoder, encoder_stride=encoder_stride(case))
    return OFF.models.build_model(c, is_pretrain=False)


# ----------------------------------------------------------------------------------------------
# Data: fixed batches, no augmentation


def make_data(case):
    rng = np.random.RandomState(1000 + case["seed"])
    n = case["batches"] * case["batch"]
    h = w = case["img"]
    low = torch.from_numpy(rng.standard_normal((n, 3, 4, 4)))
    smooth = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear",
                                             align_corners=False)
    img = smooth.numpy() + 0.3 * rng.standard_normal((n, 3, h, w))
    out = {}
    if case["task"] == "pretrain":
        p = case["vit"]["PATCH_SIZE"] if case["arch"] == "vit" else case["swin"]["PATCH_SIZE"]
        cells = case["img"] // case["mask_patch"]
        scale = case["mask_patch"] // p
        count = int(math.ceil(cells * cells * case["mask_ratio"]))
        masks = np.zeros((n, cells * scale, cells * scale), dtype=np.int64)
        for i in range(n):  # the official MaskGenerator's algorithm (data/data_simmim.py)
            m = np.zeros(cells * cells, dtype=np.int64)
            m[rng.permutation(cells * cells)[:count]] = 1
            masks[i] = m.reshape(cells, cells).repeat(scale, axis=0).repeat(scale, axis=1)
        out["masks"] = masks.reshape(case["batches"], case["batch"], *masks.shape[1:])
    else:
        labels = rng.randint(0, case["num_classes"], size=n).astype(np.int64)
        pattern = rng.standard_normal((case["num_classes"], 3, h, w))
        img = img + 0.5 * pattern[labels]
        out["labels"] = labels.reshape(case["batches"], case["batch"])
    out["images"] = img.astype(np.float32).reshape(case["batches"], case["batch"], 3, h, w)
    return out


def loader(case, data, dtype):
    """A list of batches in the order of the official DataLoader items."""
    batches = []
    for i in range(case["batches"]):
        x = torch.from_numpy(data["images"][i]).to(dtype)
        if case["task"] == "pretrain":
            batches.append((x, torch.from_numpy(data["masks"][i]), torch.zeros(case["batch"])))
        else:
            batches.append((x, torch.from_numpy(data["labels"][i])))
    return batches


# ----------------------------------------------------------------------------------------------
# Observing the official loop


class Recorder:
    """One row per micro-batch (= per iteration of train_one_epoch's loop)."""

    def __init__(self, optimizer, scheduler):
        self.opt = optimizer
        self.rows = []
        self.epoch = 0
        self.idx = -1
        orig_step = optimizer.step
        orig_update = scheduler.step_update

        def step(*a, **k):
            row = self.rows[-1]
            assert row["lr"] == self.lrs()
            row["optimizer_step"] = 1
            return orig_step(*a, **k)

        def step_update(num_updates, *a, **k):
            self.rows[-1]["sched_index"] = num_updates
            return orig_update(num_updates, *a, **k)

        optimizer.step = step
        scheduler.step_update = step_update

    def lrs(self):
        return [g["lr"] for g in self.opt.param_groups]

    def on_loss(self, loss):
        self.finish()
        self.idx += 1
        self.rows.append(dict(epoch=self.epoch, idx=self.idx, batch=self.idx,
                              loss=loss.detach().clone(), optimizer_step=0, sched_index=-1))

    def on_clip(self, norm, coef):
        row = self.rows[-1]
        row["grad_norm"] = norm.detach().clone()
        row["clip_coef"] = coef.detach().clone()
        row["lr"] = self.lrs()
        row["weight_decay"] = [g["weight_decay"] for g in self.opt.param_groups]

    def new_epoch(self, epoch):
        self.finish()
        self.epoch = epoch
        self.idx = -1

    def finish(self):
        if self.rows and "lr_after" not in self.rows[-1]:
            self.rows[-1]["lr_after"] = self.lrs()


CURRENT = {"rec": None}
_ORIG_CLIP = torch.nn.utils.clip_grad_norm_


def _clip_observed(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Calls torch's clip_grad_norm_ and records its result and the coefficient it applied
    (torch 1.13: clamp(max_norm / (total_norm + 1e-6), max=1), multiplied into every grad)."""
    parameters = list(parameters)
    norm = _ORIG_CLIP(parameters, max_norm, norm_type, error_if_nonfinite)
    coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    if CURRENT["rec"] is not None:
        CURRENT["rec"].on_clip(norm, coef)
    return norm


torch.nn.utils.clip_grad_norm_ = _clip_observed


def criterion_for(c):
    """main_finetune.py main(): the criterion choice, same conditions in the same order."""
    if c.AUG.MIXUP > 0.0:
        return OFF.SoftTargetCrossEntropy()
    if c.MODEL.LABEL_SMOOTHING > 0.0:
        return OFF.LabelSmoothingCrossEntropy(smoothing=c.MODEL.LABEL_SMOOTHING)
    return torch.nn.CrossEntropyLoss()


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def run_official(case, c_eff, model, data, dtype):
    """main(): build_optimizer, build_scheduler, then for every epoch the official
    train_one_epoch (validation and checkpointing, which do not change the training state, are
    left out). Returns (optimizer, recorder)."""
    pretrain = case["task"] == "pretrain"
    optimizer = OFF.optimizer.build_optimizer(c_eff, model, LOG, is_pretrain=pretrain)
    batches = loader(case, data, dtype)
    scheduler = OFF.lr_scheduler.build_scheduler(c_eff, optimizer, len(batches))
    rec = Recorder(optimizer, scheduler)
    CURRENT["rec"] = rec
    if pretrain:
        hook = model.register_forward_hook(lambda m, i, out: rec.on_loss(out))
        for epoch in range(c_eff.TRAIN.START_EPOCH, c_eff.TRAIN.EPOCHS):
            rec.new_epoch(epoch)
            OFF.main_simmim.train_one_epoch(c_eff, model, batches, optimizer, epoch, scheduler)
    else:
        criterion = criterion_for(c_eff)
        hook = criterion.register_forward_hook(lambda m, i, out: rec.on_loss(out))
        for epoch in range(c_eff.TRAIN.START_EPOCH, c_eff.TRAIN.EPOCHS):
            rec.new_epoch(epoch)
            OFF.main_finetune.train_one_epoch(c_eff, model, criterion, batches, optimizer, epoch,
                                              None, scheduler)
    rec.finish()
    hook.remove()
    CURRENT["rec"] = None
    return optimizer, scheduler, rec


def group_table(optimizer, model):
    names = {id(p): n for n, p in model.named_parameters()}
    out = []
    for i, g in enumerate(optimizer.param_groups):
        # pretraining groups have no name: [decay, no_decay] (optimizer.get_pretrain_param_groups)
        gname = g["group_name"] if "group_name" in g else ("decay", "no_decay")[i]
        out.append({"index": i, "group_name": gname,
                    "lr_scale": g.get("lr_scale", 1.0), "weight_decay": g["weight_decay"],
                    "initial_lr": g["initial_lr"], "params": [names[id(p)] for p in g["params"]]})
    return out


# ----------------------------------------------------------------------------------------------
# RingMo flavour (ringmo_ref.py): same model, data and initial weights as vit_pretrain


def run_ringmo(case, model, data, dtype):
    batches = loader(case, data, dtype)
    names = [n for n, _ in model.named_parameters()]
    params = dict(model.named_parameters())
    skip = {"encoder.pos_embed", "encoder.cls_token", "encoder.mask_token"}  # R6 on our names
    groups = ringmo_ref.pretrain_groups(model.named_parameters(), 0.05, skip, set())
    base, mn, warm = ringmo_ref.scale_lrs(case["lr"]["BASE_LR"], case["lr"]["MIN_LR"],
                                          case["lr"]["WARMUP_LR"], 1, case["batch"])
    table, t_initial, warmup_t = ringmo_ref.warmup_cosine_decay_simmim(
        base, mn, warm, case["epochs"], case["warmup_epochs"], case["batches"])
    opt = ringmo_ref.AdamWeightDecay(
        [{"params": [params[n] for n in g["params"]], "weight_decay": g["weight_decay"]}
         for g in groups], beta1=0.9, beta2=0.999, eps=1e-8, dtype=dtype)
    rows = []
    model.train()
    step = 0
    for epoch in range(case["epochs"]):
        for idx, (img, mask, _) in enumerate(batches):
            model.zero_grad(set_to_none=True)
            loss = model(img, mask)
            # R5: grads of (loss * 1024) divided by 1024: exact (power of two), so plain backward
            loss.backward()
            grads = [params[n].grad for n in names]
            clipped, norm, coef, applied = ringmo_ref.clip_by_global_norm(grads, case["clip"],
                                                                          dtype)
            lr = table[step].to(dtype)  # M2: update g uses lr(g) (a float32 table value)
            opt.step({params[n]: g for n, g in zip(names, clipped)}, [lr, lr])
            rows.append(dict(epoch=epoch, idx=idx, batch=idx, loss=loss.detach().clone(),
                             grad_norm=norm, clip_coef=torch.clamp(coef, max=1.0),
                             lr=[float(lr)] * 2, weight_decay=[g["weight_decay"] for g in groups],
                             optimizer_step=1, sched_index=step,
                             lr_after=[float(table[min(step + 1, t_initial - 1)])] * 2))
            step += 1
    group_info = [{"index": i, "group_name": g["group_name"], "lr_scale": 1.0,
                   "weight_decay": g["weight_decay"], "initial_lr": float(table[0]),
                   "params": g["params"]} for i, g in enumerate(groups)]
    sched = {"name": "RingMo WarmUpCosineDecayV2 (lr_type warmup_cosine_decay_simmim)",
             "t_initial": t_initial, "warmup_t": warmup_t, "base_lr": base, "min_lr": mn,
             "warmup_lr": warm, "table_f32": [float(v) for v in table]}
    return opt, rows, group_info, sched


# ----------------------------------------------------------------------------------------------
# Our config (RingMo-Framework schema, docs/config.md)


def ours_config(case, c):
    arch, pre = case["arch"], case["task"] == "pretrain"
    lines = [f"# golden_train case {case['name']}: {case['about']}",
             "# The replay feeds the batches stored in the golden file; the dataset section is",
             "# only there so that the config is complete. Same schedule: per_epoch_size",
             "# micro-batches per epoch, epoch epochs.",
             f"seed: {case['seed']}", f"task: {case['task']}"]
    if not pre:
        lines.append("loss_type: soft_ce   # label smoothing, mixup/cutmix off")
    lines += ["model:", f"  backbone: {arch}"]
    if arch == "vit":
        v = case["vit"]
        lines += [f"  patch_size: {v['PATCH_SIZE']}", f"  in_chans: {v['IN_CHANS']}",
                  f"  embed_dim: {v['EMBED_DIM']}", f"  depth: {v['DEPTH']}",
                  f"  num_heads: {v['NUM_HEADS']}", f"  mlp_ratio: {float(v['MLP_RATIO'])}",
                  f"  qkv_bias: {str(v['QKV_BIAS']).lower()}", "  qk_scale: null",
                  "  drop_rate: 0.0", "  attn_drop_rate: 0.0", "  drop_path_rate: 0.0",
                  f"  init_values: {v['INIT_VALUES']}",
                  f"  use_abs_pos_emb: {str(v['USE_APE']).lower()}",
                  f"  use_rel_pos_bias: {str(v['USE_RPB']).lower()}",
                  f"  use_shared_rel_pos_bias: {str(v['USE_SHARED_RPB']).lower()}",
                  f"  use_mean_pooling: {str(v['USE_MEAN_POOLING']).lower()}",
                  "  layer_norm_eps: 1e-6"]
        if not pre:
            lines.append("  init_scale: 0.001")
    else:
        s = case["swin"]
        lines += [f"  patch_size: {s['PATCH_SIZE']}", f"  in_chans: {s['IN_CHANS']}",
                  f"  embed_dim: {s['EMBED_DIM']}", f"  depth: {s['DEPTHS']}",
                  f"  num_heads: {s['NUM_HEADS']}", f"  window_size: {s['WINDOW_SIZE']}",
                  f"  mlp_ratio: {float(s['MLP_RATIO'])}",
                  f"  qkv_bias: {str(s['QKV_BIAS']).lower()}", "  qk_scale: null",
                  "  drop_rate: 0.0", "  attn_drop_rate: 0.0", "  drop_path_rate: 0.0",
                  f"  ape: {str(s['APE']).lower()}",
                  f"  patch_norm: {str(s['PATCH_NORM']).lower()}", "  layer_norm_eps: 1e-5"]
    if pre:
        lines += [f"  mask_patch_size: {case['mask_patch']}",
                  f"  mask_ratio: {case['mask_ratio']}"]
    lines += ["train_config:", f"  epoch: {case['epochs']}",
              f"  batch_size: {case['batch']}", f"  image_size: {case['img']}",
              f"  per_epoch_size: {case['batches']}"]
    if case["accumulation"] > 1:
        lines.append(f"  accumulation_steps: {case['accumulation']}   # official "
                     "TRAIN.ACCUMULATION_STEPS; batch_size is the micro-batch")
    if not pre:
        lines += [f"  num_classes: {case['num_classes']}",
                  f"  resume_ckpt: null   # the replay loads init.* ({case['pretrained_from']}"
                  " final weights after the official load_pretrained remap)"]
    if pre:
        lines += ["pretrain_dataset:", "  reader: aircas", "  data_path: golden-train-images",
                  "  num_workers: 0", "  shuffle: false", "  crop_min: 1.0", "  prop: 0.0"]
    else:
        lines += ["finetune_dataset:", "  reader: imagenet", "  train_path: golden-train-images",
                  "  num_workers: 0", "  shuffle: false", "  crop_min: 1.0", "  hflip: 0.0",
                  "  auto_augment: null", "  mixup: 0.0", "  cutmix: 0.0", "  re_prop: 0.0",
                  f"  label_smoothing: {case['label_smoothing']}"]
    ringmo = case.get("ringmo", False)
    lines += ["optimizer:", "  optim_name: adamw", "  beta1: 0.9", "  beta2: 0.999",
              "  eps: 1e-8", f"  bias_correction: {'false' if ringmo else 'true'}",
              "  weight_decay: 0.05"]
    if not pre:
        lines.append(f"  layer_decay: {case['layer_decay']}")
    lr = case["lr"]
    lines += ["lr_schedule:", "  lr_type: warmup_cosine_decay_simmim",
              f"  base_lr: {lr['BASE_LR']}   # per 512 images: x batch_size/512"
              + (" x accumulation_steps" if case["accumulation"] > 1 else ""),
              f"  min_lr: {lr['MIN_LR']}", f"  warmup_lr: {lr['WARMUP_LR']}",
              f"  warmup_epochs: {case['warmup_epochs']}",
              "train_wrapper:", "  use_clip_grad: true", f"  clip_norm: {case['clip']}",
              "backend:", "  name: ref", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Writing


def to_np(t):
    t = t.detach().cpu()
    if t.dtype in (torch.int64, torch.int32, torch.bool):
        return t.to(torch.int64).numpy()
    return t.to(torch.float32).numpy()


def rows_to_tensors(rows, ngroups):
    n = len(rows)
    out = {
        "step.epoch": np.array([r["epoch"] for r in rows], dtype=np.int64),
        "step.idx": np.array([r["idx"] for r in rows], dtype=np.int64),
        "step.batch": np.array([r["batch"] for r in rows], dtype=np.int64),
        "step.loss": np.array([float(r["loss"]) for r in rows], dtype=np.float32),
        "step.grad_norm": np.array([float(r["grad_norm"]) for r in rows], dtype=np.float32),
        "step.clip_coef": np.array([float(r["clip_coef"]) for r in rows], dtype=np.float32),
        "step.optimizer_step": np.array([r["optimizer_step"] for r in rows], dtype=np.int64),
        "step.sched_index": np.array([r["sched_index"] for r in rows], dtype=np.int64),
        "step.lr": np.array([r["lr"] for r in rows], dtype=np.float64).reshape(n, ngroups),
        "step.lr_after": np.array([r["lr_after"] for r in rows], dtype=np.float64).reshape(n, ngroups),
        "step.weight_decay": np.array([r["weight_decay"] for r in rows],
                                      dtype=np.float64).reshape(n, ngroups),
    }
    return out


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = np.max(np.abs(b)) if b.size else 0.0
    return float(np.max(np.abs(a - b)) / d) if d > 0 else float(np.max(np.abs(a - b)))


def run_case(name, case, state, dtype, init_state=None):
    """One training run. init_state: weights to start from (the float64 shadow run uses the float32
    run's initial weights); None = official init (pretraining) or official load_pretrained from the
    pretraining case's final weights (fine-tuning)."""
    torch.set_default_dtype(dtype)
    try:
        c = official_config(case)
        c_eff = scale_lrs_like_main(c)
        torch.manual_seed(case["seed"])
        np.random.seed(case["seed"])
        model = build_model(case, c)
        remap = None
        if init_state is not None:
            model.load_state_dict(init_state)
        elif case["task"] == "finetune":
            remap = load_pretrained_official(case, c, model, state)
        init = {k: v.detach().clone() for k, v in model.state_dict().items()}
        data = state["data"][name]
        if case.get("ringmo"):
            opt, rows, groups, sched = run_ringmo(case, model, data, dtype)
            adam = {n: (opt.m[p], opt.v[p]) for n, p in model.named_parameters()}
            steps_done = len(rows)
        else:
            opt, scheduler, rec = run_official(case, c_eff, model, data, dtype)
            rows = rec.rows
            groups = group_table(opt, model)
            sched = {"name": "timm 0.4.12 CosineLRScheduler via official build_scheduler",
                     "t_initial": scheduler.t_initial, "warmup_t": scheduler.warmup_t,
                     "base_values": scheduler.base_values, "lr_min": scheduler.lr_min,
                     "warmup_lr_init": scheduler.warmup_lr_init, "t_mul": scheduler.t_mul,
                     "cycle_limit": scheduler.cycle_limit,
                     "warmup_prefix": scheduler.warmup_prefix,
                     "t_in_epochs": scheduler.t_in_epochs}
            pmap = dict(model.named_parameters())
            adam = {n: (opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"])
                    for n, p in pmap.items() if p in opt.state}
            steps_done = int(sum(r["optimizer_step"] for r in rows))
        final = {n: p.detach().clone() for n, p in model.named_parameters()}
        return dict(c=c, c_eff=c_eff, model=model, init=init, final=final, rows=rows,
                    groups=groups, sched=sched, adam=adam, steps=steps_done, remap=remap)
    finally:
        torch.set_default_dtype(torch.float32)


def load_pretrained_official(case, c, model, state):
    """Save the pretraining case's final model as an official checkpoint and run the official
    utils.load_pretrained on it (config.PRETRAINED = that file)."""
    src = state["runs"][case["pretrained_from"]]
    ckpt = dict(src["init"])
    ckpt.update(src["final"])  # buffers from init (unchanged by training), params trained
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ckpt_epoch_last.pth")
        torch.save({"model": {k: v.to(torch.float32) for k, v in ckpt.items()}}, path)
        c2 = c.clone()
        c2.defrost()
        c2.PRETRAINED = path
        c2.freeze()
        cap = LogCapture()
        LOG.addHandler(cap)
        try:
            OFF.utils.load_pretrained(c2, model, LOG)
        finally:
            LOG.removeHandler(cap)
    msg = [r.msg for r in cap.records if hasattr(r.msg, "missing_keys")]
    lines = [r.getMessage().replace(path, "<pretrain checkpoint>") for r in cap.records
             if not hasattr(r.msg, "missing_keys")]
    return {"missing_keys": list(msg[0].missing_keys) if msg else None,
            "unexpected_keys": list(msg[0].unexpected_keys) if msg else None,
            "log": lines}


def build_file(name, case, run, shadow):
    ngroups = len(run["groups"])
    tensors = {}
    params = [n for n, _ in run["model"].named_parameters()]
    buffers = [n for n, _ in run["model"].named_buffers()]
    for k, v in run["init"].items():
        tensors["init." + k] = to_np(v)
    for k, v in run["final"].items():
        tensors["final." + k] = to_np(v)
    for k in case["adam_state"]:
        m, v = run["adam"][k]
        tensors["adam.exp_avg." + k] = to_np(m)
        tensors["adam.exp_avg_sq." + k] = to_np(v)
    tensors["adam.steps"] = np.array(run["steps"], dtype=np.int64)
    data = STATE["data"][name]
    tensors["data.images"] = data["images"]
    if "masks" in data:
        tensors["data.masks"] = data["masks"]
    if "labels" in data:
        tensors["data.labels"] = data["labels"]
    tensors.update(rows_to_tensors(run["rows"], ngroups))
    tensors["step.loss_f64"] = np.array([float(r["loss"]) for r in shadow["rows"]],
                                        dtype=np.float64)
    # float32 vs the float64 shadow run (same code, same initial weights and data)
    dev = {
        "loss_max_rel": max(abs(float(a["loss"]) - float(b["loss"])) / abs(float(b["loss"]))
                            for a, b in zip(run["rows"], shadow["rows"])),
        "grad_norm_max_rel": max(abs(float(a["grad_norm"]) - float(b["grad_norm"])) /
                                 abs(float(b["grad_norm"]))
                                 for a, b in zip(run["rows"], shadow["rows"])),
        "final_weights_worst_tensor": max((rel_err(to_np(run["final"][n]),
                                                   shadow["final"][n].double().numpy()), n)
                                          for n in params),
        "final_weight_change_smallest_tensor": min(
            (rel_err(to_np(run["final"][n]), to_np(run["init"][n])), n) for n in params),
        "adam_moments_worst_tensor": max(
            (max(rel_err(to_np(run["adam"][n][0]), shadow["adam"][n][0].double().numpy()),
                 rel_err(to_np(run["adam"][n][1]), shadow["adam"][n][1].double().numpy())), n)
            for n in case["adam_state"]),
        "clip_decisions_equal": all(
            (float(a["clip_coef"]) < 1) == (float(b["clip_coef"]) < 1)
            for a, b in zip(run["rows"], shadow["rows"])),
    }
    c, c_eff = run["c"], run["c_eff"]
    meta = {
        "format": FORMAT,
        "case": name,
        "about": case["about"],
        "task": case["task"],
        "arch": case["arch"],
        "flavour": "ringmo" if case.get("ringmo") else "official",
        "official_config_given": c.dump(),
        "official_config_effective": c_eff.dump(),
        "ours_config": ours_config(dict(case, name=name), c),
        "differences": json.dumps(differences(case), indent=1),
        "param_groups": json.dumps(run["groups"]),
        "schedule": json.dumps(run["sched"]),
        "parameters": json.dumps(params),
        "buffers": json.dumps(buffers),
        "adam_state_of": json.dumps(case["adam_state"]),
        "replay": json.dumps(replay_steps(case), indent=1),
        "f32_vs_f64": json.dumps(dev),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "torch_threads": str(torch.get_num_threads()),
        "timm_semantics": "timm 0.4.12 (stand-ins in tools/golden_train/stubs)",
        "official_repo": OFFICIAL_REPO,
        "official_commit": OFF.commit or "d3e29bcac950b83edc34ca33fe4404f38309052c (given)",
        "official_sha256": json.dumps(OFF.sha256),
        "generator": "tools/golden_train/gen_golden_train.py",
    }
    if case.get("ringmo"):
        meta["ringmo_source"] = RINGMO_REPO
        meta["ringmo_how"] = ("formulas re-implemented in PyTorch float32 from the RingMo and "
                              "MindSpore sources (tools/golden_train/ringmo_ref.py cites file "
                              "and line); MindSpore was not run. The forward/backward is the "
                              "official SimMIM ViT's, not RingMo's MindSpore model.")
        meta["same_start_as"] = "vit_pretrain (identical init.*, data.*)"
    if case["task"] == "finetune":
        import scipy
        meta["scipy_version"] = scipy.__version__
        meta["pretrained_from"] = case["pretrained_from"] + ".safetensors (its final.* and "\
            "init.* buffers, saved as {'model': state_dict} and loaded with utils.load_pretrained)"
        meta["load_pretrained"] = json.dumps(run["remap"])
    return tensors, meta


def differences(case):
    d = []
    if case["task"] == "pretrain":
        d.append("Model: the official build_simmim hard-codes encoder_stride 32 (Swin) / 16 (ViT); "
                 "the generator wraps the encoder build_simmim built in SimMIM(encoder, "
                 f"{encoder_stride(case)}) (patch size x 2^(stages-1)), as our trainer does.")
    d.append("Data: fixed batches (data.*), the same batches in the same order every epoch; no "
             "augmentation, no shuffling; masks given. Our config's dataset section only makes "
             "the config complete.")
    d.append("Official lr scaling (main_*.py __main__): BASE_LR, WARMUP_LR, MIN_LR x "
             "BATCH_SIZE x world_size / 512 (world_size 1 here)" +
             (" x ACCUMULATION_STEPS" if case["accumulation"] > 1 else "") +
             ". Our schema: base_lr/min_lr/warmup_lr 'per 512 images', the same rule "
             "(lr_schedule values = the official TRAIN values before scaling).")
    d.append("Schedule timing (official): update k (0-based) uses lr(k-1) for k >= 1 and "
             "WARMUP_LR for k = 0 (build_scheduler sets WARMUP_LR; step_update(k) runs after "
             "update k). step.lr holds the value each update used; a trainer whose update g "
             "uses lr(g) is one step ahead from update 1 on.")
    if case["task"] == "finetune":
        d.append("Layer decay (official, timm 0.4.12): a group's schedule runs from the SHARED "
                 "WARMUP_LR to base*scale in warmup and decays to the SHARED MIN_LR: only the "
                 "peak is scaled. RingMo scales the whole schedule (warmup and min too). Our "
                 "schema has no key to choose; this file follows the official rule.")
        d.append("Loss: mixup 0 and label smoothing 0.1 -> timm LabelSmoothingCrossEntropy = "
                 "soft-target CE with targets 1-s+s/K / s/K (our loss_type soft_ce with mixup "
                 "and cutmix 0).")
    if case["accumulation"] > 1:
        d.append("Accumulation (official train_one_epoch): every micro-batch's loss is divided "
                 "by ACCUMULATION_STEPS and back-propagated; clip_grad_norm_ runs after EVERY "
                 "micro-batch on the gradient accumulated so far (the partial sum is clipped in "
                 "place); optimizer.step, zero_grad and step_update(epoch*num_steps+idx) run "
                 "when (idx+1) % ACCUMULATION_STEPS == 0. The schedule counts micro-batches "
                 "(t_initial = EPOCHS x micro-batches per epoch), and step_update gets the "
                 "micro-batch index (1, 3, 5, ...). train_config.accumulation_steps is not in "
                 "our schema yet (check-config refuses it).")
    if case.get("ringmo"):
        d.append("RingMo (pretraining groups): encoder.mask_token has no weight decay (official "
                 "ViT: decayed). Our schema has no key for it.")
        d.append("RingMo optimizer: MindSpore AdamWeightDecay, no bias correction, 1-beta in "
                 "float32 (our adamw bias_correction: false).")
        d.append("RingMo schedule: float32 table of timm's formula indexed by the global step, "
                 "update g uses lr(g) (no lag); clip multiplies only when clip_norm/(norm+1e-6) "
                 "< 1. Forward/backward: the official ViT (RingMo's MindSpore ViT differs: tanh "
                 "GELU, k bias; spec 11.5).")
    return d


def replay_steps(case):
    pre = case["task"] == "pretrain"
    acc = case["accumulation"] > 1
    s = ["Build the model from ours_config (or official_config_effective) and load init.* "
         "(every state_dict entry; buffers included, to check your own index/mask "
         "construction).",
         "Build the optimizer groups; assert that they equal param_groups (names, "
         "weight_decay, lr_scale).",
         f"For i in 0..{case['batches'] * case['epochs'] - 1} (micro-batch i, epoch step.epoch[i]): "
         "feed data.images[step.batch[i]]" +
         (" with data.masks[step.batch[i]] (1 = masked)" if pre else
          " with data.labels[step.batch[i]]") +
         "; compare the loss with step.loss[i] (before any division by accumulation steps).",
         "Compare the global L2 gradient norm before clipping with step.grad_norm[i] and the "
         "applied factor with step.clip_coef[i].",
         "When step.optimizer_step[i] == 1: the update must use step.lr[i, g] and "
         "step.weight_decay[i, g] for group g; after it every group's lr is step.lr_after[i, g].",
         "At the end compare every parameter with final.<name>, the Adam moments of "
         "adam_state_of with adam.exp_avg.<name> / adam.exp_avg_sq.<name>, and the number of "
         "optimizer updates with adam.steps."]
    if acc:
        s.insert(3, "Accumulation: divide each micro-batch loss by 2 before backward, add into "
                    "the same gradient buffers, clip after every micro-batch (the partial sum), "
                    "step and zero the gradients after every second micro-batch.")
    return s


STATE = {"runs": {}, "data": {}}


def check_file(path, tensors, meta):
    back, meta_back = st.read(path)
    assert meta_back == meta
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
        assert np.array_equal(back[k], v), k


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--simmim-src", required=True, help="checkout of microsoft/SimMIM")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--case", action="append", help="only these cases (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    torch.set_num_threads(args.threads)
    load_official(args.simmim_src)
    os.makedirs(args.out, exist_ok=True)
    wanted = args.case or list(CASES)
    order = []
    for name in wanted:  # a fine-tuning case needs its pretraining run first
        dep = CASES[name].get("pretrained_from")
        if dep and dep not in order:
            order.append(dep)
        if name not in order:
            order.append(name)
    for name in order:
        case = CASES[name]
        STATE["data"][name] = make_data(case)
        run = run_case(name, case, STATE, torch.float32)
        STATE["runs"][name] = run
        if name not in wanted:
            continue
        init64 = {k: v.to(torch.float64) if v.is_floating_point() else v
                  for k, v in run["init"].items()}
        shadow = run_case(name, case, STATE, torch.float64, init_state=init64)
        tensors, meta = build_file(name, case, run, shadow)
        path = os.path.join(args.out, name + ".safetensors")
        st.write(path, tensors, meta)
        check_file(path, tensors, meta)
        with open(os.path.join(args.out, name + ".yaml"), "w") as f:
            f.write(meta["ours_config"])
        rows = run["rows"]
        clipped = sum(1 for r in rows if float(r["clip_coef"]) < 1)
        print(f"{name}: {os.path.getsize(path) / 1024:.0f} KiB, {len(rows)} micro-batches, "
              f"{run['steps']} updates, {len(run['groups'])} groups, loss "
              f"{float(rows[0]['loss']):.6f} -> {float(rows[-1]['loss']):.6f}, clipped "
              f"{clipped}/{len(rows)}, f32-vs-f64 {meta['f32_vs_f64']}")


if __name__ == "__main__":
    main()
