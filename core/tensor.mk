# core/tensor.mk - the tensor engine: tensors, arena, parameters, autograd, ops, backends,
# safetensors.
core_libsimmim_la_SOURCES += \
	core/backend.c \
	core/backend_ref.c \
	core/safetensors.c
