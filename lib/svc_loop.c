/* svc_loop — see svc_loop.h. */
#include "lib/svc_loop.h"
#include "lib/log.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

int svc_loop(int parent_fd, int fd, void (*serve)(int fd, void *arg), void *arg)
{
    struct pollfd pf[2] = { { .fd = parent_fd, .events = POLLIN }, { .fd = fd, .events = POLLIN } };
    for (;;) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("poll: %s", strerror(errno));
            return 1;
        }
        if (pf[0].revents) {            /* the parent closed its end, or wrote to it: stop */
            char c;
            if (read(parent_fd, &c, 1) <= 0)
                return 0;
        }
        if (pf[1].revents & POLLIN)
            serve(fd, arg);
    }
}
