# tests/foundation.mk: filled in by its area
