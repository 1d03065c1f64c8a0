/* recipe.h - named training recipes as defaults over option tables, and option values from JSON.
 *
 * A recipe is a list of "option = value" defaults. recipe_apply() writes each one into the
 * option of that name found in the subcommand's tables, unless the user gave that option on the
 * command line (Opt.set): any explicit option overrides the recipe. Options a table does not
 * hold are skipped, so one recipe serves every subcommand.
 *
 *   sthalles (default): the reference PyTorch code, with its schedule done right
 *       arch resnet18, out-dim 128, head-layers 2, optimizer adam, lr 3e-4, lr-scaling none,
 *       weight-decay 1e-4, temperature 0.07, batch-size 256, blur-prob 1, normalize none,
 *       warmup-epochs 10 then cosine to 0 over the real number of steps.
 *       STL-10 split: unlabeled (its run.py).
 *   blog: the "Exploring SimCLR" write-up's own settings: sthalles' with out-dim 64,
 *       temperature 0.5, weight-decay 0, blur-prob 0.5; STL-10 split train+unlabeled.
 *   paper: Chen et al. 2020 (Section 2.3, Appendix B.9 for small images)
 *       arch resnet50, head-bn all (google's head), optimizer lars, lr 0.3 with lr-scaling
 *       linear (0.3 x batch/256), momentum 0.9, weight-decay 1e-6, exclude-bn-bias on,
 *       warmup-epochs 10, cosine; STL-10 split train+unlabeled;
 *       images <= 32 px (B.9, google's CIFAR-10 command): stem cifar, lr 1.0 (x batch/256),
 *       batch-size 512, blur-prob 0, temperature 0.5, jitter-strength 0.5;
 *       otherwise: stem imagenet, blur-prob 0.5, temperature 0.1, jitter-strength 1.
 *
 * The same machinery re-applies a saved configuration (the flat JSON object opts_write_json
 * writes) on --resume: opts_apply_json().
 */
#ifndef SIMCLR_RECIPE_H
#define SIMCLR_RECIPE_H

#include "json.h"
#include "opts.h"

enum { RECIPE_STHALLES = 0, RECIPE_PAPER = 1, RECIPE_BLOG = 2, RECIPE_COUNT = 3 };
#define RECIPE_CHOICES "sthalles|paper|blog"

/* Writes the recipe's defaults into every option that was not set. image_size is the effective
 * image size (the --image-size value, or the dataset's own size when not given): it picks the
 * small-image variant of the paper recipe. Returns 0, or -1 on a bad internal value. */
int recipe_apply(int recipe, Opt **tables, int ntables, int image_size);

/* The recipe's default for one option ("lr" -> "0.3"), NULL when the recipe leaves it alone. */
const char *recipe_value(int recipe, const char *name, int image_size);

/* The STL-10 split a recipe pretrains on when --split is not given ("unlabeled" or
 * "train+unlabeled"). */
const char *recipe_stl10_split(int recipe);

/* Parses a value given as text into o->dst (same syntax as the command line; flags take
 * on/off, strings "null" for none). Does not mark the option as set. */
int opt_assign(Opt *o, const char *value);

/* Applies a flat JSON object {"name": value, ...} to the tables. Options with Opt.set are left
 * alone when keep_set != 0; names in `skip` (NULL-terminated, may be NULL) and names unknown to
 * the tables are ignored (a newer file may carry more). Returns 0, or -1 with sc_error set on a
 * malformed object. */
int opts_apply_json(Opt **tables, int ntables, const char *json, int keep_set,
                    const char *const *skip);

#endif
