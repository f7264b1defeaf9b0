"""RingMo-Framework's training-step semantics, re-implemented in PyTorch (MindSpore cannot be
installed here, so none of this was run under MindSpore: the formulas were read from the source
and written again). Sources, all read at comeony/RingMo HEAD 9078d16 (a mirror of RingMo-Framework):

  R1 ringmo_framework/optim/build_optim.py
       l.133-152  get_pretrain_param_groups: no decay for 1-D params, names ending in ".bias",
                  names in model.no_weight_decay(), names containing a no_weight_decay_keywords
                  entry; groups [decay: weight_decay], [no decay: 0.0], {order_params}
       l.155-196  get_finetune_param_groups: group "layer_<id>_<decay|no_decay>", its lr is
                  LearningRateWiseLayer(schedule, scale)
       l.199-226  get_vit_layer / get_swin_layer (RingMo attribute names)
       l.53-59    pre-training "AdamW" = mindspore.nn.AdamWeightDecay(groups, learning_rate=lr,
                  weight_decay, eps, beta1, beta2)
  R2 ringmo_framework/lr/lr_schedule.py
       l.90-98    LearningRateWiseLayer: lr = lr_scale * schedule(global_step)  (the WHOLE schedule
                  is scaled, warmup_lr and min_lr included)
       l.184-271  WarmUpCosineDecayV2 (lr_type warmup_cosine_decay_simmim): a float32 table
                  [_get_lr(i) for i in range(t_initial)], t_in_epochs=True, cycle_limit=1,
                  warmup_prefix=False; construct(global_step) = table[global_step]
  R3 ringmo_framework/lr/build_lr.py
       l.22-53    total_steps = epoch * data_size; warmup_steps = int(warmup_epochs * data_size)
       l.56-60    base_lr, min_lr, warmup_lr all scaled by device_num * batch_size / 512
  R4 ringmo_framework/trainer/clip_grad.py
       l.36-40    per-tensor sum of squares (float32)
       l.43-50    clip_coef = clip_norm / (global_norm + 1e-6); grads multiplied only if < 1
       l.80-86    global_norm = sqrt(sum of the per-tensor sums)
  R5 ringmo_framework/trainer/trainer.py
       l.63-89    TrainOneStepWithClipGNAndEMA: loss scaled by the fixed loss scale (1024) for the
                  backward, grads divided by it again (exact: a power of two), overflow check,
                  then clip_by_global_norm (if use_clip_grad), then optimizer(grads)
  R6 ringmo_framework/arch/simmim.py l.101-102, models/backbone/vit.py l.168-169:
       ViT skip list {pos_embed, cls_tokens} | {mask_token}, prefixed "encoder." (the mask
       token IS excluded from decay, unlike the official SimMIM ViT)
  M1 MindSpore nn.AdamWeightDecay, mindspore/python/mindspore/nn/optim/adam.py (_update_run_op),
       all in float32:
         next_m = beta1 * m + (1 - beta1) * g          (1 - beta1 computed in float32)
         next_v = beta2 * v + (1 - beta2) * g * g
         update = next_m / (eps + sqrt(next_v))        NO bias correction
         if decay_flag: update = weight_decay * param + update
         param  = param - lr * update
  M2 MindSpore Optimizer.get_lr: the schedule is evaluated at the optimizer's global_step, which
       starts at 0 and is incremented after the lookup: update g uses lr(g) (no one-step lag).
"""
import math

import torch


def warmup_cosine_decay_simmim(base_lr, min_lr, warmup_lr, epochs, warmup_epochs,
                               steps_per_epoch):
    """R3 l.28-49 + R2 l.184-271. Returns (table as float32 tensor, t_initial, warmup_t).
    With t_in_epochs=True, get_epoch_values(i) = _get_lr(i); cycle_mul = cycle_decay = k_decay = 1,
    cycle_limit = 1, so for t < t_initial the cosine branch is always taken."""
    t_initial = epochs * steps_per_epoch
    warmup_t = int(warmup_epochs * steps_per_epoch)
    step = (base_lr - warmup_lr) / warmup_t if warmup_t else 1
    values = []
    for t in range(t_initial):
        if t < warmup_t:
            values.append(warmup_lr + t * step)
        else:
            i1 = t // t_initial
            t_curr = t - t_initial * i1
            values.append(min_lr + 0.5 * (base_lr - min_lr) *
                          (1 + math.cos(math.pi * t_curr ** 1.0 / t_initial ** 1.0)))
    return torch.tensor(values, dtype=torch.float32), t_initial, warmup_t


def scale_lrs(base_lr, min_lr, warmup_lr, device_num, batch_size):
    """R3 l.56-60 (same operation order)."""
    return ((base_lr * device_num * batch_size) / 512,
            (min_lr * device_num * batch_size) / 512,
            (warmup_lr * device_num * batch_size) / 512)


def keywords_in(name, keywords):
    return any(k in name for k in keywords)


def pretrain_groups(named_params, weight_decay, skip_list, skip_keywords):
    """R1 l.133-152: [(names, weight_decay)] for the decay and the no-decay group."""
    decay, no_decay = [], []
    for name, p in named_params:
        if not p.requires_grad:
            continue
        if p.dim() == 1 or name.endswith(".bias") or name in skip_list or \
                keywords_in(name, skip_keywords):
            no_decay.append(name)
        else:
            decay.append(name)
    return [{"group_name": "decay", "params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
            {"group_name": "no_decay", "params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0}]


def clip_by_global_norm(grads, clip_norm, dtype=torch.float32):
    """R4: returns (clipped grads, global norm, clip_coef, whether the grads were multiplied).
    dtype float32 is RingMo's; float64 only for the generator's precision shadow run."""
    square_sums = [torch.sum(torch.square(g)).to(dtype).reshape(1) for g in grads]
    global_norm = torch.sqrt(torch.sum(torch.cat(square_sums)))  # F.addn then F.sqrt
    clip = torch.tensor(clip_norm, dtype=dtype)
    coef = clip / (global_norm + torch.tensor(1e-6, dtype=dtype))
    if coef < 1:
        return [g * coef for g in grads], global_norm, coef, True
    return list(grads), global_norm, coef, False


class AdamWeightDecay:
    """M1: MindSpore's AdamWeightDecay (no bias correction), float32 throughout.
    groups: list of {"params": [tensors], "weight_decay": float, "lr_scale": float}."""

    def __init__(self, groups, beta1=0.9, beta2=0.999, eps=1e-8, dtype=torch.float32):
        self.groups = groups
        f32 = dtype  # float32 in MindSpore; float64 only for the generator's shadow run
        self.beta1 = torch.tensor(beta1, dtype=f32)
        self.beta2 = torch.tensor(beta2, dtype=f32)
        self.eps = torch.tensor(eps, dtype=f32)
        self.one = torch.tensor(1.0, dtype=f32)
        self.m = {}
        self.v = {}
        for g in groups:
            for p in g["params"]:
                self.m[p] = torch.zeros_like(p)
                self.v[p] = torch.zeros_like(p)

    @torch.no_grad()
    def step(self, grads_by_param, lrs):
        """lrs: one float32 tensor per group (the group's learning rate at this global step)."""
        for g, lr in zip(self.groups, lrs):
            wd = torch.tensor(g["weight_decay"], dtype=self.one.dtype)
            decay = g["weight_decay"] > 0
            for p in g["params"]:
                grad = grads_by_param[p]
                m = self.beta1 * self.m[p] + (self.one - self.beta1) * grad
                v = self.beta2 * self.v[p] + (self.one - self.beta2) * torch.square(grad)
                update = m / (self.eps + torch.sqrt(v))
                if decay:
                    update = wd * p + update
                p.copy_(p - lr * update)
                self.m[p] = m
                self.v[p] = v
