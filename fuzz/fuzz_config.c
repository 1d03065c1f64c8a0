/* fuzz_config.c - saved configurations and recipes: the flat JSON object of config.json and of a
 * checkpoint's "config" metadata, applied to pretrain's option tables (opts_apply_json, the
 * --resume and evaluation path), looked up (json_get), then a recipe applied over the result.
 * The input is the JSON text; its first byte also picks keep_set, the recipe and the image size. */
#include "fuzz.h"

#include "augment.h"
#include "dataset.h"
#include "loader.h"
#include "model.h"
#include "optim.h"
#include "option_tables.h"
#include "recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1 << 16)) return 0;
    char *json = malloc(size);
    memcpy(json, data + 1, size - 1);
    json[size - 1] = 0;
    int sel = data[0];

    ModelConfig mc;
    model_config_default(&mc);
    TrainOptions to;
    train_options_default(&to);
    DatasetConfig dc;
    dataset_config_default(&dc);
    AugmentConfig ac;
    augment_config_default(&ac);
    LoaderConfig lc;
    loader_config_default(&lc);
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
    Opt model_tab[MODEL_OPTS_MAX];
    model_opts(model_tab, &mc);
    Opt optim_tab[OPTIM_NUM_OPTS + 1];
    optim_opts(optim_tab, &to);
    Opt data_tab[DATASET_OPTS_MAX];
    dataset_opts(data_tab, &dc);
    Opt aug_tab[AUGMENT_OPTS_MAX];
    augment_opts(aug_tab, &ac);
    Opt loader_tab[LOADER_OPTS_MAX];
    loader_opts(loader_tab, &lc);
    Opt *tables[] = {own, model_tab, optim_tab, data_tab, aug_tab, loader_tab};
    const int NT = (int)(sizeof tables / sizeof *tables);
    if (sel & 1) own[0].set = 1, model_tab[0].set = 1; /* as if given on the command line */
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
