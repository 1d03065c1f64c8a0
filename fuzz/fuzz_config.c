/* fuzz_config.c - saved configurations and recipes: the flat JSON object of config.json and of a
 * checkpoint's "config" metadata, applied to pretrain's option tables (opts_apply_json, the
 * --resume and evaluation path), looked up (json_get), then a recipe applied over the result.
 * The input is the JSON text; its first byte also picks keep_set, the recipe and the image size. */
#include "fuzz.h"

#include "recipe.h"
#include "run_cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1 << 16)) return 0;
    char *json = malloc(size);
    memcpy(json, data + 1, size - 1);
    json[size - 1] = 0;
    int sel = data[0];

    ModelConfig mc;
    TrainOptions to;
    DatasetConfig dc;
    AugmentConfig ac;
    LoaderConfig lc;
    RunTables rt; /* pretrain's (and finetune's) library option tables */
    run_tables_init(&rt, &mc, &to, &dc, &ac, &lc);
    const char *out = NULL;
    long long steps = 0;
    int force = 0, recipe = 0;
    double eps = 0;
    Opt own[] = {{"out", OPT_STR, &out, "run folder"},
                 {"max-steps", OPT_INT64, &steps, "steps", .min = 0, .max = 1e15},
                 {"force", OPT_FLAG, &force, "overwrite"},
                 {"recipe", OPT_CHOICE, &recipe, "recipe", .choices = RECIPE_CHOICES},
                 {"eps", OPT_DOUBLE, &eps, "a double", .min = 0, .max = 1},
                 {0}};
    Opt *tables[] = {own, rt.model, rt.optim, rt.data, rt.aug, rt.loader};
    const int NT = (int)(sizeof tables / sizeof *tables);
    if (sel & 1) own[0].set = 1, rt.model[0].set = 1; /* as if given on the command line */
    static const char *const skip[] = {"resume", "out", "force", NULL};

    fuzz_check(opts_apply_json(tables, NT, json, sel & 2, (sel & 4) ? skip : NULL));
    char v[64];
    if (json_get(json, "lr", v, sizeof v) == 0 && !memchr(v, 0, sizeof v)) abort();
    (void)json_get(json, "step", v, 1);
    fuzz_check(recipe_apply(sel >> 7, tables, NT, (sel & 8) ? 32 : 96));
    /* opt_assign's copies of string values are left to the caller */
    for (int t = 0; t < NT; t++)
        for (Opt *o = tables[t]; o->name; o++)
            if (o->type == OPT_STR && o->owned) free(*(char **)o->dst);
    free(json);
    return 0;
}
