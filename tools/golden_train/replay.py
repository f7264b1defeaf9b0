#!/usr/bin/env python3
"""An independent replay of a training golden file, written from the file's own description
(README "What a replay must do"): the model's forward/backward comes from the official modules,
but the parameter groups, the learning-rate schedule, the clipping, AdamW (or RingMo's
AdamWeightDecay) and the accumulation are re-implemented here without torch.optim, timm or the
official optimizer/scheduler code. It is the Python model of the C replay test, and shows that
the tolerances catch real mistakes: --bug injects one.

    python3 tools/golden_train/replay.py --simmim-src /tmp/SimMIM tests/golden_train/*.safetensors
    python3 tools/golden_train/replay.py --simmim-src /tmp/SimMIM --bug no_lag FILE

Exit status 0 when every check passes.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_golden_train as G  # noqa: E402  (only for load_official and the official modules)
import st  # noqa: E402

BUGS = {
    "no_lag": "update k uses lr(k) instead of lr(k-1)",
    "scaled_warmup": "layer decay scales the whole schedule (warmup_lr and min_lr too), RingMo's way",
    "mask_token_no_decay": "the ViT mask token gets no weight decay",
    "rpb_no_decay": "rel-pos tables get no weight decay in pretraining (the official prefixed keyword matches nothing)",
    "no_bias_correction": "Adam without bias correction",
    "clip_once": "accumulation: clip once before the update instead of after every micro-batch",
    "clip_no_eps": "clip coefficient max_norm / norm (without + 1e-6)",
    "lr_min_scaled": "cosine decays to min_lr * lr_scale instead of the shared min_lr",
    "ls_k_minus_1": "label smoothing spreads s over the K-1 wrong classes",
    "wd_coupled": "L2 weight decay added to the gradient instead of decoupled",
    "eps_inside_sqrt": "Adam eps added before the bias-correction division",
}

TOL = {"loss": 1e-5, "grad_norm": 1e-4, "lr": 1e-9, "final": 1e-4, "adam": 1e-3}


def cfg_node(d):
    from yacs.config import CfgNode
    return CfgNode(d)


def num(x):
    return float(x)  # PyYAML reads 1e-8 as a string


def build_model(meta, cfg):
    if meta["task"] == "pretrain":
        enc = G.OFF.simmim.build_simmim(cfg).encoder
        if meta["arch"] == "vit":
            stride = cfg.MODEL.VIT.PATCH_SIZE
        else:
            stride = cfg.MODEL.SWIN.PATCH_SIZE * 2 ** (len(cfg.MODEL.SWIN.DEPTHS) - 1)
        return G.OFF.simmim.SimMIM(encoder=enc, encoder_stride=stride)
    return G.OFF.models.build_model(cfg, is_pretrain=False)


def layer_id(name, arch, depths, depth):
    """Official get_vit_layer / get_swin_layer (note: Swin tests `name in ("mask_token")`, a
    substring test on the string "mask_token"; no real classifier name is affected)."""
    if arch == "vit":
        n = depth + 2
        if name in ("cls_token", "mask_token", "pos_embed") or name.startswith("patch_embed"):
            return 0
        if name.startswith("rel_pos_bias"):
            return n - 1
        if name.startswith("blocks"):
            return int(name.split(".")[1]) + 1
        return n - 1
    n = sum(depths) + 2
    if name == "mask_token" or name.startswith("patch_embed"):
        return 0
    if name.startswith("layers"):
        stage, part = int(name.split(".")[1]), name.split(".")[3]
        if part in ("reduction", "norm"):
            return sum(depths[:stage + 1])
        return sum(depths[:stage]) + int(part) + 1
    return n - 1


def my_groups(model, meta, ours, bugs):
    arch, task = meta["arch"], meta["task"]
    ringmo = meta["flavour"] == "ringmo"
    if arch == "vit":
        skip, keywords = {"pos_embed", "cls_token"}, set()
        if ringmo or "mask_token_no_decay" in bugs:
            skip.add("mask_token")
    else:
        skip, keywords = {"absolute_pos_embed", "mask_token"}, {"relative_position_bias_table"}
    if task == "pretrain":  # SimMIM.no_weight_decay(_keywords) prefix both with "encoder."
        skip = {"encoder." + s for s in skip}
        keywords = {"encoder." + k for k in keywords}
        if "rpb_no_decay" in bugs:
            keywords = {"relative_position_bias_table"}
    wd = num(ours["optimizer"]["weight_decay"])
    groups = {}
    for name, p in model.named_parameters():
        no_decay = p.dim() == 1 or name.endswith(".bias") or name in skip or \
            any(k in name for k in keywords)
        if task == "pretrain":
            key, scale = ("no_decay" if no_decay else "decay"), 1.0
        else:
            m = ours["model"]
            depths = m.get("depth") if arch == "swin" else None
            depth = m.get("depth") if arch == "vit" else None
            lid = layer_id(name, arch, depths, depth)
            nl = (depth if arch == "vit" else sum(depths)) + 2
            scale = num(ours["optimizer"]["layer_decay"]) ** (nl - 1 - lid)
            key = "layer_%d_%s" % (lid, "no_decay" if no_decay else "decay")
        g = groups.setdefault(key, {"group_name": key, "weight_decay": 0.0 if no_decay else wd,
                                    "lr_scale": scale, "params": []})
        g["params"].append(name)
    if task == "pretrain":  # official order: [decay, no_decay]
        return [groups[k] for k in ("decay", "no_decay") if k in groups]
    return list(groups.values())


class Schedule:
    """warmup_cosine_decay_simmim from our config's values (README: the official timm 0.4.12
    rule, or RingMo's table)."""

    def __init__(self, ours, meta, bugs):
        ls, tc = ours["lr_schedule"], ours["train_config"]
        acc = int(tc.get("accumulation_steps", 1) or 1)
        f = tc["batch_size"] / 512.0
        self.base, self.min, self.warm = (num(ls["base_lr"]) * f, num(ls["min_lr"]) * f,
                                          num(ls["warmup_lr"]) * f)
        if acc > 1:
            self.base, self.min, self.warm = self.base * acc, self.min * acc, self.warm * acc
        spe = tc["per_epoch_size"]
        self.T = tc["epoch"] * spe
        self.Tw = int(num(ls["warmup_epochs"]) * spe)
        self.ringmo = meta["flavour"] == "ringmo"
        self.bugs = bugs

    def lr(self, t, scale):
        if self.ringmo or "scaled_warmup" in self.bugs:
            v = self.shape(t, self.base, self.min, self.warm)
            if self.ringmo:  # float32 table, then scale * lr in float32
                return float(np.float32(scale) * np.float32(v))
            return scale * v
        mn = self.min * scale if "lr_min_scaled" in self.bugs else self.min
        return self.shape(t, self.base * scale, mn, self.warm)

    def shape(self, t, base, mn, warm):
        if t < self.Tw:
            return warm + t * ((base - warm) / self.Tw)
        return mn + 0.5 * (base - mn) * (1 + math.cos(math.pi * t / self.T))

    def for_update(self, k, sched_index_prev, scale):
        """The lr update k uses. Official: WARMUP value for k = 0, else lr(index passed to
        step_update after the previous update). RingMo: lr(k)."""
        if self.ringmo or "no_lag" in self.bugs:
            return self.lr(k if not self.ringmo else k, scale)
        if sched_index_prev is None:
            return self.warm
        return self.lr(sched_index_prev, scale)


def adamw_update(p, g, m, v, lr, wd, step, bugs, ringmo):
    if ringmo:  # MindSpore AdamWeightDecay, float32 (ringmo_ref.py M1)
        b1, b2, eps = (torch.tensor(x, dtype=torch.float32) for x in (0.9, 0.999, 1e-8))
        one = torch.tensor(1.0, dtype=torch.float32)
        m.mul_(b1).add_((one - b1) * g)
        v.mul_(b2).add_((one - b2) * g * g)
        upd = m / (eps + v.sqrt())
        if wd > 0:
            upd = torch.tensor(wd, dtype=torch.float32) * p + upd
        p.sub_(torch.tensor(lr, dtype=torch.float32) * upd)
        return
    b1, b2, eps = 0.9, 0.999, 1e-8
    if "wd_coupled" in bugs:
        g = g + wd * p
    else:
        p.mul_(1 - lr * wd)
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    if "no_bias_correction" in bugs:
        p.addcdiv_(m, v.sqrt().add_(eps), value=-lr)
        return
    bc1, bc2 = 1 - b1 ** step, 1 - b2 ** step
    if "eps_inside_sqrt" in bugs:
        denom = (v.sqrt() + eps) / math.sqrt(bc2)
    else:
        denom = v.sqrt() / math.sqrt(bc2) + eps
    p.addcdiv_(m, denom, value=-lr / bc1)


def criterion(logits, labels, smoothing, bugs):
    logp = torch.log_softmax(logits, dim=-1)
    k = logits.shape[-1]
    if "ls_k_minus_1" in bugs:
        target = torch.full_like(logp, smoothing / (k - 1))
        target.scatter_(1, labels[:, None], 1 - smoothing)
    else:
        target = torch.full_like(logp, smoothing / k)
        target.scatter_(1, labels[:, None], 1 - smoothing + smoothing / k)
    return (-(target * logp).sum(-1)).mean()


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def tensor_err(a, b):
    d = float(np.max(np.abs(b))) if b.size else 0.0
    return float(np.max(np.abs(a - b))) / d if d > 0 else float(np.max(np.abs(a - b)))


def replay(path, bugs):
    t, meta = st.read(path)
    ours = yaml.safe_load(meta["ours_config"])
    cfg = cfg_node(yaml.safe_load(meta["official_config_effective"]))
    torch.manual_seed(0)
    model = build_model(meta, cfg)
    init = {k[5:]: torch.from_numpy(v.copy()) for k, v in t.items() if k.startswith("init.")}
    model.load_state_dict(init, strict=True)
    model.train()
    params = dict(model.named_parameters())
    fails = []

    groups = my_groups(model, meta, ours, bugs)
    ref_groups = json.loads(meta["param_groups"])
    mine = {g["group_name"]: g for g in groups}
    for rg in ref_groups:
        g = mine.get(rg["group_name"])
        if g is None or g["params"] != rg["params"] or g["weight_decay"] != rg["weight_decay"] \
                or abs(g["lr_scale"] - rg["lr_scale"]) > 1e-12:
            fails.append(f"group {rg['group_name']} differs")
    if len(mine) != len(ref_groups):
        fails.append(f"{len(mine)} groups, file has {len(ref_groups)}")
    order = [mine[rg["group_name"]] for rg in ref_groups if rg["group_name"] in mine]

    sched = Schedule(ours, meta, bugs)
    acc = int(ours["train_config"].get("accumulation_steps", 1) or 1)
    clip = num(ours["train_wrapper"]["clip_norm"])
    ringmo = meta["flavour"] == "ringmo"
    smoothing = num(ours.get("finetune_dataset", {}).get("label_smoothing", 0) or 0)
    state = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in params.items()}
    n_rows = t["step.loss"].shape[0]
    updates, last_index = 0, None
    worst = {"loss": 0.0, "grad_norm": 0.0, "lr": 0.0}
    for n, p in params.items():
        p.grad = None
    for i in range(n_rows):
        b = int(t["step.batch"][i])
        x = torch.from_numpy(t["data.images"][b].copy())
        if meta["task"] == "pretrain":
            loss = model(x, torch.from_numpy(t["data.masks"][b].copy()))
        else:
            loss = criterion(model(x), torch.from_numpy(t["data.labels"][b].copy()), smoothing,
                             bugs)
        worst["loss"] = max(worst["loss"], rel(float(loss), float(t["step.loss"][i])))
        (loss / acc if acc > 1 else loss).backward()
        grads = [p.grad for p in params.values()]
        do_step = (int(t["step.idx"][i]) + 1) % acc == 0
        if ringmo:
            sq = torch.cat([torch.sum(g * g).reshape(1) for g in grads])
            norm = torch.sqrt(torch.sum(sq))
            coef = torch.tensor(clip, dtype=torch.float32) / (norm + torch.tensor(1e-6))
            if coef < 1:
                for g in grads:
                    g.mul_(coef)
        elif "clip_once" in bugs and acc > 1 and not do_step:
            norm = torch.norm(torch.stack([torch.norm(g) for g in grads]))
        else:
            norm = torch.norm(torch.stack([torch.norm(g) for g in grads]))
            denom = norm if "clip_no_eps" in bugs else norm + 1e-6
            coef = torch.clamp(clip / denom, max=1.0)
            for g in grads:
                g.mul_(coef)
        worst["grad_norm"] = max(worst["grad_norm"], rel(float(norm), float(t["step.grad_norm"][i])))
        if do_step:
            with torch.no_grad():
                for gi, g in enumerate(order):
                    lr = sched.for_update(updates, last_index, g["lr_scale"])
                    ref_lr = float(t["step.lr"][i, gi])
                    worst["lr"] = max(worst["lr"], rel(lr, ref_lr))
                    for name in g["params"]:
                        p = params[name]
                        m, v = state[name]
                        adamw_update(p, p.grad, m, v, lr, g["weight_decay"], updates + 1, bugs,
                                     ringmo)
            updates += 1
            last_index = int(t["step.epoch"][i]) * int(ours["train_config"]["per_epoch_size"]) \
                + int(t["step.idx"][i])
            for p in params.values():
                p.grad = None
        if int(t["step.idx"][i]) == int(ours["train_config"]["per_epoch_size"]) - 1:
            for p in params.values():  # train_one_epoch starts with zero_grad
                p.grad = None
    if updates != int(t["adam.steps"]):
        fails.append(f"{updates} updates, file has {int(t['adam.steps'])}")
    final = max((tensor_err(params[n].detach().numpy(), t["final." + n]), n) for n in params)
    adam = 0.0
    for n in json.loads(meta["adam_state_of"]):
        adam = max(adam, tensor_err(state[n][0].numpy(), t["adam.exp_avg." + n]),
                   tensor_err(state[n][1].numpy(), t["adam.exp_avg_sq." + n]))
    for k in ("loss", "grad_norm", "lr"):
        if worst[k] > TOL[k]:
            fails.append(f"{k} off by {worst[k]:.1e} (tolerance {TOL[k]:.0e})")
    if final[0] > TOL["final"]:
        fails.append(f"final weights off by {final[0]:.1e} ({final[1]}; tolerance "
                     f"{TOL['final']:.0e})")
    if adam > TOL["adam"]:
        fails.append(f"Adam moments off by {adam:.1e} (tolerance {TOL['adam']:.0e})")
    summary = (f"loss {worst['loss']:.1e}, grad_norm {worst['grad_norm']:.1e}, lr "
               f"{worst['lr']:.1e}, final {final[0]:.1e} ({final[1]}), adam {adam:.1e}")
    return fails, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--simmim-src", required=True)
    ap.add_argument("--bug", action="append", default=[], choices=sorted(BUGS))
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    torch.set_num_threads(1)
    G.load_official(args.simmim_src)
    bad = 0
    for f in args.files:
        fails, summary = replay(f, set(args.bug))
        name = os.path.basename(f)
        print(("FAIL " if fails else "ok   ") + name + ": " + summary)
        for msg in fails:
            print("     " + msg)
        bad += bool(fails)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
