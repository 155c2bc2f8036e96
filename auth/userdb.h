/*
 * userdb — SMTP AUTH users in Berkeley DB, in two databases:
 *
 *  - users.db, in the auth_dir environment (lib/privsep.h): name → credentials
 *    (auth/credentials.h: salt, iterations, SCRAM StoredKey and ServerKey; never
 *    the password), creation time and the addresses the user may send as
 *    ("alice@example.org", or "@example.org" for a whole domain). The one copy of
 *    the secrets: read by the auth process (smtpd/authproc.h), written by ferryctl.
 *  - userdir.db, the directory, in the data_dir environment: the same records
 *    without the credentials, for the questions that need no secret ("does this
 *    user exist" at RCPT and in delivery, "may this user send as that address").
 *    ferryctl rewrites a user's entry from users.db after each change
 *    (userdb_publish), so users.db is the truth and the directory a copy of its
 *    public half; a directory record that holds credentials is refused.
 *
 * Which one a handle is follows from how it was opened; every function works on
 * either.
 *
 * Records are text, self-checking ("FERRY-USER 1" ... "end CRC-32"): a damaged
 * record is reported, never half-trusted. Names are 1 to 64 octets of
 * [A-Za-z0-9._@+-], stored lower-case. Used by ferryctl (add, passwd, del, list,
 * addresses) and by the smtp process (lookups), which may open the environment at
 * the same time.
 */
#ifndef FERRY_USERDB_H
#define FERRY_USERDB_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "auth/credentials.h"
#include "lib/db.h"

#define USERDB_NAME_MAX 64
#define USERDB_MAX_ADDRS 64
#define USERDB_ADDR_MAX 256

struct user_record {
    char name[USERDB_NAME_MAX + 1];
    struct credentials cred;
    time_t created;
    size_t naddrs;
    char addrs[USERDB_MAX_ADDRS][USERDB_ADDR_MAX + 1];
};

struct userdb;

#define USERDB_SECRETS_FILE "users.db"
#define USERDB_DIRECTORY_FILE "userdir.db"

/* The directory (in the data_dir environment): no credentials. */
struct userdb *userdb_open(struct fdb_env *env, char *err, size_t errlen);
/* users.db with the credentials (in the auth_dir environment). */
struct userdb *userdb_open_secrets(struct fdb_env *env, char *err, size_t errlen);
void userdb_close(struct userdb *u);

/* A valid user name, lower-cased into out. -1 with *why when not. */
int userdb_name(const char *name, char *out, size_t outsz, const char **why);

/* 0 ok; 1 not found (get/del/passwd) or already there (add); -1 error (err). */
int userdb_add(struct userdb *u, const char *name, const char *password, char *err, size_t errlen);
int userdb_passwd(struct userdb *u, const char *name, const char *password, char *err, size_t errlen);
int userdb_del(struct userdb *u, const char *name, char *err, size_t errlen);
int userdb_get(struct userdb *u, const char *name, struct user_record *out, char *err, size_t errlen);
/* addr: "user@domain" or "@domain". */
int userdb_addr(struct userdb *u, const char *name, const char *addr, bool add, char *err, size_t errlen);
/* Store r as it is (credentials and all) unless its name is there already:
   0 stored, 1 already there (left alone), -1 error. For `ferryctl user sync`,
   which imports users.db records an older Ferry kept in data_dir. */
int userdb_import(struct userdb *u, const struct user_record *r, char *err, size_t errlen);
/* Write r's public half into the directory dir (replacing what was there), or
   remove name from it (0 also when it was not there). -1 with err. */
int userdb_publish(struct userdb *dir, const struct user_record *r, char *err, size_t errlen);
int userdb_unpublish(struct userdb *dir, const char *name, char *err, size_t errlen);
/* Visit every user in name order; stops when fn returns non-zero. */
int userdb_list(struct userdb *u, int (*fn)(const struct user_record *r, void *arg), void *arg);

/* May user send as address (MAIL FROM, From:)? Its own addresses and domains, and
   by default NAME@ each local domain (the caller passes them). */
bool userdb_owns(const struct user_record *r, const char *address, const char *const *local_domains,
                 size_t nlocal);

/* Record format, exposed for unit tests. */
int userdb_serialize(const struct user_record *r, char *out, size_t outsz);
int userdb_parse(const char *data, size_t len, struct user_record *r, char *err, size_t errlen);

#endif
