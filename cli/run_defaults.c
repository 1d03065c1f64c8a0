/* run_defaults.c - see run_defaults.h. */
#include "run_defaults.h"

#include <stdio.h>
#include <stdlib.h>

#include "recipe.h"

/* The image side a dataset kind always has (0: known only once opened). */
static int fixed_size(int kind) {
    return kind == DATASET_STL10 ? 96 : kind == DATASET_CIFAR10 ? 32 : kind == DATASET_FASHION_MNIST ? 28 : 0;
}

int run_defaults(Opt **tables, int nt, int recipe, int *image_size, const DatasetConfig *dc,
                 const Dataset *ds, char *line, size_t n) {
    char from_data[160] = "";
    if (!opts_was_set(tables, nt, "image-size")) {
        Dataset *own = NULL;
        if (!ds && dc && dataset_open(&own, dc) == 0) ds = own;
        int h = 0, w = 0;
        if (ds) dataset_image_size(ds, &h, &w);
        if (h > 0 && h == w) {
            *image_size = h;
            snprintf(from_data, sizeof from_data, ", image size %d from %s", h, dataset_describe(ds));
        } else if (!ds && dc && fixed_size(dc->kind)) { /* --help without the files at hand */
            *image_size = fixed_size(dc->kind);
            snprintf(from_data, sizeof from_data, ", image size %d (the dataset's own)", *image_size);
        }
        if (own) dataset_close(own);
    }
    if (recipe_apply(recipe, tables, nt, *image_size)) return -1;
    if (line) {
        char *name = opts_choice_name(RECIPE_CHOICES, recipe);
        snprintf(line, n, "recipe %s%s", name, from_data);
        free(name);
    }
    return 0;
}
