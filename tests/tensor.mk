# tests/tensor.mk - tests of the tensor engine (tensors, arena, ops, backends, safetensors).
check_PROGRAMS += tests/check_safetensors
TESTS += tests/check_safetensors

tests_check_safetensors_SOURCES = tests/check_safetensors.c
tests_check_safetensors_CFLAGS = $(TEST_CFLAGS)
tests_check_safetensors_LDADD = $(TEST_LIBS)
