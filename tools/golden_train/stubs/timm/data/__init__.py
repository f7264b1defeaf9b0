"""timm 0.4.12's timm.data, the parts microsoft/SimMIM reaches: the constants
(timm/data/constants.py) and, for bench/seeds, create_transform for training without colour
jitter, AutoAugment or random erasing (timm/data/transforms_factory.py), built on the Pillow
resampling of RandomResizedCropAndInterpolation (timm/data/transforms.py). Mixup is not
provided (mixup is off in every use here)."""
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


def create_transform(*args, **kwargs):
    """Imported lazily: the golden_train generator never needs Pillow."""
    from .transforms_factory import create_transform as impl
    return impl(*args, **kwargs)
