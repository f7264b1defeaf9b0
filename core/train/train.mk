# core/train/train.mk - the trainer: pretraining, fine-tuning, evaluation; checkpoints and the
# evaluation's confusion matrix. Private header: core/train/train_internal.h.
core_libsimmim_la_SOURCES += \
	core/train/train_internal.h \
	core/train/settings.c \
	core/train/trainer.c \
	core/train/reduce.c \
	core/train/rundir.c \
	core/train/metrics.c \
	core/train/resume.c \
	core/train/evaluate.c \
	core/train/loop.c \
	core/train/train.c \
	core/train/ranks.c \
	core/train/checkpoint.c \
	core/train/confusion.c
simmiminclude_HEADERS += include/simmim/train.h
