#ifndef SUPERVISE_REMOTELOCK_H
#define SUPERVISE_REMOTELOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"

/*
 * Locks across machines: -l etcd://HOST:PORT[,HOST:PORT...]/NAME (etcds://
 * for TLS) is a lock named NAME in an etcd cluster, taken with etcd's own
 * mutex recipe through its v3 JSON gateway, so that it also excludes
 * `etcdctl lock NAME`:
 *
 *   - grant a lease of --lock-ttl;
 *   - create the key NAME/<lease in hex> bound to the lease (a transaction
 *     that creates it only if it does not exist), whose value is the
 *     holder record (pid, host, since, command);
 *   - the key with the lowest create revision under NAME/ holds the lock;
 *     a waiter watches the key created just before its own until it is
 *     deleted, then looks again;
 *   - the holder keeps the lease alive at a third of its TTL; revoking
 *     the lease (or its expiry) deletes the key and hands the lock on.
 *
 * The create revision of our key is the fencing token: it grows with
 * every new holder.  Each lock has a lease of its own.  Every request
 * runs on the event engine of the process that makes it (curl's sockets
 * and its timer are sources of that loop); nothing here blocks.  The
 * libraries are loaded on first use (remotelib.h).
 */

#define REMOTE_MAX_ENDPOINTS 8
#define REMOTE_NAME_MAX 256
#define REMOTE_EP_MAX 264 /* "[v6 address]:port" or "host:port" */

/* A parsed etcd:// or etcds:// lock URL. */
struct remote_url {
	bool tls;
	size_t n; /* endpoints, in the order given */
	char ep[REMOTE_MAX_ENDPOINTS][REMOTE_EP_MAX];
	char name[REMOTE_NAME_MAX];
};

/* Whether a --lock argument names a remote lock (etcd:// or etcds://). */
bool remote_is_url(const char *text);

/*
 * Parses a remote lock URL.  Returns 0, or -1 with the reason (without
 * the URL) in err.  Pure: used by option parsing and the lock wait.
 */
int remote_parse_url(const char *text, struct remote_url *u, char *err,
		     size_t errlen);

/* Where the credentials are: file names, from options or environment. */
struct remote_creds {
	const char *cacert;    /* CA bundle to verify the servers, or NULL */
	const char *cert;      /* client certificate, or NULL */
	const char *key;       /* its private key, or NULL */
	const char *user_file; /* first line USER:PASSWORD, or NULL */
};

/*
 * Fills what no option gave from the environment: SUPERVISE_ETCD_CACERT,
 * SUPERVISE_ETCD_CERT, SUPERVISE_ETCD_KEY, SUPERVISE_ETCD_USER_FILE.
 */
void remote_creds_from_env(struct remote_creds *c);

struct remote_set;

/*
 * Prepares the remote locks among paths (the others are left alone):
 * loads the libraries, reads the credentials, sorts the locks by name
 * (then endpoints) and drops duplicates.  ttl_ns is --lock-ttl.  Returns
 * the set (NULL when there is no remote lock) in *out and 0, or -1 after
 * logging why (exit 125).
 */
int remote_prepare(char *const *paths, size_t n, const struct remote_creds *c,
		   uint64_t ttl_ns, struct remote_set **out);

/* The number of locks in the set, and the URL of lock i as given. */
size_t remote_count(const struct remote_set *s);
const char *remote_url_of(const struct remote_set *s, size_t i);

/*
 * Makes loop the one whose sources carry the set's requests (a lock
 * wait's loop, the supervisor's, the front's): requests in flight in
 * another loop are dropped and made again.  NULL detaches: every
 * connection is closed, as before a fork.
 */
void remote_attach(struct remote_set *s, struct loop *lp);

/*
 * In the front, once the supervisor that kept the leases died: attaches
 * to lp and renews every lease at once.  The supervisor's renewals are
 * unknown here, so the leases count as renewed now until etcd says
 * otherwise.
 */
void remote_adopt(struct remote_set *s, struct loop *lp);

/* The holder record that our keys carry (lockfile.h's format). */
void remote_set_record(struct remote_set *s, const char *rec);

/* The outcome of remote_acquire_step(). */
enum remote_progress {
	REMOTE_PENDING, /* still at it */
	REMOTE_BLOCKED, /* another holds it (once, when first known) */
	REMOTE_HELD,	/* ours */
	REMOTE_FAILED,	/* could not: logged, exit 125 */
};

/* Starts taking lock i (the locks before it are held). */
void remote_acquire_begin(struct remote_set *s, size_t i, uint64_t now);

/*
 * After each turn of the loop the set is attached to: advances the
 * acquisition of lock i and the keep-alives of the locks held.
 */
enum remote_progress remote_acquire_step(struct remote_set *s, size_t i,
					 uint64_t now);

/*
 * What the record of the holder of lock i says, as last seen (while
 * waiting), or NULL when it holds none (such as `etcdctl lock`).
 */
const char *remote_holder_record(const struct remote_set *s, size_t i);

/*
 * While locks are held and the set is attached: keeps their leases
 * alive.  Returns true once a lease is lost (the message is in
 * remote_lost_why()); from then on the set stops waking up.
 */
bool remote_keep(struct remote_set *s, uint64_t now);
const char *remote_lost_why(const struct remote_set *s);

/* The next time the set must be looked at, or LOOP_NEVER (always when
 * it is not attached). */
uint64_t remote_deadline(const struct remote_set *s);

/*
 * The fencing tokens of the locks held, comma-separated in the order
 * taken, into buf.  Returns buf.
 */
const char *remote_tokens(const struct remote_set *s, char *buf, size_t len);

/*
 * Releases every lease of the set (the keys go with them), on a loop of
 * its own, trying each endpoint in turn, for at most budget_ns: at the
 * end of a run there is nothing left to wait for but this, and a lease
 * that cannot be revoked expires after its TTL anyway.  Signals stay
 * pending meanwhile.
 */
void remote_release(struct remote_set *s, uint64_t budget_ns);

void remote_free(struct remote_set *s);

/* Base64 (RFC 4648), as the gateway carries keys and values. */
size_t remote_b64_encode(const void *in, size_t n, char *out, size_t outlen);
/* Returns the decoded length, or -1 on bad input or no room. */
long remote_b64_decode(const char *in, size_t n, void *out, size_t outlen);

#endif
