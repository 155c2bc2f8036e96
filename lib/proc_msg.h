/*
 * proc_msg — the types of the messages Ferry's processes send each other over
 * their socketpairs (lib/ipc.h carries them). It lives in lib/ so that every part
 * can name a message without including the daemon (smtpd/).
 *
 * The parent holds one socketpair per child and forwards between them, so a child
 * that is restarted needs no new wiring in the others:
 *   PROC_QUEUE_NEW     smtp -> parent -> queue: payload is a committed queue ID.
 *   PROC_HOME_DELIVER  queue -> parent: deliver as a system user (home_delivery.h
 *                      request); the parent forks and answers with
 *   PROC_HOME_RESULT   parent -> queue: the result line.
 *   PROC_PULL_NUDGE    smtp -> parent -> queue, no payload: DMTP notices to pull at
 *                      once were stored or marked; the pull client looks now.
 *   PROC_KEYS_RESTARTED parent -> smtp, no payload: a new key process serves the
 *                      key link; the smtp process may ask it at once, even while
 *                      its circuit breaker is open (smtpd/keyproc.h).
 */
#ifndef FERRY_PROC_MSG_H
#define FERRY_PROC_MSG_H

enum proc_msg { PROC_QUEUE_NEW = 1, PROC_HOME_DELIVER = 2, PROC_HOME_RESULT = 3, PROC_PULL_NUDGE = 4,
                PROC_KEYS_RESTARTED = 5 };

#endif
