# core/base/base.mk - the bottom layer: status codes, the error record and diagnostics lists,
# logging, the counter-based RNG, the version, small string/path helpers (internal.h), the
# communicator of data-parallel jobs (comm.c; its MPI side comm_mpi.c only with --with-mpi).
core_libsimmim_la_SOURCES += \
	core/base/internal.h \
	core/base/status.c \
	core/base/error.c \
	core/base/diag.c \
	core/base/log.c \
	core/base/rng.c \
	core/base/version.c \
	core/base/comm_internal.h \
	core/base/comm.c
if SM_MPI
core_libsimmim_la_SOURCES += core/base/comm_mpi.c
endif
