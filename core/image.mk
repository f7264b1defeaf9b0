# core/image.mk: filled in by its area
