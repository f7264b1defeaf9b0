/* core/config/config_emit.c - the effective configuration as YAML (block style, keys in tree order,
 * no comments), through libyaml's emitter so that quoting is always right. Quoted scalars stay
 * quoted and plain ones plain, so sm_config_read gives back the same tree. */
#include "config/config_internal.h"

#include <yaml.h>

typedef struct sm__outbuf {
    char *data;
    size_t len, cap;
    int oom;
} sm__outbuf;

static int sm__write(void *user, unsigned char *buf, size_t size)
{
    sm__outbuf *o = user;
    if (o->len + size + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + size + 1) cap *= 2;
        char *d = realloc(o->data, cap);
        if (!d) {
            o->oom = 1;
            return 0;
        }
        o->data = d;
        o->cap = cap;
    }
    memcpy(o->data + o->len, buf, size);
    o->len += size;
    o->data[o->len] = '\0';
    return 1;
}

static int sm__emit_scalar(yaml_emitter_t *em, const char *text, bool quoted)
{
    yaml_event_t ev;
    yaml_scalar_style_t style = quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                       : YAML_PLAIN_SCALAR_STYLE;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text),
                                      !quoted, quoted, style))
        return -1;
    return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int sm__emit_node(yaml_emitter_t *em, const sm_cfg *node)
{
    yaml_event_t ev;
    switch (node->kind) {
    case SM_CFG_NULL:
        return sm__emit_scalar(em, "null", false);
    case SM_CFG_SCALAR:
        return sm__emit_scalar(em, node->text, node->quoted);
    case SM_CFG_SEQ:
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -1;
        for (const sm_cfg *c = node->head; c; c = c->next)
            if (sm__emit_node(em, c) != 0) return -1;
        if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev)) return -1;
        return 0;
    case SM_CFG_MAP:
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -1;
        for (const sm_cfg *c = node->head; c; c = c->next)
            if (sm__emit_scalar(em, c->key, false) != 0 || sm__emit_node(em, c) != 0) return -1;
        if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev)) return -1;
        return 0;
    }
    return -1;
}

int sm_config_to_yaml(const sm_config *cfg, char **out, size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    if (!cfg || !cfg->root) return SM_EINVAL;
    sm__outbuf o = {0};
    yaml_emitter_t em;
    if (!yaml_emitter_initialize(&em)) return SM_ENOMEM;
    yaml_emitter_set_output(&em, sm__write, &o);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_indent(&em, 2);
    yaml_event_t ev;
    int rc = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
                     yaml_emitter_emit(&em, &ev) &&
                     yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
                     yaml_emitter_emit(&em, &ev) && sm__emit_node(&em, cfg->root) == 0 &&
                     yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev) &&
                     yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev) &&
                     yaml_emitter_flush(&em)
                 ? 0
                 : SM_ENOMEM;
    yaml_emitter_delete(&em);
    if (rc || o.oom || !o.data) {
        free(o.data);
        return o.oom || rc ? SM_ENOMEM : SM_EINTERNAL;
    }
    *out = o.data;
    if (len) *len = o.len;
    return 0;
}
