/* core/config.c - PLACEHOLDER until the configuration system lands (issue 2). */
#include "internal.h"

sm_cfg_kind sm_cfg_kind_of(const sm_cfg *node) { (void)node; return SM_CFG_NULL; }
const sm_cfg *sm_cfg_get(const sm_cfg *node, const char *dotted) { (void)node; (void)dotted; return NULL; }
size_t sm_cfg_size(const sm_cfg *node) { (void)node; return 0; }
const sm_cfg *sm_cfg_at(const sm_cfg *node, size_t i) { (void)node; (void)i; return NULL; }
const char *sm_cfg_key_at(const sm_cfg *node, size_t i) { (void)node; (void)i; return NULL; }
const char *sm_cfg_scalar(const sm_cfg *node) { (void)node; return NULL; }
const char *sm_cfg_file(const sm_cfg *node) { (void)node; return ""; }
int sm_cfg_line(const sm_cfg *node) { (void)node; return 0; }
int sm_cfg_column(const sm_cfg *node) { (void)node; return 0; }
size_t sm_cfg_keypath(const sm_cfg *node, char *buf, size_t n) { (void)node; return sm__strlcpy(buf, "", n); }
bool sm_cfg_bool(const sm_cfg *s, const char *k) { (void)s; (void)k; return false; }
int64_t sm_cfg_int(const sm_cfg *s, const char *k) { (void)s; (void)k; return 0; }
double sm_cfg_float(const sm_cfg *s, const char *k) { (void)s; (void)k; return 0; }
const char *sm_cfg_str(const sm_cfg *s, const char *k) { (void)s; (void)k; return NULL; }
bool sm_cfg_is_null(const sm_cfg *s, const char *k) { (void)s; (void)k; return true; }
size_t sm_cfg_int_list(const sm_cfg *s, const char *k, int64_t *o, size_t c) { (void)s; (void)k; (void)o; (void)c; return 0; }
size_t sm_cfg_float_list(const sm_cfg *s, const char *k, double *o, size_t c) { (void)s; (void)k; (void)o; (void)c; return 0; }
size_t sm_cfg_path(const sm_cfg *s, const char *k, char *b, size_t n) { (void)s; (void)k; (void)b; (void)n; return 0; }
int sm_cfg_to_bool(const sm_cfg *n, bool *o, sm_error *e) { (void)n; (void)o; return sm_error_set(e, SM_EUNSUPPORTED, NULL, 0, 0, NULL, "config not implemented"); }
int sm_cfg_to_int(const sm_cfg *n, int64_t *o, sm_error *e) { (void)n; (void)o; return sm_error_set(e, SM_EUNSUPPORTED, NULL, 0, 0, NULL, "config not implemented"); }
int sm_cfg_to_float(const sm_cfg *n, double *o, sm_error *e) { (void)n; (void)o; return sm_error_set(e, SM_EUNSUPPORTED, NULL, 0, 0, NULL, "config not implemented"); }
int sm_config_read(const char *p, const char *const *o, size_t n, sm_config **out, sm_diag *d) { (void)o; (void)n; *out = NULL; return sm_diag_addf(d, SM_SEV_ERROR, SM_EUNSUPPORTED, p, 0, 0, NULL, "config not implemented"); }
int sm_config_read_string(const char *t, size_t l, const char *nm, const char *const *o, size_t n, sm_config **out, sm_diag *d) { (void)t; (void)l; (void)o; (void)n; *out = NULL; return sm_diag_addf(d, SM_SEV_ERROR, SM_EUNSUPPORTED, nm, 0, 0, NULL, "config not implemented"); }
int sm_config_validate(sm_config *c, const sm_registry *r, sm_diag *d) { (void)c; (void)r; (void)d; return SM_EUNSUPPORTED; }
void sm_config_free(sm_config *c) { (void)c; }
const sm_cfg *sm_config_root(const sm_config *c) { (void)c; return NULL; }
const char *sm_config_file(const sm_config *c) { (void)c; return ""; }
size_t sm_config_plugin_dirs(const sm_config *c, char **d, size_t cap) { (void)c; (void)d; (void)cap; return 0; }
size_t sm_config_ignored_count(const sm_config *c) { (void)c; return 0; }
const char *sm_config_ignored_at(const sm_config *c, size_t i) { (void)c; (void)i; return NULL; }
int sm_config_to_yaml(const sm_config *c, char **o, size_t *l) { (void)c; *o = NULL; if (l) *l = 0; return SM_EUNSUPPORTED; }
const sm_key *sm_config_core_keys(const char *s) { (void)s; return NULL; }
