# core/tensor/tensor.mk - the tensor engine: tensors, the per-step arenas (ctx, arena), the
# parameter store, autograd and recomputation (checkpoint), backend dispatch and the built-in
# ref backend, profiling, and the ops (ops/, one file per family, forward and backward side by
# side).
# Private header: core/tensor/tensor_internal.h.
core_libsimmim_la_SOURCES += \
	core/tensor/tensor_internal.h \
	core/tensor/tensor.c \
	core/tensor/arena.c \
	core/tensor/ctx.c \
	core/tensor/autograd.c \
	core/tensor/checkpoint.c \
	core/tensor/params.c \
	core/tensor/backend.c \
	core/tensor/backend_ref.c \
	core/tensor/profile.c \
	core/tensor/fpenv.c

# The kernels are built with GCC's full vectoriser cost model (-O2 alone only vectorises loops
# that need no runtime checks or epilogues; the flag survives a later -O2 in CFLAGS) and
# without FP-trap semantics (lets conditional selects in exp/erf vectorise on AVX2; results
# are unchanged, we never read FP exception flags).
noinst_LTLIBRARIES += core/libsm_kernels.la
core_libsimmim_la_LIBADD += core/libsm_kernels.la
core_libsm_kernels_la_CFLAGS = $(AM_CFLAGS) $(SM_KERNEL_CFLAGS)
core_libsm_kernels_la_SOURCES = \
	core/tensor/ops/common.c \
	core/tensor/ops/shape.c \
	core/tensor/ops/linear.c \
	core/tensor/ops/matmul.c \
	core/tensor/ops/small_gemm.c \
	core/tensor/ops/elementwise.c \
	core/tensor/ops/layernorm.c \
	core/tensor/ops/gelu.c \
	core/tensor/ops/softmax.c \
	core/tensor/ops/attention.c \
	core/tensor/ops/relpos.c \
	core/tensor/ops/window.c \
	core/tensor/ops/patch.c \
	core/tensor/ops/tokens.c \
	core/tensor/ops/drop_path.c \
	core/tensor/ops/loss.c
