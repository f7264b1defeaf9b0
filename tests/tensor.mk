# tests/tensor.mk: filled in by its area
