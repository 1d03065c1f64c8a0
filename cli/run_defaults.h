/* run_defaults.h - what a new pretraining run resolves before it starts, shared by pretrain and
 * augment-preview (and their --help): the image size of the data's square images, unless
 * --image-size was given, then the recipe's defaults for every option not given. */
#ifndef SIMCLR_RUN_DEFAULTS_H
#define SIMCLR_RUN_DEFAULTS_H

#include <stddef.h>

#include "dataset.h"
#include "opts.h"

/* ds: the opened training data, or NULL to open it from dc (--help; a dataset that does not
 * open leaves the image size alone). Writes a one-line account into line (may be NULL).
 * Returns 0, or -1 with sc_error set. */
int run_defaults(Opt **tables, int nt, int recipe, int *image_size, const DatasetConfig *dc,
                 const Dataset *ds, char *line, size_t n);

#endif
