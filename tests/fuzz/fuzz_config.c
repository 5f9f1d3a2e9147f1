/* fuzz_config: libFuzzer harness for the YAML config layer (src/io/config.c,
 * config_echo.c). Input: config text. It is parsed and validated with
 * fr_config_from_yaml_text, the path that returns an error code for every
 * bad input (fr_config_load adds only the file read and a broadcast). A
 * config that is accepted must also survive the resolved-YAML echo: the echo
 * parses back to the same echo and the same fit hash, because results files
 * store that echo and `eval` and the sweep read it back.
 * Not collective: the config layer needs no MPI_Init.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facrnn/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Static: fr_config is large (sweep partitions) and the echo up to 256 KiB. */
static fr_config g_cfg, g_again;
static char g_yaml[FR_CFG_YAML_MAX], g_yaml2[FR_CFG_YAML_MAX];

static void fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_config: %s\n--- input ---\n%s\n--- echo ---\n%s\n--- error ---\n%s\n", what, text, g_yaml,
            fr_error_msg());
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Text as a C string (the API takes one); a NUL byte ends it early. */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    fr_error_clear();
    fr_err rc = fr_config_from_yaml_text(text, &g_cfg);
    if (rc != FR_OK) {
        /* Refused: it must say why, in one line. */
        const char *msg = fr_error_msg();
        if (!msg[0]) fail("error code without a message", text);
        if (strchr(msg, '\n')) fail("error message spans several lines", text);
        free(text);
        return 0;
    }
    char id[256];
    fr_run_id(&g_cfg, id, sizeof id);
    if (fr_config_to_yaml(&g_cfg, g_yaml, sizeof g_yaml) != FR_OK) fail("accepted config has no echo", text);
    if (fr_config_from_yaml_text(g_yaml, &g_again) != FR_OK) fail("echo of an accepted config is refused", text);
    if (fr_config_to_yaml(&g_again, g_yaml2, sizeof g_yaml2) != FR_OK) fail("second echo failed", text);
    if (strcmp(g_yaml, g_yaml2)) fail("echo does not parse back to itself", text);
    if (fr_config_fit_hash(&g_cfg) != fr_config_fit_hash(&g_again)) fail("fit hash changes through the echo", text);
    free(text);
    return 0;
}
