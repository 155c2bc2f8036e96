/*
 * parent — ferryd's first process: binds the listeners, prepares the spool, forks
 * and watches the smtp and queue children, forwards their messages, reloads on
 * SIGHUP and stops cleanly on SIGTERM/SIGINT. It keeps root when it has it and
 * parses nothing from the network.
 */
#ifndef FERRY_PARENT_H
#define FERRY_PARENT_H

#include <stdbool.h>

#include "lib/settings.h"

#include <openssl/ssl.h>

/* The TLS context the configuration asks for (NULL without tls_cert). 0, or -1 with
   err naming the file at fault. ferryd -t uses it too. */
int parent_tls_ctx(const struct ferry_config *cfg, SSL_CTX **out, char *err, size_t errlen);
/* The files the configuration names beyond itself, opened and parsed as the
   daemon will: the outbound TLS policy table and CA file, the relay host's
   credentials, the alias and virtual maps. 0 ok, -1 with err naming the file. */
int parent_check_files(const struct ferry_config *cfg, char *err, size_t errlen);

/* Runs until stopped; returns the exit status. cfg is owned by the parent from now on. */
int parent_run(struct ferry_config *cfg, bool foreground);

#endif
