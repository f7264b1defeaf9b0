# core/cli/cli.mk - simmimctl, the command-line front end (the only code that writes to stdout
# and maps statuses to exit codes).
bin_PROGRAMS += core/cli/simmimctl
core_cli_simmimctl_SOURCES = \
	core/cli/cli.h \
	core/cli/simmimctl.c \
	core/cli/cli_util.c \
	core/cli/session.c \
	core/cli/cmd_config.c \
	core/cli/cmd_plugins.c \
	core/cli/cmd_inspect.c \
	core/cli/cmd_verify.c \
	core/cli/cmd_model.c \
	core/cli/cmd_reconstruct.c \
	core/cli/cmd_extract.c \
	core/cli/cmd_probe.c \
	core/cli/cmd_eval.c \
	core/cli/cmd_data.c \
	core/cli/cmd_plot.c \
	core/cli/plot.h \
	core/cli/plot.c \
	core/cli/cmd_convert.c
core_cli_simmimctl_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CAIRO_CFLAGS)
core_cli_simmimctl_LDADD = core/libsimmim.la $(JANSSON_LIBS) $(CAIRO_LIBS) -lm
