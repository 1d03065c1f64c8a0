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

#include "opts.h"

/* The option that sets a library parameter ("loader.batch_size" -> "--batch-size"), NULL when
 * the parameter has no option. main() registers it with sc_error_names(). */
const char *cli_option_name(const char *key);

#endif
