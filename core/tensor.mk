# core/tensor.mk - the tensor engine: tensors, arena, parameters, autograd, ops, backends,
# safetensors.
core_libsimmim_la_SOURCES += \
	core/tensor.c \
	core/ctx.c \
	core/autograd.c \
	core/params.c \
	core/backend.c \
	core/backend_ref.c \
	core/safetensors.c \
	core/ops/ops_internal.h \
	core/ops/common.c \
	core/ops/shape.c \
	core/ops/linear.c \
	core/ops/matmul.c \
	core/ops/elementwise.c \
	core/ops/layernorm.c \
	core/ops/gelu.c \
	core/ops/softmax.c \
	core/ops/attention.c \
	core/ops/relpos.c \
	core/ops/window.c \
	core/ops/patch.c \
	core/ops/tokens.c \
	core/ops/drop_path.c \
	core/ops/loss.c
