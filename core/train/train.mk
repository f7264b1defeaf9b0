# core/train/train.mk - the trainer: pretraining, fine-tuning, evaluation; checkpoints and the
# evaluation's confusion matrix. Private header: core/train/train_internal.h.
core_libsimmim_la_SOURCES += \
	core/train/train_internal.h \
	core/train/train.c \
	core/train/checkpoint.c \
	core/train/confusion.c
simmiminclude_HEADERS += include/simmim/train.h
