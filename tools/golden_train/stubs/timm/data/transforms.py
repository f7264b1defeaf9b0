"""timm 0.4.12 timm/data/transforms.py: _pil_interp and RandomResizedCropAndInterpolation (crop
box drawn with Python's `random` module, torchvision's 10 tries and centred fallback, then
Pillow's resize of the crop), and the torchvision 0.14 pieces timm composes it with
(RandomHorizontalFlip, ToTensor, Normalize, Compose), rewritten in our own words; needs Pillow
(Debian python3-pil), not torchvision."""
import math
import random

import numpy as np
import torch
from PIL import Image


def _pil_interp(method):
    """The Pillow filter timm uses for an interpolation name (bilinear for unknown names)."""
    return {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS,
            "hamming": Image.HAMMING}.get(method, Image.BILINEAR)


class RandomResizedCropAndInterpolation:
    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation="bilinear"):
        self.size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
        if interpolation == "random":
            raise NotImplementedError("random interpolation is not needed here")
        self.interpolation = _pil_interp(interpolation)
        self.scale = scale
        self.ratio = ratio

    @staticmethod
    def get_params(img, scale, ratio):
        """(top, left, height, width) of the crop: up to 10 draws of an area share in `scale`
        and a log-uniform aspect ratio in `ratio`; a box that does not fit is redrawn; after 10
        failures the whole image, or its centred part of the nearest allowed aspect ratio."""
        width, height = img.size
        area = width * height
        log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
        for _ in range(10):
            target = random.uniform(*scale) * area
            aspect = math.exp(random.uniform(log_lo, log_hi))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if w <= width and h <= height:
                top = random.randint(0, height - h)
                left = random.randint(0, width - w)
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img):
        top, left, h, w = self.get_params(img, self.scale, self.ratio)
        # torchvision F.resized_crop on a PIL image: crop, then resize to (height, width)
        box = img.crop((left, top, left + w, top + h))
        return box.resize((self.size[1], self.size[0]), self.interpolation)


class RandomHorizontalFlip:
    """torchvision: flips when torch.rand(1) < p (torch's generator, not Python's)."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        if torch.rand(1) < self.p:
            return img.transpose(Image.FLIP_LEFT_RIGHT)
        return img


class ToTensor:
    """A PIL image (H, W[, C]) of 8-bit samples -> float tensor (C, H, W) in [0, 1]."""

    def __call__(self, img):
        a = np.asarray(img, dtype=np.uint8)
        if a.ndim == 2:
            a = a[:, :, None]
        return torch.from_numpy(a.transpose(2, 0, 1).copy()).float().div(255)


class Normalize:
    """(x - mean[c]) / std[c] per channel of a (C, H, W) tensor."""

    def __init__(self, mean, std):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, x):
        return (x - self.mean) / self.std


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x
