# tests/data.mk: filled in by its area
