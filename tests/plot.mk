# tests/plot.mk - `simmimctl plot`: training curves drawn from run directories' metrics.jsonl.
check_PROGRAMS += tests/check_plot
TESTS += tests/check_plot
tests_check_plot_SOURCES = tests/check_plot.c
tests_check_plot_CFLAGS = $(TEST_CFLAGS)
tests_check_plot_LDADD = $(TEST_LIBS)
# the figures docs/outputs.md and docs/evaluate.md show (made from a short demo run)
EXTRA_DIST += docs/img/plot-demo.png docs/img/recon-demo.png
