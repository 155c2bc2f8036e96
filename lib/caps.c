/* caps — see caps.h. */
#include "lib/caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int capget_v3(struct __user_cap_data_struct d[2])
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    return (int)syscall(SYS_capget, &h, d);
}

bool caps_any_effective(void)
{
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    return capget_v3(d) < 0 || d[0].effective || d[1].effective;
}

int caps_drop_all(char *err, size_t errlen)
{
    if (geteuid() == 0) {
        /* The lock bits first, while CAP_SETPCAP is still held. */
        int bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                   SECBIT_KEEP_CAPS_LOCKED;
        if (prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0) {
            snprintf(err, errlen, "cannot lock the securebits: %s", strerror(errno));
            return -1;
        }
        for (int c = 0; c <= 63; c++)
            if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) {
                snprintf(err, errlen, "cannot drop capability %d from the bounding set: %s", c, strerror(errno));
                return -1;
            }
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
        struct __user_cap_data_struct d[2];
        memset(d, 0, sizeof d);
        if (syscall(SYS_capset, &h, d) < 0) {
            snprintf(err, errlen, "cannot drop capabilities: %s", strerror(errno));
            return -1;
        }
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
        return -1;
    }
    return 0;
}
