# Tests: Check programs, one per module (tests/check_<module>.c), listed by each area's
# tests/*.mk. Plugins are found in the build tree through SIMMIM_PLUGIN_PATH.
AM_TESTS_ENVIRONMENT = \
	SIMMIM_PLUGIN_PATH='$(abs_top_builddir)/plugins/.libs:$(abs_top_builddir)/backbones/.libs:$(abs_top_builddir)/datasets/.libs'; \
	export SIMMIM_PLUGIN_PATH; \
	SM_TEST_SRCDIR='$(abs_top_srcdir)/tests'; export SM_TEST_SRCDIR; \
	SM_TEST_BUILDDIR='$(abs_top_builddir)/tests'; export SM_TEST_BUILDDIR; \
	SIMMIMCTL='$(abs_top_builddir)/core/cli/simmimctl'; export SIMMIMCTL; \
	SM_TOP_BUILDDIR='$(abs_top_builddir)'; export SM_TOP_BUILDDIR; \
	MAKE='$(MAKE)'; export MAKE; \
	CK_DEFAULT_TIMEOUT=300; export CK_DEFAULT_TIMEOUT;
if SM_SANITIZERS
# --enable-sanitizers: any finding fails the test (UBSan halts, ASan and LeakSanitizer report at
# exit). intercept_tls_get_addr=0 works around the sanitizer runtime misreading glibc's
# dynamic-TLS blocks (google/sanitizers#1322), which crashes LeakSanitizer at the exit of any
# process that ran OpenMP threads in a dlopen'ed library (BLIS); leak checking stays on.
AM_TESTS_ENVIRONMENT += \
	ASAN_OPTIONS="intercept_tls_get_addr=0:detect_leaks=1:abort_on_error=0:$${ASAN_OPTIONS-}"; \
	export ASAN_OPTIONS; \
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:$${UBSAN_OPTIONS-}"; export UBSAN_OPTIONS; \
	LSAN_OPTIONS="suppressions=$(abs_top_srcdir)/tests/lsan.supp:$${LSAN_OPTIONS-}"; \
	export LSAN_OPTIONS; \
	SM_SAN_FLAGS='$(SM_SAN_FLAGS)'; export SM_SAN_FLAGS; \
	CK_TIMEOUT_MULTIPLIER=4; export CK_TIMEOUT_MULTIPLIER;
endif

EXTRA_DIST += tests/lsan.supp
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LIBS = tests/libtestutil.la core/libsimmim.la $(CHECK_LIBS) -lm

check_LTLIBRARIES += tests/libtestutil.la
tests_libtestutil_la_SOURCES = tests/testutil.c tests/testutil.h
tests_libtestutil_la_CFLAGS = $(TEST_CFLAGS)
tests_libtestutil_la_LIBADD = core/libsimmim.la $(CHECK_LIBS)
