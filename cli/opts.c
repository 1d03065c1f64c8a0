/* opts.c - see opts.h. */
#include "opts.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

Opt *opts_find(Opt **tables, int ntables, const char *name) {
    for (int t = 0; t < ntables; t++)
        for (Opt *o = tables[t]; o->name; o++)
            if (strcmp(o->name, name) == 0) return o;
    for (int t = 0; t < ntables; t++)
        for (Opt *o = tables[t]; o->name; o++)
            if (o->alias && strcmp(o->alias, name) == 0) return o;
    return NULL;
}

static const char *(*help_fn)(void *, Opt **, int);
static void *help_ctx;
void opts_on_help(const char *(*fn)(void *ctx, Opt **tables, int ntables), void *ctx) {
    help_fn = fn;
    help_ctx = ctx;
}

/* Edit distance between a and b (both short option names). */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < c)
                c = d[i - 2][j - 2] + 1; /* a swap of two letters */
            d[i][j] = c;
        }
    return d[n][m];
}

/* The known option closest to `name`: a name containing it or contained in it, else the
 * smallest edit distance when it is small for the length; NULL when nothing is close. */
static const char *closest(Opt **tables, int ntables, const char *name) {
    const char *best = NULL;
    int bd = 1 << 30;
    size_t n = strlen(name);
    for (int t = 0; t < ntables; t++)
        for (Opt *o = tables[t]; o->name; o++) {
            const char *names[2] = {o->name, o->alias};
            for (int k = 0; k < 2 && names[k]; k++) {
                int dist = edit_distance(name, names[k]);
                if (n >= 3 && (strstr(names[k], name) || strstr(name, names[k])))
                    dist = dist < 2 ? dist : 2; /* --knn for --knn-k, --image for --image-size */
                if (dist < bd) bd = dist, best = o->name;
            }
        }
    int limit = n <= 4 ? 1 : n <= 8 ? 2 : 3;
    return bd <= limit ? best : NULL;
}

int opts_was_set(Opt **tables, int ntables, const char *name) {
    Opt *o = opts_find(tables, ntables, name);
    return o && o->set;
}

char *opts_choice_name(const char *choices, int i) {
    const char *s = choices;
    for (int k = 0; k < i && s; k++) {
        s = strchr(s, '|');
        if (s) s++;
    }
    if (!s) return sc_strdup("?");
    const char *e = strchr(s, '|');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    char *r = sc_xrealloc(NULL, n + 1);
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

static int choice_index(const char *choices, const char *v) {
    size_t vn = strlen(v);
    int i = 0;
    for (const char *s = choices; s; i++) {
        const char *e = strchr(s, '|');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == vn && strncmp(s, v, n) == 0) return i;
        s = e ? e + 1 : NULL;
    }
    return -1;
}

/* Shortest decimal that reads back as the same float / double (0.0003, not 0.000300000014). */
static void format_real(char *buf, size_t n, double v, int is_float) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (is_float ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v) return;
    }
}

static void format_value(char *buf, size_t n, const Opt *o) {
    switch (o->type) {
    case OPT_INT: snprintf(buf, n, "%d", *(int *)o->dst); break;
    case OPT_INT64: snprintf(buf, n, "%lld", *(long long *)o->dst); break;
    case OPT_FLOAT: format_real(buf, n, *(float *)o->dst, 1); break;
    case OPT_DOUBLE: format_real(buf, n, *(double *)o->dst, 0); break;
    case OPT_STR: {
        const char *s = *(const char **)o->dst;
        snprintf(buf, n, "%s", s ? s : "");
        break;
    }
    case OPT_FLAG: snprintf(buf, n, "%s", *(int *)o->dst ? "on" : "off"); break;
    case OPT_CHOICE: {
        char *c = opts_choice_name(o->choices, *(int *)o->dst);
        snprintf(buf, n, "%s", c);
        free(c);
        break;
    }
    default: buf[0] = 0;
    }
}

static void print_help(const char *cmd, const char *summary, Opt **tables, int ntables,
                       const char *resolved, char **before) {
    printf("usage: simclr %s [options]\n%s\n\n", cmd, summary ? summary : "");
    if (resolved) printf("%s\n", resolved);
    printf("options (the value that will be used in brackets%s):\n",
           resolved ? "; * where the recipe or the data set it" : "");
    int k = 0;
    for (int t = 0; t < ntables; t++)
        for (Opt *o = tables[t]; o->name; o++, k++) {
            char val[256], left[128];
            format_value(val, sizeof val, o);
            const char *arg = o->type == OPT_FLAG     ? ""
                              : o->type == OPT_CHOICE ? o->choices
                              : o->type == OPT_STR    ? "STR"
                              : o->type == OPT_INT || o->type == OPT_INT64 ? "N"
                                                                            : "X";
            snprintf(left, sizeof left, "--%s %s", o->name, arg);
            int changed = before && before[k] && strcmp(before[k], val) && !o->set;
            printf("  %-34s %s%s%s%s [%s%s]\n", left, o->help ? o->help : "",
                   o->alias ? " (also --" : "", o->alias ? o->alias : "", o->alias ? ")" : "",
                   *val ? val : "none", changed ? " *" : o->set ? ", given" : "");
        }
    printf("  %-34s %s\n", "--help, -h", "print this help and exit");
}

/* --help: the values after the command's resolution (recipe, data), then exit 0. */
static void help_and_exit(const char *cmd, const char *summary, Opt **tables, int ntables) {
    int n = 0;
    for (int t = 0; t < ntables; t++)
        for (Opt *o = tables[t]; o->name; o++) n++;
    char **before = calloc((size_t)n + 1, sizeof(char *));
    const char *resolved = NULL;
    if (help_fn && before) {
        int k = 0;
        for (int t = 0; t < ntables; t++)
            for (Opt *o = tables[t]; o->name; o++, k++) {
                char val[256];
                format_value(val, sizeof val, o);
                before[k] = sc_strdup(val);
            }
        resolved = help_fn(help_ctx, tables, ntables);
    }
    print_help(cmd, summary, tables, ntables, resolved, help_fn ? before : NULL);
    exit(0);
}

static int range_error(const Opt *o, const char *v, const char *what) {
    if (o->min < o->max)
        return sc_error_set("--%s: expected %s in [%g, %g], got '%s'", o->name, what, o->min,
                            o->max, v);
    return sc_error_set("--%s: expected %s, got '%s'", o->name, what, v);
}

/* Every live copy is also listed here, so that a copy still held when an option table goes out
 * of scope stays reachable for the life of the process (it is the value of a resolved
 * configuration), while a copy replaced by a later assignment is freed at once. */
static char **str_copies;
static size_t n_str_copies, cap_str_copies;

void opts_own_string(char *old, char *s) {
    for (size_t i = 0; old && i < n_str_copies; i++)
        if (str_copies[i] == old) {
            free(old);
            if (s) str_copies[i] = s;
            else str_copies[i] = str_copies[--n_str_copies];
            return;
        }
    if (!s) return;
    if (n_str_copies == cap_str_copies) {
        cap_str_copies = cap_str_copies ? 2 * cap_str_copies : 16;
        str_copies = sc_xrealloc(str_copies, cap_str_copies * sizeof *str_copies);
    }
    str_copies[n_str_copies++] = s;
}

int opts_assign(Opt *o, const char *v) {
    char *end;
    errno = 0;
    switch (o->type) {
    case OPT_INT:
    case OPT_INT64: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end) return range_error(o, v, "an integer");
        if (o->min < o->max && (x < o->min || x > o->max)) return range_error(o, v, "an integer");
        if (o->type == OPT_INT) {
            if (x < -2147483647LL || x > 2147483647LL) return range_error(o, v, "an integer");
            *(int *)o->dst = (int)x;
        } else
            *(long long *)o->dst = x;
        break;
    }
    case OPT_FLOAT:
    case OPT_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x)) return range_error(o, v, "a number");
        if (o->min < o->max && (x < o->min || x > o->max)) return range_error(o, v, "a number");
        if (o->type == OPT_FLOAT) *(float *)o->dst = (float)x;
        else *(double *)o->dst = x;
        break;
    }
    case OPT_STR:
        if (!*v) return sc_error_set("--%s: expected a non-empty value", o->name);
        if (o->owned) opts_own_string(*(char **)o->dst, NULL);
        o->owned = 0;
        *(const char **)o->dst = v;
        break;
    case OPT_CHOICE: {
        int i = choice_index(o->choices, v);
        if (i < 0) return sc_error_set("--%s: expected one of %s, got '%s'", o->name, o->choices, v);
        *(int *)o->dst = i;
        break;
    }
    case OPT_FLAG:
        if (!strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "true")) *(int *)o->dst = 1;
        else if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false")) *(int *)o->dst = 0;
        else return sc_error_set("--%s: expected on or off, got '%s'", o->name, v);
        break;
    default: return sc_error_set("--%s: bad option type", o->name);
    }
    return 0;
}

static int set_value(Opt *o, const char *v) {
    if (opts_assign(o, v)) return -1;
    o->set = 1;
    return 0;
}

int opts_parse(const char *cmd, const char *summary, int argc, char **argv, Opt **tables,
               int ntables, const char **pos, int *npos_inout) {
    int max_pos = npos_inout ? *npos_inout : 0, npos = 0;
    int only_pos = 0, help = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) help = 1;
        else if (!strcmp(argv[i], "--")) break;
    /* with --help, the rest of the line is read (to resolve the values) but errors are ignored */
#define FAIL(...) do { if (!help) return sc_error_set(__VA_ARGS__); goto next; } while (0)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) continue;
        if (only_pos || a[0] != '-' || a[1] != '-' || a[2] == 0) {
            if (!only_pos && !strcmp(a, "--")) {
                only_pos = 1;
                continue;
            }
            if (a[0] == '-' && a[1] && !only_pos) {
                const char *c = closest(tables, ntables, a + 1);
                if (c) FAIL("%s: unknown option '%s' (did you mean --%s? options start with --)", cmd, a, c);
                FAIL("%s: unknown option '%s' (options start with --; see --help)", cmd, a);
            }
            if (npos >= max_pos) FAIL("%s: unexpected argument '%s' (see --help)", cmd, a);
            pos[npos++] = a;
            continue;
        }
        char name[128];
        const char *eq = strchr(a + 2, '=');
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (n >= sizeof name) FAIL("%s: option name too long: %s", cmd, a);
        memcpy(name, a + 2, n);
        name[n] = 0;
        Opt *o = opts_find(tables, ntables, name);
        if (!o && !strncmp(name, "no-", 3)) {
            Opt *f = opts_find(tables, ntables, name + 3);
            if (f && f->type == OPT_FLAG && !eq) {
                *(int *)f->dst = 0;
                f->set = 1;
                continue;
            }
            /* a choice that starts "off|on|..." (a flag grown more values) keeps the flag forms */
            if (f && f->type == OPT_CHOICE && !eq && !strncmp(f->choices, "off|on", 6)) {
                if (set_value(f, "off")) return -1;
                continue;
            }
        }
        if (!o) {
            const char *c = closest(tables, ntables, name);
            if (c) FAIL("%s: unknown option '--%s' (did you mean --%s? see --help)", cmd, name, c);
            FAIL("%s: unknown option '--%s' (see --help)", cmd, name);
        }
        if (o->type == OPT_FLAG && !eq) {
            *(int *)o->dst = 1;
            o->set = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && o->type == OPT_CHOICE && !strncmp(o->choices, "off|on", 6) &&
            (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2)))
            v = "on"; /* bare --name of an "off|on|..." choice, as the flag it was */
        if (!v) {
            if (i + 1 >= argc) FAIL("--%s: missing value", name);
            v = argv[++i];
        }
        if (set_value(o, v) && !help) return -1; /* sc_error names the option */
    next:;
    }
#undef FAIL
    if (help) help_and_exit(cmd, summary, tables, ntables);
    if (npos_inout) *npos_inout = npos;
    for (int t = 0; t < ntables; t++)
        for (Opt *o = tables[t]; o->name; o++)
            if (o->output && o->set && o->type == OPT_STR && sc_output_check(*(const char **)o->dst))
                return sc_error_prefix("--%s", o->name);
    return 0;
}

void opts_print(FILE *f, Opt **tables, int ntables) {
    for (int t = 0; t < ntables; t++)
        for (Opt *o = tables[t]; o->name; o++) {
            char val[512];
            format_value(val, sizeof val, o);
            fprintf(f, "  %-22s %s%s\n", o->name, val, o->set ? "" : "  (default)");
        }
}


void opts_write_json(FILE *f, Opt **tables, int ntables) {
    fputc('{', f);
    int first = 1;
    for (int t = 0; t < ntables; t++)
        for (Opt *o = tables[t]; o->name; o++) {
            char val[512];
            format_value(val, sizeof val, o);
            fprintf(f, "%s", first ? "" : ", ");
            first = 0;
            sc_json_string(f, o->name);
            fputs(": ", f);
            if (o->type == OPT_INT || o->type == OPT_INT64 || o->type == OPT_FLOAT ||
                o->type == OPT_DOUBLE)
                fputs(val, f);
            else if (o->type == OPT_STR && !*(const char **)o->dst)
                fputs("null", f);
            else
                sc_json_string(f, val);
        }
    fputs("}\n", f);
}
