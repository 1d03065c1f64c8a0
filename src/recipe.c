/* recipe.c - see recipe.h. Also a tiny reader for flat JSON objects (the saved configuration
 * and the metrics lines): strings, numbers, true/false/null; nested values are skipped. */
#include "recipe.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- recipes ----------------------------------------------------------------------------- */

typedef struct {
    const char *name, *value;
} Default;

static const Default sthalles[] = {
    {"arch", "resnet18"},      {"out-dim", "128"},         {"head-layers", "2"},
    {"optimizer", "adam"},     {"lr", "0.0003"},           {"lr-scaling", "none"},
    {"weight-decay", "0.0001"}, {"temperature", "0.07"},   {"batch-size", "256"},
    {"blur-prob", "1"},        {"normalize", "none"},      {"warmup-epochs", "10"},
    {"schedule", "cosine"},    {NULL, NULL}};

/* The "Exploring SimCLR" write-up's own settings (sthalles' code of that time): sthalles'
 * recipe with z of 64 dimensions, temperature 0.5, Adam without weight decay, blur p 0.5. */
static const Default blog[] = {
    {"out-dim", "64"}, {"temperature", "0.5"}, {"weight-decay", "0"}, {"blur-prob", "0.5"},
    {NULL, NULL}};

static const Default paper_common[] = {
    {"arch", "resnet50"},      {"out-dim", "128"},         {"head-layers", "2"},
    {"optimizer", "lars"},     {"lr", "0.3"},              {"lr-scaling", "linear"},
    {"momentum", "0.9"},       {"weight-decay", "0.000001"}, {"exclude-bn-bias", "on"},
    {"warmup-epochs", "10"},   {"schedule", "cosine"},     {"normalize", "none"},
    {"head-bn", "all"},        {NULL, NULL}};

/* Appendix B.9 / google-research/simclr's CIFAR-10 command: lr 1.0 per 256 images (linearly
 * scaled: 2.0 at batch 512), batch 512, wd 1e-6, tau 0.5, colour strength 0.5, no blur. */
static const Default paper_small[] = {
    {"stem", "cifar"},   {"blur-prob", "0"},      {"temperature", "0.5"},
    {"jitter-strength", "0.5"}, {"lr", "1"},      {"batch-size", "512"},
    {NULL, NULL}};

static const Default paper_large[] = {
    {"stem", "imagenet"}, {"blur-prob", "0.5"}, {"temperature", "0.1"}, {"jitter-strength", "1"},
    {NULL, NULL}};

static const char *lookup(const Default *d, const char *name) {
    for (; d->name; d++)
        if (!strcmp(d->name, name)) return d->value;
    return NULL;
}

const char *recipe_value(int recipe, const char *name, int image_size) {
    if (recipe == RECIPE_STHALLES) return lookup(sthalles, name);
    if (recipe == RECIPE_BLOG) {
        const char *v = lookup(blog, name);
        return v ? v : lookup(sthalles, name);
    }
    if (recipe == RECIPE_PAPER) {
        const char *v = lookup(image_size <= 32 ? paper_small : paper_large, name);
        return v ? v : lookup(paper_common, name);
    }
    return NULL;
}

int recipe_apply(int recipe, Opt **tables, int ntables, int image_size) {
    if (recipe < 0 || recipe >= RECIPE_COUNT)
        return sc_error_set("recipe.name: unknown recipe %d", recipe);
    for (int t = 0; t < ntables; t++)
        for (Opt *o = tables[t]; o->name; o++) {
            if (o->set) continue;
            const char *v = recipe_value(recipe, o->name, image_size);
            if (v && opt_assign(o, v)) return sc_error_prefix("recipe");
        }
    return 0;
}

const char *recipe_stl10_split(int recipe) {
    /* sthalles' run.py pretrains on 'unlabeled'; the write-up on train+unlabeled; the paper has
     * no STL-10 setting: all 105k images */
    return recipe == RECIPE_STHALLES ? "unlabeled" : "train+unlabeled";
}

/* ---- assigning a value given as text ------------------------------------------------------ */

/* Like opts_assign, but a string is copied (v may be a temporary buffer) and "null" or "" mean
 * no value, as a saved configuration writes them. */
int opt_assign(Opt *o, const char *v) {
    if (o->type == OPT_STR) {
        /* The string must outlive v: a copy, owned by the option until it is assigned again. */
        char *s = strcmp(v, "null") && *v ? sc_strdup(v) : NULL;
        opts_own_string(o->owned ? *(char **)o->dst : NULL, s);
        *(const char **)o->dst = s;
        o->owned = s != NULL;
        return 0;
    }
    return opts_assign(o, v);
}

/* ---- flat JSON objects ------------------------------------------------------------------- */

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Parses a JSON string at p (pointing at '"') into buf; returns the pointer after it or NULL. */
static const char *parse_string(const char *p, char *buf, size_t n) {
    if (*p != '"') return NULL;
    p++;
    size_t k = 0;
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\') {
            char e = *p++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned u = 0;
                for (int i = 0; i < 4; i++) {
                    if (!isxdigit((unsigned char)p[i])) return NULL;
                    u = u * 16 + (unsigned)(isdigit((unsigned char)p[i]) ? p[i] - '0' : (tolower((unsigned char)p[i]) - 'a' + 10));
                }
                p += 4;
                c = u < 0x80 ? (char)u : '?';
                break;
            }
            case 0: return NULL;
            default: c = e;
            }
        }
        if (k + 1 < n) buf[k++] = c;
    }
    if (*p != '"') return NULL;
    if (n) buf[k] = 0;
    return p + 1;
}

/* Parses any value; scalars are copied as text into buf (strings unquoted), nested values are
 * skipped and give "". Returns the pointer after the value or NULL. */
static const char *parse_value(const char *p, char *buf, size_t n) {
    p = skip_ws(p);
    if (*p == '"') return parse_string(p, buf, n);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        do {
            if (*p == '"') {
                char tmp[1];
                p = parse_string(p, tmp, 0);
                if (!p) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            else if (*p == '}' || *p == ']') depth--;
            else if (!*p) return NULL;
            p++;
        } while (depth > 0);
        if (n) buf[0] = 0;
        return p;
    }
    const char *s = p;
    while (*p && *p != ',' && *p != '}' && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') p++;
    if (p == s) return NULL;
    size_t len = (size_t)(p - s);
    if (len >= n) len = n ? n - 1 : 0;
    if (n) {
        memcpy(buf, s, len);
        buf[len] = 0;
    }
    return p;
}

typedef int (*PairFn)(void *ctx, const char *key, const char *value);

static int json_each(const char *json, PairFn fn, void *ctx) {
    char key[256], val[4096];
    const char *p = skip_ws(json);
    if (*p != '{') return sc_error_set("expected a JSON object");
    p = skip_ws(p + 1);
    if (*p == '}') return 0;
    for (;;) {
        p = parse_string(skip_ws(p), key, sizeof key);
        if (!p) return sc_error_set("malformed JSON object (bad key)");
        p = skip_ws(p);
        if (*p != ':') return sc_error_set("malformed JSON object (missing ':' after \"%s\")", key);
        p = parse_value(p + 1, val, sizeof val);
        if (!p) return sc_error_set("malformed JSON object (bad value of \"%s\")", key);
        int r = fn(ctx, key, val);
        if (r) return r;
        p = skip_ws(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}') return 0;
        return sc_error_set("malformed JSON object (expected ',' or '}' after \"%s\")", key);
    }
}

typedef struct {
    Opt **tables;
    int ntables, keep_set;
    const char *const *skip;
} ApplyCtx;

static int apply_pair(void *vctx, const char *key, const char *value) {
    ApplyCtx *c = vctx;
    if (c->skip)
        for (const char *const *s = c->skip; *s; s++)
            if (!strcmp(*s, key)) return 0;
    Opt *o = opts_find(c->tables, c->ntables, key);
    if (!o || (c->keep_set && o->set)) return 0;
    return opt_assign(o, value);
}

int opts_apply_json(Opt **tables, int ntables, const char *json, int keep_set,
                    const char *const *skip) {
    ApplyCtx c = {tables, ntables, keep_set, skip};
    return json_each(json, apply_pair, &c);
}

typedef struct {
    const char *key;
    char *buf;
    size_t n;
    int found;
} GetCtx;

static int get_pair(void *vctx, const char *key, const char *value) {
    GetCtx *c = vctx;
    if (c->found || strcmp(key, c->key)) return 0;
    snprintf(c->buf, c->n, "%s", value);
    c->found = 1;
    return 0;
}

int json_get(const char *json, const char *key, char *buf, size_t n) {
    GetCtx c = {key, buf, n, 0};
    if (json_each(json, get_pair, &c)) return -1;
    return c.found ? 0 : -1;
}
