"""Base scheduler with timm 0.4.12 semantics (timm/scheduler/scheduler.py at tag v0.4.12).

What matters for SimMIM:
- on construction every param group gets 'initial_lr' = its current 'lr' (setdefault: an existing
  'initial_lr' is kept), and base_values is the list of those per-group values;
- update_groups(v) writes v (one value, or one per group) into each group's 'lr' as it is: there is
  NO multiplication by a group's 'lr_scale' in this version (later timm versions added that);
- step_update(n) sets the lr of update n (t_in_epochs=False schedulers), step(e) that of epoch e.
"""
import torch


class Scheduler:
    def __init__(self, optimizer, param_group_field, noise_range_t=None, noise_type="normal",
                 noise_pct=0.67, noise_std=1.0, noise_seed=None, initialize=True):
        self.optimizer = optimizer
        self.param_group_field = param_group_field
        self._initial_param_group_field = "initial_" + param_group_field
        for i, group in enumerate(self.optimizer.param_groups):
            if initialize:
                if param_group_field not in group:
                    raise KeyError(f"{param_group_field} missing from param_groups[{i}]")
                group.setdefault(self._initial_param_group_field, group[param_group_field])
            elif self._initial_param_group_field not in group:
                raise KeyError(f"{self._initial_param_group_field} missing from param_groups[{i}]")
        self.base_values = [g[self._initial_param_group_field] for g in self.optimizer.param_groups]
        self.metric = None
        self.noise_range_t = noise_range_t
        self.noise_pct = noise_pct
        self.noise_type = noise_type
        self.noise_std = noise_std
        self.noise_seed = 42 if noise_seed is None else noise_seed
        self.update_groups(self.base_values)

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)

    def get_epoch_values(self, epoch):
        return None

    def get_update_values(self, num_updates):
        return None

    def step(self, epoch, metric=None):
        self.metric = metric
        values = self.get_epoch_values(epoch)
        if values is not None:
            self.update_groups(self._add_noise(values, epoch))

    def step_update(self, num_updates, metric=None):
        self.metric = metric
        values = self.get_update_values(num_updates)
        if values is not None:
            self.update_groups(self._add_noise(values, num_updates))

    def update_groups(self, values):
        if not isinstance(values, (list, tuple)):
            values = [values] * len(self.optimizer.param_groups)
        for group, value in zip(self.optimizer.param_groups, values):
            group[self.param_group_field] = value

    def _add_noise(self, lrs, t):
        """Multiplicative noise inside noise_range_t (unused by SimMIM: noise_range_t is None)."""
        if self.noise_range_t is None:
            return lrs
        if isinstance(self.noise_range_t, (list, tuple)):
            on = self.noise_range_t[0] <= t < self.noise_range_t[1]
        else:
            on = t >= self.noise_range_t
        if not on:
            return lrs
        gen = torch.Generator()
        gen.manual_seed(self.noise_seed + t)
        if self.noise_type == "normal":
            while True:  # redraw until inside the percentage limit
                noise = torch.randn(1, generator=gen).item()
                if abs(noise) < self.noise_pct:
                    break
        else:
            noise = 2 * (torch.rand(1, generator=gen).item() - 0.5) * self.noise_pct
        return [v + v * noise for v in lrs]
