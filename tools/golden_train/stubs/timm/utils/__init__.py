"""AverageMeter and accuracy as timm 0.4.12 defines them (timm/utils/metrics.py)."""


class AverageMeter:
    def __init__(self):
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


def accuracy(output, target, topk=(1,)):
    """Top-k accuracy in percent for each k."""
    maxk = max(topk)
    n = target.size(0)
    _, pred = output.topk(maxk, 1, True, True)
    hit = pred.t().eq(target.reshape(1, -1).expand_as(pred.t()))
    return [hit[:k].reshape(-1).float().sum(0) * 100.0 / n for k in topk]
