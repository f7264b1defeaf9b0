"""Stand-in for the few timm 0.4.12 helpers that microsoft/SimMIM imports (timm cannot be installed
here). Only what the golden_train generator reaches is provided; each piece follows the behaviour
of timm 0.4.12 (tag v0.4.12 of huggingface/pytorch-image-models), rewritten in our own words."""
__version__ = "0.4.12-standin"
