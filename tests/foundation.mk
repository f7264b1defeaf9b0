# tests/foundation.mk - tests of the core services: errors, configuration, registry, plugin
# loader, simmimctl, exported symbols. Fixture plugins are built only for `make check`.

FOUNDATION_TESTS = \
	tests/check_errors \
	tests/check_abi \
	tests/check_config \
	tests/check_registry \
	tests/check_plugin
check_PROGRAMS += $(FOUNDATION_TESTS)
TESTS += $(FOUNDATION_TESTS) tests/check_cli.sh tests/check_exports.sh tests/check_layers.sh \
	tests/check_keys_read.sh
EXTRA_DIST += tests/check_cli.sh tests/check_exports.sh tests/exports.txt tests/check_layers.sh tests/check_keys_read.sh \
	tests/fixtures/plugins/fx_stubs.h

tests_check_errors_SOURCES = tests/check_errors.c
tests_check_errors_CFLAGS = $(TEST_CFLAGS)
tests_check_errors_LDADD = $(TEST_LIBS)

tests_check_abi_SOURCES = tests/check_abi.c
tests_check_abi_CFLAGS = $(TEST_CFLAGS)
tests_check_abi_LDADD = $(TEST_LIBS)

# tests/check_oom: built, not yet run: the config loader has allocation failures that end without
# a message and jansson aborts on one inside the safetensors header (being fixed)
check_PROGRAMS += tests/check_oom
tests_check_oom_SOURCES = tests/check_oom.c
tests_check_oom_CFLAGS = $(TEST_CFLAGS) -fno-builtin
tests_check_oom_LDADD = $(TEST_LIBS)
# malloc & co. of the program must replace the ones libsimmim, libyaml and jansson call
tests_check_oom_LDFLAGS = -export-dynamic

tests_check_config_SOURCES = tests/check_config.c
tests_check_config_CFLAGS = $(TEST_CFLAGS) -DSM_TEST_CONFIGS='"$(abs_top_srcdir)/configs"'
tests_check_config_LDADD = $(TEST_LIBS)

tests_check_registry_SOURCES = tests/check_registry.c
tests_check_registry_CFLAGS = $(TEST_CFLAGS)
tests_check_registry_LDADD = $(TEST_LIBS)

tests_check_plugin_SOURCES = tests/check_plugin.c
tests_check_plugin_CFLAGS = $(TEST_CFLAGS)
tests_check_plugin_LDADD = $(TEST_LIBS)

# Fixture plugins (tests/fixtures/plugins/.libs/sm_fx_*.so), one per loader case.
FIXTURE_LDFLAGS = -module -avoid-version -shared -rpath /nowhere \
	-export-symbols-regex '^simmim_plugin_'
FIXTURE_PLUGINS = \
	tests/fixtures/plugins/sm_fx_good.la \
	tests/fixtures/plugins/sm_fx_abi_major.la \
	tests/fixtures/plugins/sm_fx_abi_minor.la \
	tests/fixtures/plugins/sm_fx_no_entry.la \
	tests/fixtures/plugins/sm_fx_null_desc.la \
	tests/fixtures/plugins/sm_fx_no_register.la \
	tests/fixtures/plugins/sm_fx_dup_a.la \
	tests/fixtures/plugins/sm_fx_dup_b.la \
	tests/fixtures/plugins/sm_fx_fail.la \
	tests/fixtures/plugins/sm_fx_ignore.la \
	tests/fixtures/plugins/sm_fx_unresolved.la \
	tests/fixtures/plugins/sm_fx_ringmo.la
check_LTLIBRARIES += $(FIXTURE_PLUGINS)

tests_fixtures_plugins_sm_fx_good_la_SOURCES = tests/fixtures/plugins/fx_good.c
tests_fixtures_plugins_sm_fx_good_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined
tests_fixtures_plugins_sm_fx_good_la_LIBADD = core/libsimmim.la

tests_fixtures_plugins_sm_fx_abi_major_la_SOURCES = tests/fixtures/plugins/fx_abi.c
tests_fixtures_plugins_sm_fx_abi_major_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DFX_MAJOR='(SM_ABI_MAJOR + 1)' -DFX_MINOR=0
tests_fixtures_plugins_sm_fx_abi_major_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined
tests_fixtures_plugins_sm_fx_abi_major_la_LIBADD = core/libsimmim.la

tests_fixtures_plugins_sm_fx_abi_minor_la_SOURCES = tests/fixtures/plugins/fx_abi.c
tests_fixtures_plugins_sm_fx_abi_minor_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DFX_MAJOR=SM_ABI_MAJOR -DFX_MINOR='(SM_ABI_MINOR + 1)'
tests_fixtures_plugins_sm_fx_abi_minor_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined
tests_fixtures_plugins_sm_fx_abi_minor_la_LIBADD = core/libsimmim.la

tests_fixtures_plugins_sm_fx_no_entry_la_SOURCES = tests/fixtures/plugins/fx_no_entry.c
tests_fixtures_plugins_sm_fx_no_entry_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined

tests_fixtures_plugins_sm_fx_null_desc_la_SOURCES = tests/fixtures/plugins/fx_null_desc.c
tests_fixtures_plugins_sm_fx_null_desc_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined

tests_fixtures_plugins_sm_fx_no_register_la_SOURCES = tests/fixtures/plugins/fx_no_register.c
tests_fixtures_plugins_sm_fx_no_register_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined

tests_fixtures_plugins_sm_fx_dup_a_la_SOURCES = tests/fixtures/plugins/fx_dup.c
tests_fixtures_plugins_sm_fx_dup_a_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined
tests_fixtures_plugins_sm_fx_dup_a_la_LIBADD = core/libsimmim.la

tests_fixtures_plugins_sm_fx_dup_b_la_SOURCES = tests/fixtures/plugins/fx_dup.c
tests_fixtures_plugins_sm_fx_dup_b_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined
tests_fixtures_plugins_sm_fx_dup_b_la_LIBADD = core/libsimmim.la

tests_fixtures_plugins_sm_fx_fail_la_SOURCES = tests/fixtures/plugins/fx_fail.c
tests_fixtures_plugins_sm_fx_fail_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined
tests_fixtures_plugins_sm_fx_fail_la_LIBADD = core/libsimmim.la

tests_fixtures_plugins_sm_fx_ignore_la_SOURCES = tests/fixtures/plugins/fx_ignore.c
tests_fixtures_plugins_sm_fx_ignore_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined
tests_fixtures_plugins_sm_fx_ignore_la_LIBADD = core/libsimmim.la

# deliberately linked with an undefined symbol (no -no-undefined)
tests_fixtures_plugins_sm_fx_unresolved_la_SOURCES = tests/fixtures/plugins/fx_unresolved.c
tests_fixtures_plugins_sm_fx_unresolved_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_plugins_sm_fx_unresolved_la_LIBADD = core/libsimmim.la

tests_fixtures_plugins_sm_fx_ringmo_la_SOURCES = tests/fixtures/plugins/fx_ringmo.c
tests_fixtures_plugins_sm_fx_ringmo_la_LDFLAGS = $(FIXTURE_LDFLAGS) -no-undefined
tests_fixtures_plugins_sm_fx_ringmo_la_LIBADD = core/libsimmim.la

# Data-driven config cases (one directory per case), the merge test files; the docs.
EXTRA_DIST += tests/configs docs/config.md docs/plugin-abi.md
