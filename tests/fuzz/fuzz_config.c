/* libFuzzer target: the config file parser (lib/config.c through settings.c).
   The input is written to a file in /dev/shm because conf_load reads a path. */
#include "lib/settings.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/ferry-fuzz-%ld.conf", (long)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    struct ferry_config cfg;
    char err[CONF_ERR_MAX];
    if (settings_load(path, &cfg, err, sizeof err) == 0) {
        FILE *null = fopen("/dev/null", "w");
        settings_print(null, &cfg);
        fclose(null);
        settings_free(&cfg);
    } else if (strncmp(err, path, strlen(path)) != 0) {
        __builtin_trap();   /* every error names the file */
    }
    unlink(path);
    return 0;
}
