/* smtp_proc — see smtp_proc.h. */
#include "smtpd/smtp_proc.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int proc_lookup_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "user \"%s\" does not exist (create it, or set \"user\" in the config)", user);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

int proc_drop_privileges(const char *user, char *err, size_t errlen)
{
    return proc_drop_to(user, NULL, err, errlen);
}

int proc_drop_to(const char *user, const char *share_with, char *err, size_t errlen)
{
    if (geteuid() != 0)
        return proc_no_new_privs(err, errlen);
    uid_t uid, suid;
    gid_t gid, groups[2];
    if (proc_lookup_user(user, &uid, &gid, err, errlen) < 0)
        return -1;
    if (uid == 0) {
        snprintf(err, errlen, "refusing to run children as root (user \"%s\" has uid 0)", user);
        return -1;
    }
    size_t ngroups = 0;
    groups[ngroups++] = gid;
    /* The group through which the spool and data_dir are shared (privsep.h). */
    if (share_with && proc_lookup_user(share_with, &suid, &groups[1], err, errlen) < 0)
        return -1;
    if (share_with && groups[1] != gid)
        ngroups++;
    if (setgroups(ngroups, groups) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        snprintf(err, errlen, "cannot drop privileges to %s: %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0 || seteuid(0) == 0) {
        snprintf(err, errlen, "privileges were not dropped: root could be regained");
        return -1;
    }
    return proc_no_new_privs(err, errlen);
}

int proc_no_new_privs(char *err, size_t errlen)
{
    /* No exec of a set-uid program (or file capabilities) gives anything back. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
        return -1;
    }
    return 0;
}
