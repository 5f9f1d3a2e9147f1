/* config_echo: the option table written out: the resolved YAML of a
 * config, the fit hash over the keys that change a trajectory, and the
 * --help text (see config.h). */
#include "facrnn/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

static const void *cfield(const fr_config *cfg, size_t off) { return (const char *)cfg + off; }

typedef struct {
    char *buf;
    size_t cap, len;
    int overflow;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->overflow) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= b->cap - b->len) {
        b->overflow = 1;
        return;
    }
    b->len += (size_t)n;
}

/* Shortest decimal that reads back to the same double, always with a '.'
 * so YAML 1.1 readers (PyYAML) type it as a float too. */
static void sb_double(sbuf *b, double v)
{
    char s[40];
    for (int prec = 15; prec <= 17; ++prec) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v) break;
    }
    char *e = strchr(s, 'e');
    if (!strchr(s, '.')) {
        if (e) {
            char tail[40];
            snprintf(tail, sizeof tail, "%s", e);
            snprintf(e, sizeof s - (size_t)(e - s), ".0%s", tail);
        } else {
            strcat(s, ".0");
        }
    }
    sb_printf(b, "%s", s);
}

/* A double-quoted YAML string: escape quotes, backslashes and control bytes. */
static void sb_quoted(sbuf *b, const char *s)
{
    sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
        if (*p == '"' || *p == '\\') sb_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) sb_printf(b, "\\x%02x", *p);
        else sb_printf(b, "%c", *p);
    }
    sb_printf(b, "\"");
}

static void sb_value(sbuf *b, const opt *o, const fr_config *cfg)
{
    const void *v = cfield(cfg, o->off);
    const int *cnt = o->off_n ? cfield(cfg, o->off_n) : NULL;
    const int *flag = o->off_flag ? cfield(cfg, o->off_flag) : NULL;
    switch (o->type) {
    case OT_INT: sb_printf(b, "%d", *(const int *)v); break;
    case OT_INT64: sb_printf(b, "%lld", *(const long long *)v); break;
    case OT_DOUBLE: sb_double(b, *(const double *)v); break;
    case OT_ENCSTD:
        if (*(const double *)v <= 0) sb_printf(b, "auto");
        else sb_double(b, *(const double *)v);
        break;
    case OT_BOOL: sb_printf(b, "%s", *(const int *)v ? "true" : "false"); break;
    case OT_ENUM:
        if (*(const char *)v) sb_printf(b, "%s", (const char *)v);
        else sb_printf(b, "\"\"");
        break;
    case OT_PATH: sb_quoted(b, v); break;
    case OT_INTLIST:
    case OT_DBLLIST:
    case OT_I64LIST:
    case OT_PSI:
        if (flag && *flag) {
            sb_printf(b, "learned");
            break;
        }
        if (*cnt == 0 && (o->flags & OF_NONEMPTY)) {
            sb_printf(b, "null");
            break;
        }
        sb_printf(b, "[");
        for (int i = 0; i < *cnt; ++i) {
            if (i) sb_printf(b, ", ");
            if (o->type == OT_INTLIST) sb_printf(b, "%d", ((const int *)v)[i]);
            else if (o->type == OT_I64LIST) sb_printf(b, "%lld", ((const long long *)v)[i]);
            else sb_double(b, ((const double *)v)[i]);
        }
        sb_printf(b, "]");
        break;
    case OT_PARTS: {
        const int *parts = v; /* (FR_CFG_MAX_PARTS, FR_CFG_MAX_GROUPS + 1), row = [G, h1..hG] */
        const int stride = FR_CFG_MAX_GROUPS + 1;
        if (*flag) {
            sb_printf(b, "all");
            break;
        }
        if (*cnt == 0) {
            sb_printf(b, "null");
            break;
        }
        sb_printf(b, "[");
        for (int p = 0; p < *cnt; ++p) {
            sb_printf(b, "%s[", p ? ", " : "");
            for (int g = 1; g <= parts[p * stride]; ++g) sb_printf(b, "%s%d", g > 1 ? ", " : "", parts[p * stride + g]);
            sb_printf(b, "]");
        }
        sb_printf(b, "]");
        break;
    }
    }
}

fr_err fr_config_to_yaml(const fr_config *cfg, char *buf, size_t cap)
{
    if (!cap) return FR_FAIL(FR_EINVAL, "config: fr_config_to_yaml needs a buffer");
    sbuf b = {buf, cap, 0, 0};
    buf[0] = '\0';
    sb_printf(&b, "# facrnn configuration, every key resolved\n");
    size_t prev_len = 0;
    const char *prev = NULL;
    for (int i = 0; i < fr_cfg_nopts; ++i) {
        const opt *o = &fr_cfg_opts[i];
        const char *dot = strchr(o->key, '.');
        size_t sl = (size_t)(dot - o->key);
        if (!prev || sl != prev_len || strncmp(prev, o->key, sl)) sb_printf(&b, "%.*s:\n", (int)sl, o->key);
        prev = o->key;
        prev_len = sl;
        sb_printf(&b, "  %s: ", dot + 1);
        sb_value(&b, o, cfg);
        sb_printf(&b, "\n");
    }
    if (b.overflow)
        return FR_FAIL(FR_EINVAL, "config: YAML text does not fit in %zu bytes (use FR_CFG_YAML_MAX)", cap);
    return FR_OK;
}

uint64_t fr_config_fit_hash(const fr_config *cfg)
{
    static const char *const hashed[] = {"data.", "model.", "train.", "cv."};
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 offset basis */
    char line[FR_CFG_PATH_MAX * 4 + 256], dline[sizeof line];
    fr_config def;
    fr_config_defaults(&def);
    for (int i = 0; i < fr_cfg_nopts; ++i) {
        const opt *o = &fr_cfg_opts[i];
        int in = 0;
        for (int s = 0; s < 4; ++s) in |= !strncmp(o->key, hashed[s], strlen(hashed[s]));
        if (!in || (o->flags & OF_NOHASH)) continue;
        sbuf b = {line, sizeof line, 0, 0};
        sb_printf(&b, "%s: ", o->key);
        sb_value(&b, o, cfg);
        sb_printf(&b, "\n");
        if (o->flags & OF_HASH_SET) {
            sbuf d = {dline, sizeof dline, 0, 0};
            sb_printf(&d, "%s: ", o->key);
            sb_value(&d, o, &def);
            sb_printf(&d, "\n");
            if (d.len == b.len && !memcmp(line, dline, b.len)) continue;
        }
        for (size_t k = 0; k < b.len; ++k) {
            h ^= (unsigned char)line[k];
            h *= 1099511628211ULL; /* FNV prime */
        }
    }
    return h;
}

static const char *type_name(const opt *o)
{
    switch (o->type) {
    case OT_INT: return "int";
    case OT_INT64: return "int64";
    case OT_DOUBLE: return "float";
    case OT_BOOL: return "bool";
    case OT_ENUM: return "choice";
    case OT_PATH: return "string";
    case OT_INTLIST: return "int list";
    case OT_DBLLIST: return "float list";
    case OT_I64LIST: return "int64 list";
    case OT_PSI: return "float list|learned";
    case OT_PARTS: return "int lists|all";
    case OT_ENCSTD: return "auto|float";
    }
    return "?";
}

/* An option's allowed values: the enum choices ("a|b") or the numeric
 * range ("lo..hi", "> lo..hi" for an exclusive minimum); "" for paths and
 * booleans. The --help text and the Markdown page both print this. */
static void opt_range(const opt *o, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (o->type == OT_ENUM)
        snprintf(buf, cap, "%s%s", o->choices[0] == '|' ? "\"\"|" : "", o->choices[0] == '|' ? o->choices + 1 : o->choices);
    else if (o->type != OT_PATH && o->type != OT_BOOL)
        snprintf(buf, cap, "%s%.10g..%.10g", (o->flags & OF_GT) ? "> " : "", o->min, o->max);
}

void fr_config_write_help(FILE *out)
{
    fprintf(out, "configuration keys (YAML sections data, model, train, cv, sweep, output;\n"
                 "override any key with --set key=value, the value written as YAML, e.g.\n"
                 "--set model.groups=[3,2,1] or --set sweep.partitions=[[3,3],[6]]):\n");
    for (int i = 0; i < fr_cfg_nopts; ++i) {
        const opt *o = &fr_cfg_opts[i];
        char range[96] = "";
        opt_range(o, range, sizeof range);
        fprintf(out, "  %-26s %-18s default %-18s %s%s%s%s\n", o->key, type_name(o), o->def, o->help,
                *range ? (o->type == OT_ENUM ? " {" : " (range ") : "", range, *range ? (o->type == OT_ENUM ? "}" : ")") : "");
    }
}

void fr_config_print_help(void) { fr_config_write_help(stdout); }


/* The option table as a Markdown page (docs/config.md is this output, and
 * tests/sh/test_docs.sh fails when the two differ). Walks the same table as
 * fr_config_write_help, so the page cannot drift from the parser. Not
 * collective. */
static void md_cell(FILE *out, const char *s, int code)
{
    /* '|' would end the table cell (GitHub tables take "\|" even inside a code
     * span); '<' could start an HTML tag outside one. */
    if (code) fputc('`', out);
    for (; *s; ++s) {
        if (*s == '|') fputs("\\|", out);
        else if (*s == '<' && !code) fputs("&lt;", out);
        else fputc(*s, out);
    }
    if (code) fputc('`', out);
}

void fr_config_write_markdown(FILE *out)
{
    fprintf(out,
            "# Configuration keys\n\n"
            "<!-- Generated from the option table in src/io/config.c by `facrnn config --markdown`;\n"
            "     do not edit by hand: tests/sh/test_docs.sh fails when this page is out of date. -->\n\n"
            "One YAML file describes a fit or a sweep, in the sections");
    for (int s = 0; s < fr_cfg_nsections; ++s)
        fprintf(out, "%s `%s`", s == 0 ? "" : s == fr_cfg_nsections - 1 ? " and" : ",", fr_cfg_sections[s]);
    fprintf(out,
            ".\nEvery key has a default, so a file names only what it changes. Unknown keys, wrong types and\n"
            "out-of-range values are errors that name the key and the YAML line. Any key can be overridden\n"
            "on the command line with `--set key=value`, the value written as YAML:\n"
            "`--set model.groups=[3,2,1]` or `--set sweep.partitions=[[3,3],[6]]`. The resolved\n"
            "configuration (every key) is stored in each results file as the root attribute `config`.\n\n"
            "The input file (`data.path`) is described in [formats.md](formats.md), the model behind the\n"
            "`model.*` and `train.*` keys in [model.md](model.md), and the `sweep.*` keys in\n"
            "[selection.md](selection.md). `facrnn config` prints the same table as text.\n\n"
            "| key | type | default | range | description |\n"
            "|---|---|---|---|---|\n");
    for (int i = 0; i < fr_cfg_nopts; ++i) {
        const opt *o = &fr_cfg_opts[i];
        char range[96] = "";
        opt_range(o, range, sizeof range);
        fputs("| ", out);
        md_cell(out, o->key, 1);
        fputs(" | ", out);
        md_cell(out, type_name(o), 0);
        fputs(" | ", out);
        md_cell(out, o->def, 1);
        fputs(" | ", out);
        if (range[0]) md_cell(out, range, o->type == OT_ENUM);
        fputs(" | ", out);
        md_cell(out, o->help, 0);
        fputs(" |\n", out);
    }
}
