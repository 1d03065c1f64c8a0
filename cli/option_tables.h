/* option_tables.h - the command line's view of the library: the option-table fragments of the
 * modules (model, optimizer, data, augmentation, loader, loss), and the option each library
 * parameter is set by, so that library messages ("model.head_layers: expected 0..8, got 9")
 * reach the user as "--head-layers: expected 0..8, got 9".
 *
 * The library (src/) knows nothing of options: its headers declare plain config structs and its
 * messages name parameters as module.field (common.h). Every subcommand builds its table from
 * these fragments, so an option has one name, one type and one help text everywhere.
 */
#ifndef SIMCLR_OPTION_TABLES_H
#define SIMCLR_OPTION_TABLES_H

#include "augment.h"
#include "contrast.h"
#include "dataset.h"
#include "loader.h"
#include "model.h"
#include "opts.h"
#include "optim.h"

/* The option that sets a library parameter ("loader.batch_size" -> "--batch-size"), NULL when
 * the parameter has no option. main() registers it with sc_error_names(). */
const char *cli_option_name(const char *key);

/* ---- the modules' option fragments ---------------------------------------------------------
 * Each fills a table whose destinations point into the module's config struct. */
/* --arch --stem --width --image-size --head-layers --head-hidden --head-bn --out-dim
 * --zero-init-residual, then a {0} terminator; out holds MODEL_OPTS_MAX entries. Returns the
 * number of options. */
#define MODEL_OPTS_MAX 10
int model_opts(Opt *out, ModelConfig *cfg);
/* --optimizer --lr --lr-scaling --momentum --nesterov --weight-decay --exclude-bn-bias
 * --warmup-epochs --warmup-steps --schedule --temperature (OPTIM_NUM_OPTS entries, then {0});
 * tab holds OPTIM_NUM_OPTS + 1 entries. Returns tab. */
#define OPTIM_NUM_OPTS 11
Opt *optim_opts(Opt *tab, TrainOptions *t);
/* --loss --similarity --margin (tau is --temperature of the optimizer table); out holds
 * CONTRAST_OPTS_MAX entries. */
#define CONTRAST_OPTS_MAX 4
void contrast_opts(Opt *out, ContrastConfig *c);
/* --dataset --data --split --labels --fold --cifar100-labels --strict-images --max-image-pixels */
#define DATASET_OPTS_MAX 10
void dataset_opts(Opt tab[DATASET_OPTS_MAX], DatasetConfig *c);
/* --augment --normalize --views --crop-min-scale --crop-max-scale --crop-ratio-min
 * --crop-ratio-max --flip-prob --jitter-strength --jitter-prob --gray-prob --blur-prob
 * --blur-sigma-min --blur-sigma-max --normalize-stats, then {0}. */
#define AUGMENT_OPTS_MAX 20
void augment_opts(Opt tab[AUGMENT_OPTS_MAX], AugmentConfig *a);
/* --loader-threads */
#define LOADER_OPTS_MAX 2
void loader_opts(Opt tab[LOADER_OPTS_MAX], LoaderConfig *c);

#endif
