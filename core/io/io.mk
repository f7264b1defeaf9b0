# core/io/io.mk - tensor files: the safetensors reader and atomic writer.
core_libsimmim_la_SOURCES += core/io/safetensors.c
EXTRA_DIST += docs/tensor-format.md
