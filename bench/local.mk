# bench/local.mk - benchmark programs (built by `make`, never run by `make check`; they print
# figures and assert nothing).

# ---- tensor engine bench (issue 3): our linear/attention ops vs raw BLIS sgemm --------------
# Run from the build directory: bench/bench_ops [THREADS [REPS [FILTER]]]
noinst_PROGRAMS += bench/bench_ops
bench_bench_ops_SOURCES = bench/bench_ops.c
bench_bench_ops_CPPFLAGS = $(AM_CPPFLAGS) \
	-DSM_BENCH_PLUGIN='"$(abs_top_builddir)/plugins/.libs/sm_blis.so"'
bench_bench_ops_LDADD = core/libsimmim.la
# ---- end of the tensor engine bench ---------------------------------------------------------

# ---- data pipeline bench (issue 5): decode + augment throughput, bench/bench_data.c ---------
noinst_PROGRAMS += bench/bench_data
bench_bench_data_SOURCES = bench/bench_data.c tests/imgutil.c tests/imgutil.h
bench_bench_data_CFLAGS = $(AM_CFLAGS) $(JPEG_CFLAGS) $(PNG_CFLAGS) $(TIFF_CFLAGS)
bench_bench_data_LDADD = core/libsimmim.la $(JPEG_LIBS) $(PNG_LIBS) $(TIFF_LIBS) -lm
# ---- end of the data pipeline bench ---------------------------------------------------------

# ---- bench/run (issue 12): whole steps against the PyTorch peer; builds nothing -------------
EXTRA_DIST += bench/run bench/simmim_torch.py
# ---- the scaled protocol (issue 11): scripts that train for hours, never run by make ------
# bench/protocol: SimMIM pretraining + fine-tuning from it and from random weights
# (docs/protocol.md). bench/seeds (with bench/seeds_official.py) compares our fine-tuning with
# the official code's over several seeds; it needs tools/golden_train/stubs and a checkout of
# microsoft/SimMIM, so it is a source-tree tool and not in the tarball.
EXTRA_DIST += bench/protocol docs/protocol.md docs/img/seeds-small.png docs/img/protocol-short.png \
	docs/protocol-short.json
# ---- end of the scaled protocol -------------------------------------------------------------
