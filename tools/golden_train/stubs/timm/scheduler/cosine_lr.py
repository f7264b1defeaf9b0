"""CosineLRScheduler with timm 0.4.12 semantics (timm/scheduler/cosine_lr.py, tag v0.4.12).

lr(t), per group with base value v:
  t < warmup_t:  warmup_lr_init + t * (v - warmup_lr_init) / warmup_t   (warmup_lr_init is the
                 same for every group: it is not scaled by the group's share of the base lr)
  otherwise:     t' = t - warmup_t if warmup_prefix else t
                 cycle i, its length t_i and the position t_curr inside it (t_mul == 1:
                 i = t' // t_initial, t_i = t_initial, t_curr = t' - i * t_initial)
                 gamma = decay_rate ** i
                 if cycle_limit == 0 or i < cycle_limit:
                     lr_min*gamma + 0.5 * (v*gamma - lr_min*gamma) * (1 + cos(pi * t_curr / t_i))
                 else: lr_min          (lr_min too is one value for all groups)
On construction with warmup_t > 0 every group's lr is set to warmup_lr_init.
"""
import logging
import math

from .scheduler import Scheduler

_log = logging.getLogger(__name__)


class CosineLRScheduler(Scheduler):
    def __init__(self, optimizer, t_initial, t_mul=1.0, lr_min=0.0, decay_rate=1.0, warmup_t=0,
                 warmup_lr_init=0, warmup_prefix=False, cycle_limit=0, t_in_epochs=True,
                 noise_range_t=None, noise_pct=0.67, noise_std=1.0, noise_seed=42, initialize=True):
        super().__init__(optimizer, param_group_field="lr", noise_range_t=noise_range_t,
                         noise_pct=noise_pct, noise_std=noise_std, noise_seed=noise_seed,
                         initialize=initialize)
        assert t_initial > 0
        assert lr_min >= 0
        if t_initial == 1 and t_mul == 1 and decay_rate == 1:
            _log.warning("Cosine annealing scheduler will have no effect on the learning rate "
                         "since t_initial = t_mul = eta_mul = 1.")
        self.t_initial = t_initial
        self.t_mul = t_mul
        self.lr_min = lr_min
        self.decay_rate = decay_rate
        self.cycle_limit = cycle_limit
        self.warmup_t = warmup_t
        self.warmup_lr_init = warmup_lr_init
        self.warmup_prefix = warmup_prefix
        self.t_in_epochs = t_in_epochs
        if self.warmup_t:
            self.warmup_steps = [(v - warmup_lr_init) / self.warmup_t for v in self.base_values]
            super().update_groups(self.warmup_lr_init)
        else:
            self.warmup_steps = [1 for _ in self.base_values]

    def _get_lr(self, t):
        if t < self.warmup_t:
            return [self.warmup_lr_init + t * s for s in self.warmup_steps]
        if self.warmup_prefix:
            t = t - self.warmup_t
        if self.t_mul != 1:
            i = math.floor(math.log(1 - t / self.t_initial * (1 - self.t_mul), self.t_mul))
            t_i = self.t_mul ** i * self.t_initial
            t_curr = t - (1 - self.t_mul ** i) / (1 - self.t_mul) * self.t_initial
        else:
            i = t // self.t_initial
            t_i = self.t_initial
            t_curr = t - (self.t_initial * i)
        gamma = self.decay_rate ** i
        lr_min = self.lr_min * gamma
        if self.cycle_limit == 0 or (self.cycle_limit > 0 and i < self.cycle_limit):
            return [lr_min + 0.5 * (v * gamma - lr_min) * (1 + math.cos(math.pi * t_curr / t_i))
                    for v in self.base_values]
        return [self.lr_min for _ in self.base_values]

    def get_epoch_values(self, epoch):
        return self._get_lr(epoch) if self.t_in_epochs else None

    def get_update_values(self, num_updates):
        return None if self.t_in_epochs else self._get_lr(num_updates)

    def get_cycle_length(self, cycles=0):
        cycles = max(1, cycles or self.cycle_limit)
        if self.t_mul == 1.0:
            return self.t_initial * cycles
        return int(math.floor(-self.t_initial * (self.t_mul ** cycles - 1) / (1 - self.t_mul)))
