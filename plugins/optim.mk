# plugins/optim.mk - optimizer (sm_optim: adamw, sgd) and scheduler (sm_sched) plugins.
plugin_LTLIBRARIES += plugins/sm_optim.la plugins/sm_sched.la
plugins_sm_optim_la_SOURCES = plugins/optim/optim.c
# vectorised update loops, bitwise the scalar arithmetic (optim.c)
plugins_sm_optim_la_CFLAGS = $(AM_CFLAGS) -ffp-contract=off -fno-math-errno
plugins_sm_optim_la_LDFLAGS = $(SM_PLUGIN_FLAGS)
plugins_sm_optim_la_LIBADD = $(SM_PLUGIN_LIBS) -lm
plugins_sm_sched_la_SOURCES = plugins/sched/sched.c
plugins_sm_sched_la_LDFLAGS = $(SM_PLUGIN_FLAGS)
plugins_sm_sched_la_LIBADD = $(SM_PLUGIN_LIBS) -lm
simmiminclude_HEADERS += include/simmim/optim.h
