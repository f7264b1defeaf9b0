# core/tensor.mk - the tensor engine: tensors, arena, parameters, autograd, ops, backends,
# safetensors.
core_libsimmim_la_SOURCES += \
	core/tensor.c \
	core/ctx.c \
	core/autograd.c \
	core/params.c \
	core/backend.c \
	core/backend_ref.c \
	core/safetensors.c

# The kernels are built with GCC's full vectoriser cost model (-O2 alone only vectorises loops
# that need no runtime checks or epilogues; the flag survives a later -O2 in CFLAGS) and
# without FP-trap semantics (lets conditional selects in exp/erf vectorise on AVX2; results
# are unchanged, we never read FP exception flags).
noinst_LTLIBRARIES += core/libsm_kernels.la
core_libsimmim_la_LIBADD += core/libsm_kernels.la
core_libsm_kernels_la_CFLAGS = $(AM_CFLAGS) $(SM_KERNEL_CFLAGS)
core_libsm_kernels_la_SOURCES = \
	core/ops/ops_internal.h \
	core/ops/common.c \
	core/ops/shape.c \
	core/ops/linear.c \
	core/ops/matmul.c \
	core/ops/small_gemm.c \
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

EXTRA_DIST += docs/tensor-format.md
