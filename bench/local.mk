# bench/local.mk: filled in by its area

# ---- data pipeline bench (issue 5): decode + augment throughput, bench/bench_data.c ---------
noinst_PROGRAMS += bench/bench_data
bench_bench_data_SOURCES = bench/bench_data.c tests/imgutil.c tests/imgutil.h
bench_bench_data_CFLAGS = $(AM_CFLAGS) $(JPEG_CFLAGS) $(PNG_CFLAGS) $(TIFF_CFLAGS)
bench_bench_data_LDADD = core/libsimmim.la $(JPEG_LIBS) $(PNG_LIBS) $(TIFF_LIBS) -lm
# ---- end of the data pipeline bench ---------------------------------------------------------
