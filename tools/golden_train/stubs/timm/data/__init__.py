"""Constants only (timm/data/constants.py). The generator does not use the official data
pipeline (it feeds fixed batches), so Mixup and create_transform are not provided."""
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)
