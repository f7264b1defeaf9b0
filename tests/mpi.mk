# tests/mpi.mk - data-parallel training under MPI (tests/check_mpi.sh: mpirun with 1, 2 and 4
# ranks on the tiny model; tests/check_mpi_configs.sh: the shipped pretraining configs at full
# size on 2 ranks, only with SM_TEST_MPI_FULL=1; both skip, status 77, in a build without
# --with-mpi). ckptdiff compares two checkpoints tensor by tensor (a helper, not a test).
check_PROGRAMS += tests/ckptdiff
tests_ckptdiff_SOURCES = tests/ckptdiff.c
tests_ckptdiff_CFLAGS = $(AM_CFLAGS)
tests_ckptdiff_LDADD = core/libsimmim.la -lm
TESTS += tests/check_mpi.sh tests/check_mpi_configs.sh
EXTRA_DIST += tests/check_mpi.sh tests/check_mpi_configs.sh docs/scaling.md .ci/mpi-stage
