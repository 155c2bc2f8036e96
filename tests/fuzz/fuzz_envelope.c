/* libFuzzer target: lib/envelope.c's parser. Anything that parses must
   serialise and parse again to the same envelope. */
#include "lib/envelope.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope e, e2;
    char err[256];
    if (env_parse((const char *)data, size, &e, err, sizeof err) < 0)
        return 0;
    struct buf b;
    buf_init(&b, ENV_MAX_SIZE);
    if (env_serialize(&e, &b) < 0)
        abort();
    if (env_parse(b.data, b.len, &e2, err, sizeof err) < 0)
        abort();
    if (e.nrcpts != e2.nrcpts || strcmp(e.sender, e2.sender) || e.size != e2.size || e.ret != e2.ret ||
        strcmp(e.envid, e2.envid) || e.requiretls != e2.requiretls)
        abort();
    for (size_t i = 0; i < e.nrcpts; i++)
        if (strcmp(e.rcpts[i].addr, e2.rcpts[i].addr) || strcmp(e.rcpts[i].result, e2.rcpts[i].result) ||
            e.rcpts[i].notify != e2.rcpts[i].notify || e.rcpts[i].orcpt_type != e2.rcpts[i].orcpt_type ||
            strcmp(e.rcpts[i].orcpt, e2.rcpts[i].orcpt))
            abort();
    env_free(&e);
    env_free(&e2);
    buf_free(&b);
    return 0;
}
