# tests/tensor.mk - tests of the tensor engine: tensors/arena/params, ops (forward against naive
# references, finite-difference gradients, thread-count independence), the memory plan and
# recomputation, safetensors.
check_PROGRAMS += tests/check_tensor tests/check_ops tests/check_memory tests/check_safetensors
TESTS += tests/check_tensor tests/check_ops tests/check_memory tests/check_safetensors

tests_check_tensor_SOURCES = tests/check_tensor.c
tests_check_tensor_CFLAGS = $(TEST_CFLAGS)
tests_check_tensor_LDADD = $(TEST_LIBS) $(PTHREAD_LIBS)

tests_check_ops_SOURCES = tests/check_ops.c
tests_check_ops_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_LDADD = $(TEST_LIBS)
# check_ops again with each layout of the small-matrix kernel, whatever this CPU picks
TESTS += tests/check_small_gemm.sh
EXTRA_DIST += tests/check_small_gemm.sh

tests_check_memory_SOURCES = tests/check_memory.c
tests_check_memory_CFLAGS = $(TEST_CFLAGS)
tests_check_memory_LDADD = $(TEST_LIBS)
EXTRA_DIST += docs/performance.md

tests_check_safetensors_SOURCES = tests/check_safetensors.c
tests_check_safetensors_CFLAGS = $(TEST_CFLAGS)
tests_check_safetensors_LDADD = $(TEST_LIBS)

# every built backend (ref, blis, onednn) against exact products and the ref oracle; bf16
# (docs/backends.md)
check_PROGRAMS += tests/check_backend
TESTS += tests/check_backend
tests_check_backend_SOURCES = tests/check_backend.c
tests_check_backend_CFLAGS = $(TEST_CFLAGS)
tests_check_backend_LDADD = $(TEST_LIBS)
EXTRA_DIST += docs/backends.md
