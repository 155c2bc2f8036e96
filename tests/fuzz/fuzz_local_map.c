/* libFuzzer target: delivery/local_map's alias and virtual parsers and the
   target-list splitter on any bytes. A map that parses must find each of its
   keys, and every value must split into bounded targets without looping. */
#include "delivery/local_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(const struct local_map *m)
{
    char out[LOCAL_TARGET_MAX * 4];
    for (size_t i = 0; i < m->n && i < 200; i++) {
        int r = local_map_lookup(m, m->entries[i].key, out, sizeof out);
        if (r == 1)
            abort();            /* a parsed key must be found */
        if (r == 0) {
            const char *p = out, *why;
            char t[LOCAL_TARGET_MAX];
            unsigned n = 0;
            int k;
            while ((k = local_target_next(&p, t, sizeof t, &why)) == 1)
                if (++n > 100000 || strlen(t) >= sizeof t)
                    abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    for (int syn = LOCAL_MAP_ALIASES; syn <= LOCAL_MAP_VIRTUAL; syn++) {
        struct local_map m;
        memset(&m, 0, sizeof m);
        if (local_map_parse((const char *)data, size, (enum local_map_syntax)syn, &m, err, sizeof err) == 0) {
            check(&m);
            local_map_free(&m);
        }
    }
    enum local_map_syntax s;
    (void)local_map_detect((const char *)data, size, &s);
    return 0;
}
