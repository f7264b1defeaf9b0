"""timm 0.4.12 timm/data/transforms_factory.py, training branch without colour jitter,
AutoAugment/RandAugment or random erasing (what bench/seeds uses): RandomResizedCrop with
interpolation, horizontal flip, ToTensor, Normalize. Anything else raises NotImplementedError
rather than silently doing less than timm."""
from . import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from .transforms import (Compose, Normalize, RandomHorizontalFlip,
                         RandomResizedCropAndInterpolation, ToTensor)


def transforms_imagenet_train(img_size=224, scale=None, ratio=None, hflip=0.5, vflip=0.0,
                              color_jitter=0.4, auto_augment=None, interpolation="random",
                              use_prefetcher=False, mean=IMAGENET_DEFAULT_MEAN,
                              std=IMAGENET_DEFAULT_STD, re_prob=0.0, re_mode="const",
                              re_count=1, re_num_splits=0, separate=False):
    if vflip > 0 or color_jitter is not None or auto_augment or re_prob > 0 or use_prefetcher \
            or separate:
        raise NotImplementedError("stand-in: only crop, flip, ToTensor and Normalize")
    scale = tuple(scale or (0.08, 1.0))
    ratio = tuple(ratio or (3.0 / 4.0, 4.0 / 3.0))
    tfl = [RandomResizedCropAndInterpolation(img_size, scale=scale, ratio=ratio,
                                             interpolation=interpolation)]
    if hflip > 0.0:
        tfl.append(RandomHorizontalFlip(p=hflip))
    tfl += [ToTensor(), Normalize(mean, std)]
    return Compose(tfl)


def create_transform(input_size, is_training=False, use_prefetcher=False, no_aug=False,
                     scale=None, ratio=None, hflip=0.5, vflip=0.0, color_jitter=0.4,
                     auto_augment=None, interpolation="bilinear", mean=IMAGENET_DEFAULT_MEAN,
                     std=IMAGENET_DEFAULT_STD, re_prob=0.0, re_mode="const", re_count=1,
                     re_num_splits=0, crop_pct=None, tf_preprocessing=False, separate=False):
    img_size = input_size[-2:] if isinstance(input_size, (tuple, list)) else input_size
    if not is_training or no_aug or tf_preprocessing:
        raise NotImplementedError("stand-in: training transforms only")
    return transforms_imagenet_train(img_size, scale=scale, ratio=ratio, hflip=hflip, vflip=vflip,
                                     color_jitter=color_jitter, auto_augment=auto_augment,
                                     interpolation=interpolation, use_prefetcher=use_prefetcher,
                                     mean=mean, std=std, re_prob=re_prob, re_mode=re_mode,
                                     re_count=re_count, re_num_splits=re_num_splits,
                                     separate=separate)
