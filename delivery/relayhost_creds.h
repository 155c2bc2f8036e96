/*
 * relayhost_creds — the relay host's AUTH credentials (relayhost_auth_file).
 *
 * The file holds one line "user password" (the password is the rest of the
 * line, spaces included; "#" lines and blank lines are skipped). It must be a
 * regular file owned by root or by the user Ferry was started as, with no
 * permission for group or others: a password readable by anyone is refused,
 * not used. The parent reads it while it still has root and hands the result
 * to the queue process, which never opens the file itself.
 */
#ifndef FERRY_RELAYHOST_CREDS_H
#define FERRY_RELAYHOST_CREDS_H

#include <stdbool.h>
#include <stddef.h>

struct relayhost_creds {
    bool set;
    char user[256];
    char pass[256];
};

/* 0 ok (creds->set), -1 with err naming the file and the fault. */
int  relayhost_creds_load(const char *path, struct relayhost_creds *creds, char *err, size_t errsz);
/* Parse the file's text (no permission checks). 0 ok, -1 with err. */
int  relayhost_creds_parse(const char *text, size_t len, struct relayhost_creds *creds, const char **why);
void relayhost_creds_wipe(struct relayhost_creds *creds);

#endif
