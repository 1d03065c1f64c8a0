/* recipe.c - see recipe.h. */
#include "recipe.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "json.h"

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
