/* symbiote config: prints the effective configuration (after INI, environment and flags). */
#include <string.h>

#include "cli.h"

int cmd_config(int argc, char **argv) {
    cli_common c;
    cli_common_init(&c);
    for (int i = 0; i < argc;) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: symbiote config [options]\n"
                   "Prints the effective configuration as an INI file.\n\n");
            cli_common_help(stdout);
            return 0;
        }
        int r = cli_common_parse(&c, argc, argv, &i);
        if (r < 0) return 2;
        if (r == 0) return cli_usage_error("config: unknown option '%s'", argv[i]);
    }
    if (cli_common_finish(&c)) return 1;
    sym_config_write_ini(&c.cfg, stdout);
    return 0;
}
