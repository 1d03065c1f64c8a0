/* cmd_version.c - `simclr version`: build facts a bug report needs. */
#include <dnnl.h>
#include <stdio.h>

#include "cli.h"

SIMCLR_COMMAND(cmd_version, "version", "print the version and the libraries in use")

int cmd_version(int argc, char **argv) {
    Opt none[] = {{0}};
    Opt *tables[] = {none};
    if (opts_parse("version", "print the version and the libraries in use", argc, argv, tables, 1,
                   NULL, NULL))
        sc_fatal("%s", sc_error());
    const dnnl_version_t *v = dnnl_version();
    printf("simclr 0.1.0\noneDNN %d.%d.%d\nthreads %d\n", v->major, v->minor, v->patch,
           sc_threads());
    return 0;
}
