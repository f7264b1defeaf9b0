"""The two criteria main_finetune.py imports, timm 0.4.12 (timm/loss/cross_entropy.py)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class LabelSmoothingCrossEntropy(nn.Module):
    """mean over the batch of (1 - s) * (-log p[y]) + s * mean_k(-log p[k]).
    The smoothing mass s is spread over ALL K classes (the true one included), so this equals
    soft-target cross-entropy with targets 1 - s + s/K (true class) and s/K (others)."""

    def __init__(self, smoothing=0.1):
        super().__init__()
        assert smoothing < 1.0
        self.smoothing = smoothing
        self.confidence = 1.0 - smoothing

    def forward(self, x, target):
        logp = F.log_softmax(x, dim=-1)
        nll = -logp.gather(dim=-1, index=target.unsqueeze(1)).squeeze(1)
        smooth = -logp.mean(dim=-1)
        return (self.confidence * nll + self.smoothing * smooth).mean()


class SoftTargetCrossEntropy(nn.Module):
    """mean over the batch of sum_k -target[k] * log_softmax(x)[k]."""

    def forward(self, x, target):
        return torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1).mean()
