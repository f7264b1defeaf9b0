"""DropPath, to_2tuple, trunc_normal_ as timm 0.4.12 defines them
(timm/models/layers/{drop,helpers,weight_init}.py)."""
import collections.abc

import torch
import torch.nn as nn


def to_2tuple(x):
    """An iterable is returned as it is; anything else becomes (x, x)."""
    if isinstance(x, collections.abc.Iterable):
        return x
    return (x, x)


def drop_path(x, drop_prob=0.0, training=False):
    """Per-sample stochastic depth: keep a sample's branch with probability 1 - p and scale the
    kept ones by 1 / (1 - p). Identity when p == 0 or in eval mode."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    # floor(keep + U[0,1)) is 1 with probability keep, else 0
    bern = (keep + torch.rand(shape, dtype=x.dtype, device=x.device)).floor_()
    return x.div(keep) * bern


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Normal(mean, std) truncated to [a, b] by inverse-CDF sampling. timm 0.4.12's version is
    the same algorithm as torch.nn.init.trunc_normal_ (PyTorch took it from timm), so we call it."""
    return nn.init.trunc_normal_(tensor, mean=mean, std=std, a=a, b=b)
