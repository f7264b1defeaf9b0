from .cosine_lr import CosineLRScheduler
from .scheduler import Scheduler
from .step_lr import StepLRScheduler
