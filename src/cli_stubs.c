/* cli_stubs: placeholders for subcommands not implemented yet. Each line is
 * removed when the owning module defines the real command. */
#include "facrnn/cli.h"

#define FR_STUB(name)                                                              \
    fr_err fr_cmd_##name(int argc, char **argv)                                    \
    {                                                                              \
        (void)argc;                                                                \
        (void)argv;                                                                \
        return FR_FAIL(FR_EUSAGE, "subcommand '" #name "' is not implemented yet"); \
    }

