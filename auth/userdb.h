/*
 * userdb — SMTP AUTH users in Berkeley DB ("users.db" in the data_dir
 * environment): name → credentials (auth/credentials.h: salt, iterations, SCRAM
 * StoredKey and ServerKey; never the password) and the addresses the user may send
 * as ("alice@example.org", or "@example.org" for a whole domain).
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

struct userdb *userdb_open(struct fdb_env *env, char *err, size_t errlen);
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
