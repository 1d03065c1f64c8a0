/* run_cli.h - what the training commands (pretrain, finetune) share about their run folder:
 * the configuration as one JSON string, checkpoints (last + kept epoch files), the curves. */
#ifndef SIMCLR_RUN_CLI_H
#define SIMCLR_RUN_CLI_H

#include "opts.h"
#include "train.h"

/* The resolved configuration as one flat JSON object (malloc'ed, no trailing newline). */
char *run_config_json(Opt **tables, int nt);
/* Saves the trainer to dir/last.safetensors; with epoch_file >= 0 also keeps
 * dir/epoch_NNNN.safetensors (last then is a hard link to it, swapped in atomically). */
int run_save_checkpoint(const char *dir, Trainer *t, const char *cfg, long epoch_file);
/* Redraws dir/curves.png from dir/metrics.jsonl (a failure is only a warning). */
void run_write_plot(const char *dir);
/* The "config" metadata of a checkpoint (malloc'ed), or NULL with sc_error set. */
char *run_saved_config(const char *checkpoint);

#endif
