/* run_cli.h - what the training commands (pretrain, finetune) share about their run folder, so
 * both get the same robustness by construction:
 *   - claiming the folder: the lock (one process per run folder, the holder's pid in the
 *     refusal), then for a new run the check for another run (--force removes it);
 *   - the configuration: one JSON string in config.json (rewritten atomically, also on resume)
 *     and in every checkpoint; on --resume the options given again are compared with the saved
 *     ones and a change of the trajectory is refused unless --force-override;
 *   - the warmup against the run's length (a recipe's default warmup shrinks, an explicit one is
 *     refused when longer than the run);
 *   - metrics.jsonl (and its TensorBoard mirror with --tensorboard), every write checked (a full
 *     disk is one error line, and no checkpoint is saved past the metrics it lost);
 *   - the end of an epoch (flush, last.safetensors + kept epoch files, curves.png) and a stop
 *     (Ctrl-C, --stop-after-steps: flush, save, the "continue with" line).
 *
 *     RunFolder rf = {.dir = dir, .command = "finetune", .cfg = cfg, .steps_per_epoch = bpe,
 *                     .total = total, .checkpoint_every = every};
 *     if (run_folder_claim(dir, resuming, force)) sc_fatal("%s", sc_error());
 *     ... run_write_config(dir, cfg); run_folder_open_log(&rf, resuming ? t->step : -1, tb_tags);
 *     per step:  run_folder_step(&rf, &sm, log_every)
 *     epoch end: run_folder_epoch_end(&rf, t, step)
 *     stop:      run_folder_stop(&rf, t, step, epoch_end, interrupted, &progress)
 *     run_folder_close(&rf);
 */
#ifndef SIMCLR_RUN_CLI_H
#define SIMCLR_RUN_CLI_H

#include "augment.h"
#include "dataset.h"
#include "loader.h"
#include "model.h"
#include "optim.h"
#include "opts.h"
#include "runlog.h"
#include "train.h"

/* ---- the option tables a training command shares ----------------------------------------- */

/* The library settings of a training run and their option-table fragments (model, optimizer and
 * schedule, data, augmentation, loader). */
typedef struct {
    Opt model[MODEL_OPTS_MAX], optim[OPTIM_NUM_OPTS + 1], data[DATASET_OPTS_MAX],
        aug[AUGMENT_OPTS_MAX], loader[LOADER_OPTS_MAX];
} RunTables;
/* Sets every config to its defaults and builds the fragments over them (a command changes its
 * own defaults afterwards: the tables point at the structs). */
void run_tables_init(RunTables *rt, ModelConfig *mc, TrainOptions *to, DatasetConfig *dc,
                     AugmentConfig *ac, LoaderConfig *lc);

/* The resolved configuration as one flat JSON object (malloc'ed, no trailing newline). */
char *run_config_json(Opt **tables, int nt);
/* Saves the trainer to dir/last.safetensors; with epoch_file >= 0 also keeps
 * dir/epoch_NNNN.safetensors (last then is a hard link to it, swapped in atomically). */
int run_save_checkpoint(const char *dir, Trainer *t, const char *cfg, long epoch_file);
/* Redraws dir/curves.png from dir/metrics.jsonl (a failure is only a warning). */
void run_write_plot(const char *dir);
/* The "config" metadata of a checkpoint (malloc'ed), or NULL with sc_error set. */
char *run_saved_config(const char *checkpoint);

/* ---- claiming the folder, the configuration ---------------------------------------------- */

/* Takes dir's lock (held until the process exits; see run_dir_lock) and, for a new run
 * (resume == 0), prepares the folder: refuses another run in it unless force, which removes
 * it. Errors name --resume or --out. Call it before anything in the folder is written. */
int run_folder_claim(const char *dir, int resume, int force);
/* Writes dir/config.json (cfg and a newline) atomically. */
int run_write_config(const char *dir, const char *cfg);
/* --resume: applies the saved configuration `saved` to the tables, except the run-control
 * options `control` (never restored). An option given on the command line keeps its value; when
 * that value differs from the saved one and the option is not in `harmless` (options that do not
 * change the weights' trajectory: threads, cadences, monitors), the resume is refused naming
 * every such option, unless force_override (then a warning names them). */
int run_resume_options(Opt **tables, int nt, const char *dir, const char *saved,
                       const char *const *control, const char *const *harmless,
                       int force_override);
/* The warmup of a run of `total` steps of `bpe` batches: a warmup longer than the run is refused
 * when --warmup-epochs/--warmup-steps was given, shrunk to 10% of the run (with a note; none
 * under 10 steps) when it is a recipe's default; more than half of the run is a warning. Then
 * initialises the schedule. */
int run_schedule(LrSchedule *s, const TrainOptions *to, Opt **tables, int nt, int batch, long bpe,
                 long total);

/* ---- metrics, checkpoints, stops --------------------------------------------------------- */

typedef struct {
    const char *dir;      /* the run folder */
    const char *command;  /* "pretrain", "finetune": the subcommand of the "continue with" line */
    const char *cfg;      /* the configuration of config.json, stored in every checkpoint */
    long steps_per_epoch, total;
    int checkpoint_every; /* keep epoch_NNNN.safetensors every E epochs and at the end (0: the end) */
    RunLog *log;          /* dir/metrics.jsonl */
} RunFolder;

/* Opens dir/metrics.jsonl: a new file (keep_upto < 0) or the resumed run's, cut back to step
 * keep_upto. With tb_accuracy != NULL also the TensorBoard log in dir/tensorboard/, its
 * accuracy tags named tb_accuracy (see runlog_set_tensorboard). */
int run_folder_open_log(RunFolder *rf, long keep_upto, const char *tb_accuracy);
/* The metrics line of a step when it is due (every log_every steps and the last). */
int run_folder_step(RunFolder *rf, const StepMetrics *sm, int log_every);
/* At the end of an epoch or of the run (step): flushes the metrics, saves last.safetensors
 * (keeping epoch_NNNN every checkpoint_every epochs and at the end), redraws curves.png. */
int run_folder_epoch_end(RunFolder *rf, Trainer *t, long step);
/* A stop at step (a signal: interrupted, or --stop-after-steps): flushes the metrics, saves
 * last.safetensors unless the epoch end just did, and prints how to continue on pg. */
int run_folder_stop(RunFolder *rf, Trainer *t, long step, int saved, int interrupted, Progress *pg);
void run_folder_close(RunFolder *rf);

#endif
