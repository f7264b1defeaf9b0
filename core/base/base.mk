# core/base/base.mk - the bottom layer: status codes, the error record and diagnostics lists,
# logging, the counter-based RNG, the version, small string/path helpers (internal.h).
core_libsimmim_la_SOURCES += \
	core/base/internal.h \
	core/base/status.c \
	core/base/error.c \
	core/base/diag.c \
	core/base/log.c \
	core/base/rng.c \
	core/base/version.c
