#include <sys/socket.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "remotelib.h"
#include "remotelock.h"
#include "status.h"

#define ETCD_PORT 2379

bool
remote_is_url(const char *text)
{
	return strncmp(text, "etcd://", 7) == 0 ||
		strncmp(text, "etcds://", 8) == 0;
}

/* "host", "host:port", "[v6]" or "[v6]:port" into "host:port". */
static int
parse_endpoint(const char *s, size_t len, char *out, char *err, size_t errlen)
{
	const char *host = s, *end = s + len, *colon;
	size_t hlen, i;
	long port = ETCD_PORT;
	char *stop;
	bool v6 = false;

	if (len > 0 && *s == '[') {
		colon = memchr(s, ']', len);
		if (colon == NULL || colon == s + 1) {
			snprintf(err, errlen, "invalid endpoint '%.*s'",
				 (int)len, s);
			return -1;
		}
		host = s + 1;
		hlen = (size_t)(colon - host);
		colon++;
		v6 = true;
		for (i = 0; i < hlen; i++) {
			if (!isxdigit((unsigned char)host[i]) &&
			    host[i] != ':' && host[i] != '.') {
				snprintf(err, errlen, "invalid endpoint '%.*s'",
					 (int)len, s);
				return -1;
			}
		}
		if (colon != end && *colon != ':') {
			snprintf(err, errlen, "invalid endpoint '%.*s'",
				 (int)len, s);
			return -1;
		}
	} else {
		colon = memchr(s, ':', len);
		hlen = colon != NULL ? (size_t)(colon - s) : len;
		if (colon == NULL) {
			colon = end;
		}
		for (i = 0; i < hlen; i++) {
			if (!isalnum((unsigned char)host[i]) &&
			    strchr(".-_", host[i]) == NULL) {
				snprintf(err, errlen, "invalid endpoint '%.*s'",
					 (int)len, s);
				return -1;
			}
		}
	}
	if (hlen == 0 || hlen > 253) {
		snprintf(err, errlen, "invalid endpoint '%.*s'", (int)len, s);
		return -1;
	}
	if (colon != end) {
		/* ":port": digits only, 1 to 65535. */
		errno = 0;
		port = strtol(colon + 1, &stop, 10);
		if (colon + 1 == end || stop != end ||
		    !isdigit((unsigned char)colon[1]) || port < 1 ||
		    port > 65535) {
			snprintf(err, errlen, "invalid port in endpoint '%.*s'",
				 (int)len, s);
			return -1;
		}
	}
	snprintf(out, REMOTE_EP_MAX, "%s%.*s%s:%ld", v6 ? "[" : "", (int)hlen,
		 host, v6 ? "]" : "", port);
	return 0;
}

int
remote_parse_url(const char *text, struct remote_url *u, char *err,
		 size_t errlen)
{
	const char *p, *slash, *comma, *name;
	size_t i;

	memset(u, 0, sizeof(*u));
	if (strncmp(text, "etcd://", 7) == 0) {
		p = text + 7;
	} else if (strncmp(text, "etcds://", 8) == 0) {
		p = text + 8;
		u->tls = true;
	} else {
		snprintf(err, errlen, "not an etcd:// or etcds:// URL");
		return -1;
	}
	slash = strchr(p, '/');
	if (slash == NULL || slash[1] == '\0') {
		snprintf(err, errlen, "missing lock name after the endpoints");
		return -1;
	}
	if (memchr(p, '@', (size_t)(slash - p)) != NULL) {
		snprintf(err, errlen,
			 "credentials do not belong in the URL "
			 "(use --etcd-user-file)");
		return -1;
	}
	if (slash == p) {
		snprintf(err, errlen, "missing endpoint");
		return -1;
	}
	for (; p <= slash; p = comma + 1) {
		comma = memchr(p, ',', (size_t)(slash - p));
		if (comma == NULL) {
			comma = slash;
		}
		if (comma == p) {
			snprintf(err, errlen, "empty endpoint");
			return -1;
		}
		if (u->n == REMOTE_MAX_ENDPOINTS) {
			snprintf(err, errlen, "too many endpoints (at most %d)",
				 REMOTE_MAX_ENDPOINTS);
			return -1;
		}
		if (parse_endpoint(p, (size_t)(comma - p), u->ep[u->n], err,
				   errlen) < 0) {
			return -1;
		}
		u->n++;
	}
	name = slash + 1;
	if (strlen(name) >= REMOTE_NAME_MAX) {
		snprintf(err, errlen, "lock name longer than %d bytes",
			 REMOTE_NAME_MAX - 1);
		return -1;
	}
	for (i = 0; name[i] != '\0'; i++) {
		if ((unsigned char)name[i] <= ' ' ||
		    (unsigned char)name[i] >= 0x7f) {
			snprintf(err, errlen,
				 "lock name with a blank or a non-ASCII "
				 "character");
			return -1;
		}
	}
	memcpy(u->name, name, i + 1);
	return 0;
}

/* An empty variable counts as unset. */
static const char *
env_file(const char *given, const char *name)
{
	const char *v = getenv(name);

	return given != NULL ? given : v != NULL && *v != '\0' ? v : NULL;
}

void
remote_creds_from_env(struct remote_creds *c)
{
	c->cacert = env_file(c->cacert, "SUPERVISE_ETCD_CACERT");
	c->cert = env_file(c->cert, "SUPERVISE_ETCD_CERT");
	c->key = env_file(c->key, "SUPERVISE_ETCD_KEY");
	c->user_file = env_file(c->user_file, "SUPERVISE_ETCD_USER_FILE");
}

/* The 64 digits, then the padding. */
static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

size_t
remote_b64_encode(const void *in, size_t n, char *out, size_t outlen)
{
	const unsigned char *s = in;
	size_t i, o = 0;
	uint32_t v;

	if (outlen < (n + 2) / 3 * 4 + 1) {
		if (outlen > 0) {
			out[0] = '\0';
		}
		return 0;
	}
	for (i = 0; i < n; i += 3) {
		v = (uint32_t)s[i] << 16;
		if (i + 1 < n) {
			v |= (uint32_t)s[i + 1] << 8;
		}
		if (i + 2 < n) {
			v |= s[i + 2];
		}
		out[o] = b64[(v >> 18) & 63];
		out[o + 1] = b64[(v >> 12) & 63];
		out[o + 2] = b64[(v >> 6) & 63];
		out[o + 3] = b64[v & 63];
		/* Padding for the bytes that were not there. */
		if (i + 1 >= n) {
			out[o + 2] = '=';
		}
		if (i + 2 >= n) {
			out[o + 3] = '=';
		}
		o += 4;
	}
	out[o] = '\0';
	return o;
}

long
remote_b64_decode(const char *in, size_t n, void *out, size_t outlen)
{
	unsigned char *d = out;
	size_t i, o = 0, pad = 0;
	uint32_t v = 0;
	const char *c;
	int bits = 0;

	if (n % 4 != 0) {
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (in[i] == '=') {
			/* Only at the end, at most two. */
			if (i + 2 < n || ++pad > 2) {
				return -1;
			}
			continue;
		}
		c = in[i] != '\0' ? memchr(b64, in[i], 64) : NULL;
		if (c == NULL || pad > 0) {
			return -1;
		}
		v = v << 6 | (uint32_t)(c - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == outlen) {
				return -1;
			}
			d[o++] = (unsigned char)(v >> bits);
		}
	}
	return (long)o;
}

#ifndef SUPERVISE_REMOTE

/* A build without libcurl's and json-c's headers: no remote locks. */

int
remote_prepare(char *const *paths, size_t n, const struct remote_creds *c,
	       uint64_t ttl_ns, struct remote_set **out)
{
	char err[256];
	size_t i;

	(void)c;
	(void)ttl_ns;
	*out = NULL;
	for (i = 0; i < n; i++) {
		if (remote_is_url(paths[i]) &&
		    rlib_load(err, sizeof(err)) < 0) {
			log_error("%s", err);
			return -1;
		}
	}
	return 0;
}

size_t
remote_count(const struct remote_set *s)
{
	(void)s;
	return 0;
}

const char *
remote_url_of(const struct remote_set *s, size_t i)
{
	(void)s;
	(void)i;
	return "";
}

void
remote_attach(struct remote_set *s, struct loop *lp)
{
	(void)s;
	(void)lp;
}

void
remote_set_record(struct remote_set *s, const char *rec)
{
	(void)s;
	(void)rec;
}

void
remote_adopt(struct remote_set *s, struct loop *lp)
{
	(void)s;
	(void)lp;
}

void
remote_acquire_begin(struct remote_set *s, size_t i, uint64_t now)
{
	(void)s;
	(void)i;
	(void)now;
}

enum remote_progress
remote_acquire_step(struct remote_set *s, size_t i, uint64_t now)
{
	(void)s;
	(void)i;
	(void)now;
	return REMOTE_FAILED;
}

const char *
remote_holder_record(const struct remote_set *s, size_t i)
{
	(void)s;
	(void)i;
	return NULL;
}

bool
remote_keep(struct remote_set *s, uint64_t now)
{
	(void)s;
	(void)now;
	return false;
}

const char *
remote_lost_why(const struct remote_set *s)
{
	(void)s;
	return "";
}

uint64_t
remote_deadline(const struct remote_set *s)
{
	(void)s;
	return LOOP_NEVER;
}

const char *
remote_tokens(const struct remote_set *s, char *buf, size_t len)
{
	(void)s;
	if (len > 0) {
		buf[0] = '\0';
	}
	return buf;
}

void
remote_release(struct remote_set *s, uint64_t budget_ns)
{
	(void)s;
	(void)budget_ns;
}

void
remote_free(struct remote_set *s)
{
	(void)s;
}

#else

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

/* Where a lock's acquisition is; each phase but the last three has its
 * request in flight, or about to be. */
enum phase {
	PH_AUTH,  /* get a token for USER:PASSWORD */
	PH_GRANT, /* grant the lease */
	PH_PUT,	  /* create our key */
	PH_OWNER, /* who holds it: the lowest create revision */
	PH_PRED,  /* the key just before ours */
	PH_WATCH, /* wait until that key is deleted */
	PH_HELD,
	PH_FAILED,
	PH_IDLE, /* not being taken */
};

struct buf {
	char *data;
	size_t len, cap;
};

/* One HTTP request of a lock. */
struct req {
	struct rlock *l;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	struct buf resp;
	bool active; /* in the multi handle */
	bool done;   /* finished: res, http and resp say how */
	CURLcode res;
	long http;
	uint64_t sent;
	size_t ep;	 /* the endpoint it went to */
	bool watch;	 /* a watch: its stream is scanned as it comes */
	int watch_event; /* 1: the key was deleted; 2: watch cancelled */
	size_t scanned;	 /* bytes of resp looked at for lines */
	char errbuf[CURL_ERROR_SIZE];
};

/* One remote lock. */
struct rlock {
	const char *url; /* as given */
	struct remote_url u;
	struct remote_set *s;
	enum phase phase, resume; /* resume: after PH_AUTH */
	size_t ep;		  /* endpoint of the next request */
	size_t failures;	  /* requests failed in a row */
	bool contacted;		  /* etcd answered once */
	uint64_t retry_at;	  /* after a round of failures */
	char token[512];
	int64_t lease, ttl_s;
	char key[REMOTE_NAME_MAX + 24]; /* NAME/<lease in hex> */
	int64_t rev;			/* our key's create revision */
	char pred[4 * REMOTE_NAME_MAX]; /* base64 key we wait for */
	int64_t watch_rev;
	char *holder;		/* the holder's record, as last seen */
	struct req op, ka, chk; /* chk: the re-check of a watch */
	size_t chk_ep, chk_tries;
	uint64_t chk_next;
	size_t ka_ep;
	size_t ka_failures;
	uint64_t ka_ok_sent; /* when the last good renewal was sent */
	uint64_t ka_next;
	bool lost;
	bool released;
	char last_err[800];
	int64_t last_code; /* of the last etcd error, or 0 */
	char order[REMOTE_NAME_MAX + REMOTE_MAX_ENDPOINTS * REMOTE_EP_MAX + 8];
};

struct remote_set {
	struct rlock *v;
	size_t n;
	struct remote_creds creds;
	bool auth;
	char user[256], pass[256];
	int64_t ttl_s;
	char *record;
	CURLM *multi;
	struct loop *lp;
	uint64_t timer; /* curl's deadline, or LOOP_NEVER */
	bool lost;
	char why[1400];
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	char *p;
	size_t cap;

	if (b->len + n + 1 > b->cap) {
		cap = b->cap == 0 ? 1024 : b->cap;
		while (cap < b->len + n + 1) {
			cap *= 2;
		}
		p = realloc(b->data, cap);
		if (p == NULL) {
			return;
		}
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

/* The JSON text parsed, or NULL. */
static struct json_object *
jparse(const char *text)
{
	enum json_tokener_error e;

	return rlib->tokener_parse_verbose(text, &e);
}

static struct json_object *
jget(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	if (o == NULL || !rlib->object_get_ex(o, k, &v)) {
		return NULL;
	}
	return v;
}

static int64_t
jint(struct json_object *o, const char *k)
{
	struct json_object *v = jget(o, k);

	return v == NULL ? 0 : rlib->get_int64(v);
}

static const char *
jstr(struct json_object *o, const char *k)
{
	struct json_object *v = jget(o, k);

	return v == NULL ? NULL : rlib->get_string(v);
}

/* The first element of array k of o, or NULL. */
static struct json_object *
jfirst(struct json_object *o, const char *k)
{
	struct json_object *a = jget(o, k);

	if (a == NULL || !rlib->is_type(a, json_type_array) ||
	    rlib->array_length(a) == 0) {
		return NULL;
	}
	return rlib->array_get_idx(a, 0);
}

/* Scans a watch's stream for whole lines: a deletion or a cancel. */
static void
scan_watch(struct req *q)
{
	struct json_object *o, *res, *ev, *evs;
	char *line, *nl;
	size_t i, n;
	const char *type;

	while (q->watch_event == 0 && q->scanned < q->resp.len) {
		line = q->resp.data + q->scanned;
		nl = memchr(line, '\n', q->resp.len - q->scanned);
		if (nl == NULL) {
			return;
		}
		*nl = '\0';
		q->scanned = (size_t)(nl - q->resp.data) + 1;
		o = jparse(line);
		res = jget(o, "result");
		if (o != NULL &&
		    (jget(o, "error") != NULL ||
		     (jget(res, "canceled") != NULL &&
		      rlib->get_boolean(jget(res, "canceled"))))) {
			q->watch_event = 2;
		}
		evs = jget(res, "events");
		n = evs != NULL && rlib->is_type(evs, json_type_array) ?
			rlib->array_length(evs) :
			0;
		for (i = 0; i < n; i++) {
			ev = rlib->array_get_idx(evs, i);
			type = jstr(ev, "type");
			if (type != NULL && strcmp(type, "DELETE") == 0) {
				q->watch_event = 1;
			}
		}
		rlib->object_put(o);
	}
}

static size_t
on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct req *q = ctx;

	buf_add(&q->resp, p, size * n);
	if (q->watch) {
		scan_watch(q);
		/* Seen what we waited for: ending the transfer ends the watch. */
		if (q->watch_event != 0) {
			return 0;
		}
	}
	return size * n;
}

/* Every socket close-on-exec: COMMAND must never inherit a connection. */
static curl_socket_t
open_socket(void *ctx LOOP_UNUSED, curlsocktype purpose LOOP_UNUSED,
	    struct curl_sockaddr *a)
{
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static void
on_socket_ready(void *ctx, int fd, short revents)
{
	struct remote_set *s = ctx;
	int flags = 0, running;

	if (revents & POLLIN) {
		flags |= CURL_CSELECT_IN;
	}
	if (revents & POLLOUT) {
		flags |= CURL_CSELECT_OUT;
	}
	if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
		flags |= CURL_CSELECT_ERR;
	}
	rlib->multi_socket_action(s->multi, fd, flags, &running);
}

/* curl says which sockets to watch: they become sources of the loop. */
static int
on_curl_socket(CURL *e LOOP_UNUSED, curl_socket_t fd, int what, void *ctx,
	       void *sockp LOOP_UNUSED)
{
	struct remote_set *s = ctx;
	short events = 0;

	if (what == CURL_POLL_REMOVE) {
		loop_remove(s->lp, fd);
		return 0;
	}
	if (what & CURL_POLL_IN) {
		events |= POLLIN;
	}
	if (what & CURL_POLL_OUT) {
		events |= POLLOUT;
	}
	/* A full table fails the request (-1), which is then retried. */
	return loop_add(s->lp, fd, events, on_socket_ready, s) < 0 ? -1 : 0;
}

/* curl's one timer: recorded, acted on after the turn (never from here). */
static int
on_curl_timer(CURLM *m LOOP_UNUSED, long ms, void *ctx)
{
	struct remote_set *s = ctx;

	s->timer = ms < 0 ? LOOP_NEVER : loop_now() + (uint64_t)ms * MS;
	return 0;
}

/* Takes a finished or dropped request out of the multi handle. */
static void
req_end(struct remote_set *s, struct req *q)
{
	if (q->active) {
		rlib->multi_remove_handle(s->multi, q->easy);
		q->active = false;
	}
	if (q->easy != NULL) {
		rlib->easy_cleanup(q->easy);
		q->easy = NULL;
	}
	rlib->slist_free_all(q->hdrs);
	q->hdrs = NULL;
	free(q->body);
	q->body = NULL;
}

static void
req_reset(struct req *q)
{
	q->done = false;
	q->res = CURLE_OK;
	q->http = 0;
	q->resp.len = 0;
	q->scanned = 0;
	q->watch_event = 0;
	q->errbuf[0] = '\0';
}

/* The request's timeouts: at most a third of the TTL, so that every
 * endpoint can be tried before a lease runs out. */
static long
timeout_ms(const struct rlock *l)
{
	int64_t ms = l->s->ttl_s * 1000 / 3 / (int64_t)l->u.n;

	return ms < 300 ? 300 : ms > 10000 ? 10000 : (long)ms;
}

/*
 * Starts a POST of body (JSON) to path on endpoint ep.  Returns 0, or -1
 * when it could not even start (recorded as a failed request).
 */
static int
req_start(struct rlock *l, struct req *q, size_t ep, const char *path,
	  char *body, bool watch, uint64_t now)
{
	struct remote_set *s = l->s;
	char url[REMOTE_EP_MAX + 64], auth[600];
	long t = timeout_ms(l);

	req_end(s, q);
	req_reset(q);
	q->l = l;
	q->body = body;
	q->ep = ep;
	q->sent = now;
	q->watch = watch;
	q->easy = body != NULL ? rlib->easy_init() : NULL;
	if (q->easy == NULL) {
		free(body);
		q->body = NULL;
		q->done = true;
		q->res = CURLE_OUT_OF_MEMORY;
		return -1;
	}
	snprintf(url, sizeof(url), "%s://%s%s", l->u.tls ? "https" : "http",
		 l->u.ep[ep], path);
	q->hdrs = rlib->slist_append(NULL, "Content-Type: application/json");
	q->hdrs = rlib->slist_append(q->hdrs, "Expect:");
	if (l->token[0] != '\0') {
		snprintf(auth, sizeof(auth), "Authorization: %s", l->token);
		q->hdrs = rlib->slist_append(q->hdrs, auth);
	}
	rlib->easy_setopt(q->easy, CURLOPT_URL, url);
	rlib->easy_setopt(q->easy, CURLOPT_POSTFIELDS, q->body);
	rlib->easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	rlib->easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->hdrs);
	rlib->easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, on_data);
	rlib->easy_setopt(q->easy, CURLOPT_WRITEDATA, q);
	rlib->easy_setopt(q->easy, CURLOPT_PRIVATE, q);
	rlib->easy_setopt(q->easy, CURLOPT_ERRORBUFFER, q->errbuf);
	rlib->easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L);
	rlib->easy_setopt(q->easy, CURLOPT_PROXY, "");
	rlib->easy_setopt(q->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	/* One connection per request: none is open at a fork. */
	rlib->easy_setopt(q->easy, CURLOPT_FORBID_REUSE, 1L);
	rlib->easy_setopt(q->easy, CURLOPT_CONNECTTIMEOUT_MS, t);
	/* A watch lasts as long as the wait; TCP keep-alives find a dead
	 * peer. */
	rlib->easy_setopt(q->easy, CURLOPT_TIMEOUT_MS, watch ? 0L : t);
	rlib->easy_setopt(q->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	rlib->easy_setopt(q->easy, CURLOPT_TCP_KEEPIDLE, 5L);
	rlib->easy_setopt(q->easy, CURLOPT_TCP_KEEPINTVL, 2L);
	if (l->u.tls) {
		if (s->creds.cacert != NULL) {
			rlib->easy_setopt(q->easy, CURLOPT_CAINFO,
					  s->creds.cacert);
		}
		if (s->creds.cert != NULL) {
			rlib->easy_setopt(q->easy, CURLOPT_SSLCERT,
					  s->creds.cert);
		}
		if (s->creds.key != NULL) {
			rlib->easy_setopt(q->easy, CURLOPT_SSLKEY,
					  s->creds.key);
		}
	}
	if (s->multi == NULL ||
	    rlib->multi_add_handle(s->multi, q->easy) != CURLM_OK) {
		req_end(s, q);
		q->done = true;
		q->res = CURLE_FAILED_INIT;
		return -1;
	}
	q->active = true;
	return 0;
}

/* Runs curl's timer if due, then collects the requests that finished. */
static void
pump(struct remote_set *s, uint64_t now)
{
	struct req *q;
	CURLMsg *m;
	int running, left;

	if (s->multi == NULL) {
		return;
	}
	if (now >= s->timer) {
		s->timer = LOOP_NEVER;
		rlib->multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0,
					  &running);
	}
	while ((m = rlib->multi_info_read(s->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE) {
			continue;
		}
		q = NULL;
		rlib->easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
				   (char **)&q);
		if (q == NULL) {
			continue;
		}
		q->res = m->data.result;
		rlib->easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &q->http);
		q->done = true;
		req_end(s, q);
	}
}

/* How a finished request went. */
enum outcome {
	OK,	   /* 200 with a JSON body: *out holds it (caller puts it) */
	TRANSIENT, /* another endpoint, or later, may do */
	REAUTH,	   /* the token expired: authenticate again */
	FATAL,	   /* no use retrying: bad credentials, no permission */
};

static enum outcome
outcome(struct rlock *l, struct req *q, struct json_object **out)
{
	struct json_object *o;
	const char *msg;
	int64_t code;

	*out = NULL;
	l->last_code = 0;
	if (q->res != CURLE_OK) {
		/*
		 * The failures everyone knows get curl's short text; others
		 * (TLS above all) its detailed one.
		 */
		msg = q->res == CURLE_COULDNT_CONNECT ||
				q->res == CURLE_OPERATION_TIMEDOUT ||
				q->res == CURLE_COULDNT_RESOLVE_HOST ||
				q->errbuf[0] == '\0' ?
			rlib->easy_strerror(q->res) :
			q->errbuf;
		snprintf(l->last_err, sizeof(l->last_err), "%s: %s",
			 l->u.ep[q->ep], msg);
		return TRANSIENT;
	}
	o = q->resp.data != NULL ? jparse(q->resp.data) : NULL;
	if (q->http == 200 && o != NULL && jget(o, "error") == NULL) {
		l->contacted = true;
		*out = o;
		return OK;
	}
	msg = jstr(o, "error");
	code = jint(o, "code");
	l->last_code = code;
	snprintf(l->last_err, sizeof(l->last_err), "%s: %s", l->u.ep[q->ep],
		 msg != NULL ? msg : "unexpected answer");
	if (msg == NULL) {
		snprintf(l->last_err, sizeof(l->last_err),
			 "%s: not an etcd v3 endpoint (HTTP status %ld)",
			 l->u.ep[q->ep], q->http);
	}
	rlib->object_put(o);
	if (msg == NULL) {
		return TRANSIENT;
	}
	l->contacted = true;
	/* gRPC codes: 3 invalid argument (bad password), 7 denied,
	 * 16 unauthenticated (an expired token). */
	if (code == 16 && l->s->auth) {
		return REAUTH;
	}
	if (code == 3 || code == 7 || code == 16) {
		return FATAL;
	}
	return TRANSIENT;
}

/* {"name": USER, "password": PASSWORD}, malloc'd, or NULL. */
static char *
auth_body(const struct remote_set *s)
{
	struct json_buf u = { 0 }, p = { 0 };
	char *body = NULL;

	json_string(&u, s->user, strlen(s->user));
	json_string(&p, s->pass, strlen(s->pass));
	if (!u.failed && !p.failed && u.data != NULL && p.data != NULL &&
	    asprintf(&body, "{\"name\": %.*s, \"password\": %.*s}", (int)u.len,
		     u.data, (int)p.len, p.data) < 0) {
		body = NULL;
	}
	if (p.data != NULL) {
		explicit_bzero(p.data, p.len);
	}
	free(u.data);
	free(p.data);
	return body;
}

/* The body of the request for phase ph (malloc'd), or NULL. */
static char *
phase_body(struct rlock *l, enum phase ph, const char **path)
{
	struct remote_set *s = l->s;
	char pfx[4 * REMOTE_NAME_MAX], end[4 * REMOTE_NAME_MAX],
		key[4 * REMOTE_NAME_MAX + 64], *val = NULL, *body = NULL;
	char p[REMOTE_NAME_MAX + 1];
	size_t n = strlen(l->u.name);
	int rc = -1;

	/* The prefix NAME/ and the end of its range, NAME0. */
	snprintf(p, sizeof(p), "%s/", l->u.name);
	remote_b64_encode(p, n + 1, pfx, sizeof(pfx));
	p[n] = '/' + 1;
	remote_b64_encode(p, n + 1, end, sizeof(end));
	remote_b64_encode(l->key, strlen(l->key), key, sizeof(key));
	switch (ph) {
	case PH_AUTH:
		*path = "/v3/auth/authenticate";
		body = auth_body(s);
		rc = body == NULL ? -1 : 0;
		break;
	case PH_GRANT:
		*path = "/v3/lease/grant";
		rc = asprintf(&body, "{\"TTL\": \"%" PRId64 "\"}", s->ttl_s);
		break;
	case PH_PUT:
		*path = "/v3/kv/txn";
		val = malloc(strlen(s->record) / 3 * 4 + 8);
		if (val == NULL) {
			break;
		}
		remote_b64_encode(s->record, strlen(s->record), val,
				  strlen(s->record) / 3 * 4 + 8);
		rc = asprintf(
			&body,
			"{\"compare\": [{\"target\": \"CREATE\", \"key\": "
			"\"%s\", \"create_revision\": \"0\"}], \"success\": "
			"[{\"request_put\": {\"key\": \"%s\", \"value\": "
			"\"%s\", \"lease\": \"%" PRId64 "\"}}], \"failure\": "
			"[{\"request_range\": {\"key\": \"%s\"}}]}",
			key, key, val, l->lease, key);
		break;
	case PH_OWNER:
		*path = "/v3/kv/range";
		rc = asprintf(&body,
			      "{\"key\": \"%s\", \"range_end\": \"%s\", "
			      "\"sort_target\": \"CREATE\", \"sort_order\": "
			      "\"ASCEND\", \"limit\": \"1\"}",
			      pfx, end);
		break;
	case PH_PRED:
		*path = "/v3/kv/range";
		rc = asprintf(&body,
			      "{\"key\": \"%s\", \"range_end\": \"%s\", "
			      "\"sort_target\": \"CREATE\", \"sort_order\": "
			      "\"DESCEND\", \"limit\": \"1\", "
			      "\"max_create_revision\": \"%" PRId64 "\", "
			      "\"keys_only\": true}",
			      pfx, end, l->rev - 1);
		break;
	case PH_WATCH:
		*path = "/v3/watch";
		rc = asprintf(&body,
			      "{\"create_request\": {\"key\": \"%s\", "
			      "\"start_revision\": \"%" PRId64 "\", "
			      "\"filters\": [\"NOPUT\"]}}",
			      l->pred, l->watch_rev);
		break;
	case PH_HELD:
	case PH_FAILED:
	case PH_IDLE:
		break;
	}
	free(val);
	return rc < 0 ? NULL : body;
}

/* Moves on to the next endpoint after a failure; says when to retry. */
static void
failed_request(struct rlock *l, uint64_t now)
{
	l->failures++;
	l->ep = (l->ep + 1) % l->u.n;
	/* After a whole round of failures, a pause: never a busy retry. */
	l->retry_at = l->failures % l->u.n == 0 ? now + 500 * MS : now;
}

/* Ends the lock's requests; none of them is done. */
static void
end_requests(struct rlock *l)
{
	req_end(l->s, &l->op);
	req_end(l->s, &l->ka);
	req_end(l->s, &l->chk);
	l->op.done = l->ka.done = l->chk.done = false;
}

/* Our key is gone (the lease expired while we waited): start over. */
static void
start_over(struct rlock *l)
{
	log_debug("lease of lock %s lost while waiting; taking it again",
		  l->url);
	end_requests(l);
	l->lease = 0;
	l->phase = PH_GRANT;
}

static void
got_grant(struct rlock *l, struct json_object *o, uint64_t sent)
{
	l->lease = jint(o, "ID");
	l->ttl_s = jint(o, "TTL");
	if (l->lease == 0 || l->ttl_s <= 0) {
		snprintf(l->last_err, sizeof(l->last_err),
			 "%s: the lease was not granted", l->u.ep[l->op.ep]);
		l->phase = PH_FAILED;
		return;
	}
	snprintf(l->key, sizeof(l->key), "%s/%" PRIx64, l->u.name,
		 (uint64_t)l->lease);
	l->ka_ok_sent = sent;
	l->ka_next = sent + (uint64_t)l->ttl_s * SEC / 3;
	l->ka_failures = 0;
	l->phase = PH_PUT;
}

static void
got_put(struct rlock *l, struct json_object *o)
{
	struct json_object *r, *kv;

	if (rlib->get_boolean(jget(o, "succeeded"))) {
		l->rev = jint(jget(o, "header"), "revision");
	} else {
		/* A retry of a put that went through: the key is ours. */
		r = jget(jfirst(o, "responses"), "response_range");
		kv = jfirst(r, "kvs");
		l->rev = jint(kv, "create_revision");
	}
	l->phase = l->rev > 0 ? PH_OWNER : PH_GRANT;
}

/* The holder's record, from its key's value (base64). */
static void
keep_holder(struct rlock *l, struct json_object *kv)
{
	const char *v = jstr(kv, "value");
	size_t n = v != NULL ? strlen(v) : 0;
	long len;

	free(l->holder);
	l->holder = n > 0 ? malloc(n) : NULL;
	if (l->holder == NULL) {
		return;
	}
	len = remote_b64_decode(v, n, l->holder, n - 1);
	if (len <= 0) {
		free(l->holder);
		l->holder = NULL;
		return;
	}
	l->holder[len] = '\0';
}

/* Returns true when another was found holding the lock. */
static bool
got_owner(struct rlock *l, struct json_object *o)
{
	struct json_object *kv = jfirst(o, "kvs");

	if (kv == NULL) {
		start_over(l);
		return false;
	}
	if (jint(kv, "create_revision") == l->rev) {
		l->phase = PH_HELD;
		return false;
	}
	keep_holder(l, kv);
	l->phase = PH_PRED;
	return true;
}

static void
got_pred(struct rlock *l, struct json_object *o)
{
	struct json_object *kv = jfirst(o, "kvs");
	const char *k = jstr(kv, "key");

	if (k == NULL || strlen(k) >= sizeof(l->pred)) {
		/* None before ours: look who holds it, which may be us. */
		l->phase = PH_OWNER;
		return;
	}
	snprintf(l->pred, sizeof(l->pred), "%s", k);
	l->watch_rev = jint(jget(o, "header"), "revision") + 1;
	l->phase = PH_WATCH;
}

/*
 * The op request of lock l finished: the next phase.  Returns true when
 * the lock was first seen held by another.
 */
static bool
op_done(struct rlock *l, uint64_t now)
{
	struct req *q = &l->op;
	struct json_object *o;
	bool blocked = false;

	q->done = false;
	if (q->watch && q->watch_event != 0) {
		/* Deleted, or the watch was cancelled: look again. */
		l->failures = 0;
		l->phase = PH_PRED;
		return false;
	}
	switch (outcome(l, q, &o)) {
	case OK:
		break;
	case REAUTH:
		l->token[0] = '\0';
		l->resume = l->phase;
		l->phase = PH_AUTH;
		return false;
	case FATAL:
		l->phase = PH_FAILED;
		return false;
	case TRANSIENT:
		failed_request(l, now);
		/* Never reached etcd at all: a mistake, not an outage. */
		if (!l->contacted && l->failures >= l->u.n) {
			l->phase = PH_FAILED;
		}
		return false;
	}
	l->failures = 0;
	switch (l->phase) {
	case PH_AUTH:
		snprintf(l->token, sizeof(l->token), "%s",
			 jstr(o, "token") != NULL ? jstr(o, "token") : "");
		l->phase = l->resume;
		break;
	case PH_GRANT:
		got_grant(l, o, q->sent);
		break;
	case PH_PUT:
		got_put(l, o);
		break;
	case PH_OWNER:
		blocked = got_owner(l, o);
		break;
	case PH_PRED:
		got_pred(l, o);
		break;
	case PH_WATCH:
		/* The stream ended without the deletion: look again. */
		l->phase = PH_PRED;
		break;
	case PH_HELD:
	case PH_FAILED:
	case PH_IDLE:
		break;
	}
	rlib->object_put(o);
	return blocked;
}

/*
 * How often a watch is checked (check_step): a third of the TTL, the
 * rhythm of the keep-alives.  A request that small costs etcd little,
 * and a stale watch then delays a waiter by less than a TTL, less than a
 * holder that dies without releasing (its lease must expire) already
 * does.  Each request of a round has a timeout of at most a third of the
 * TTL shared by the endpoints (timeout_ms), so a round ends in time.
 */
static uint64_t
check_every(const struct rlock *l)
{
	return (uint64_t)(l->ttl_s > 0 ? l->ttl_s : 1) * SEC / 3;
}

/*
 * The safety net of a watch.  A watch on a member cut off from the rest
 * of the cluster, or on one that stops sending events without closing
 * the connection, would wait forever: nothing but a broken connection
 * ends it.  So while it runs, the key just before ours is looked up again
 * every check_every(), through the watch's endpoint first, then the
 * others in turn.  A read is linearizable: a member without a quorum
 * does not answer it.  When the key is gone (another one, or none, is
 * now just before ours), we go on as if the watch had fired; when only
 * another endpoint answered, the watch is made again through that one.
 */
static void
check_step(struct rlock *l, uint64_t now)
{
	struct req *q = &l->chk;
	struct json_object *o;
	const char *path = "", *k;
	char *body;

	if (l->phase != PH_WATCH || !l->op.active) {
		req_end(l->s, q);
		q->done = false;
		return;
	}
	if (q->done) {
		q->done = false;
		switch (outcome(l, q, &o)) {
		case OK:
			l->chk_tries = 0;
			l->chk_next = now + check_every(l);
			k = jstr(jfirst(o, "kvs"), "key");
			if (k == NULL || strcmp(k, l->pred) != 0 ||
			    q->ep != l->op.ep) {
				log_debug("lock %s: the watch through %s "
					  "missed a change or is stale; "
					  "looking again through %s",
					  l->url, l->u.ep[l->op.ep],
					  l->u.ep[q->ep]);
				req_end(l->s, &l->op);
				l->op.done = false;
				l->ep = q->ep;
				l->failures = 0;
				got_pred(l, o);
			}
			rlib->object_put(o);
			return;
		case REAUTH:
			/* The token expired: a new one, then look again. */
			req_end(l->s, &l->op);
			l->op.done = false;
			l->token[0] = '\0';
			l->phase = PH_PRED;
			return;
		case FATAL:
		case TRANSIENT:
			/* The next endpoint at once; after a round, a pause. */
			if (++l->chk_tries < l->u.n) {
				l->chk_ep = (q->ep + 1) % l->u.n;
				l->chk_next = now;
			} else {
				l->chk_tries = 0;
				l->chk_next = now + check_every(l);
			}
			break;
		}
	}
	if (!q->active && now >= l->chk_next) {
		if (l->chk_tries == 0) {
			l->chk_ep = l->op.ep;
		}
		body = phase_body(l, PH_PRED, &path);
		req_start(l, q, l->chk_ep, path, body, false, now);
	}
}

/* Makes sure the request of the lock's phase is in flight. */
static void
op_ensure(struct rlock *l, uint64_t now)
{
	const char *path = "";
	char *body;

	if (l->op.active || l->phase >= PH_HELD || now < l->retry_at) {
		return;
	}
	if (l->s->auth && l->token[0] == '\0' && l->phase != PH_AUTH) {
		l->resume = l->phase;
		l->phase = PH_AUTH;
	}
	if (l->phase == PH_WATCH) {
		log_debug("lock %s: watching the key before ours through %s",
			  l->url, l->u.ep[l->ep]);
		l->chk_next = now + check_every(l);
		l->chk_tries = 0;
	}
	body = phase_body(l, l->phase, &path);
	if (req_start(l, &l->op, l->ep, path, body, l->phase == PH_WATCH, now) <
	    0) {
		snprintf(l->last_err, sizeof(l->last_err),
			 "cannot make a request");
		l->phase = PH_FAILED;
	}
}

static void
lose(struct rlock *l, const char *what)
{
	struct remote_set *s = l->s;

	l->lost = true;
	if (!s->lost) {
		s->lost = true;
		snprintf(s->why, sizeof(s->why), "lost lock %s: %s", l->url,
			 what);
	}
}

/* The keep-alive of one lock's lease, while it has one. */
static void
keep_step(struct rlock *l, uint64_t now)
{
	struct req *q = &l->ka;
	struct json_object *o, *res;
	uint64_t ttl = (uint64_t)l->ttl_s * SEC;
	char body[64];

	if (l->lease == 0 || l->lost) {
		return;
	}
	if (q->done) {
		q->done = false;
		switch (outcome(l, q, &o)) {
		case OK:
			res = jget(o, "result");
			if (jint(res, "TTL") > 0) {
				l->ka_ok_sent = q->sent;
				l->ka_next = q->sent + ttl / 3;
				l->ka_failures = 0;
			} else if (l->phase == PH_HELD) {
				lose(l, "its lease expired or was revoked");
			} else {
				start_over(l);
			}
			rlib->object_put(o);
			break;
		case REAUTH:
		case FATAL:
		case TRANSIENT:
			log_debug("cannot renew the lease of lock %s: %s",
				  l->url, l->last_err);
			l->ka_failures++;
			l->ka_ep = (l->ka_ep + 1) % l->u.n;
			l->ka_next = l->ka_failures % l->u.n == 0 ? now +
					(ttl / 10 < 500 * MS ? ttl / 10 :
							       500 * MS) :
								    now;
			break;
		}
	}
	if (l->lease == 0 || l->lost) {
		return;
	}
	if (now >= l->ka_ok_sent + ttl) {
		if (l->phase == PH_HELD) {
			char what[900];

			snprintf(what, sizeof(what),
				 "no etcd endpoint renewed its lease within "
				 "%" PRId64 "s (last: %s)",
				 l->ttl_s, l->last_err);
			lose(l, what);
		} else {
			start_over(l);
		}
		return;
	}
	if (!q->active && now >= l->ka_next) {
		snprintf(body, sizeof(body), "{\"ID\": \"%" PRId64 "\"}",
			 l->lease);
		req_start(l, q, l->ka_ep, "/v3/lease/keepalive", strdup(body),
			  false, now);
	}
}

/* Two locks are one when tls, endpoints (as a set) and name agree. */
static int
compare_locks(const void *a, const void *b)
{
	const struct rlock *x = a, *y = b;

	return strcmp(x->order, y->order);
}

static int
compare_eps(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* "NAME s ep,ep...": the name first, then the endpoints sorted. */
static void
order_key(struct rlock *l)
{
	char eps[REMOTE_MAX_ENDPOINTS][REMOTE_EP_MAX];
	size_t i, used;

	memcpy(eps, l->u.ep, sizeof(eps));
	qsort(eps, l->u.n, sizeof(eps[0]), compare_eps);
	used = (size_t)snprintf(l->order, sizeof(l->order), "%s %c ", l->u.name,
				l->u.tls ? 's' : '-');
	for (i = 0; i < l->u.n && used < sizeof(l->order); i++) {
		used += (size_t)snprintf(l->order + used,
					 sizeof(l->order) - used, "%s,",
					 eps[i]);
	}
}

/* A credential file must be readable now, not halfway through a run. */
static int
check_readable(const char *path, const char *what)
{
	int fd;

	if (path == NULL) {
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		log_error("cannot read %s '%s': %s", what, path,
			  strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* USER:PASSWORD from the first line of the user file. */
static int
read_user_file(struct remote_set *s, const char *path)
{
	char buf[600], *colon, *nl;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		log_error("cannot read etcd user file '%s': %s", path,
			  strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	nl = strchr(buf, '\n');
	if (nl != NULL) {
		*nl = '\0';
		if (nl > buf && nl[-1] == '\r') {
			nl[-1] = '\0';
		}
	}
	colon = strchr(buf, ':');
	if (n < 0 || colon == NULL || colon == buf ||
	    (size_t)(colon - buf) >= sizeof(s->user) ||
	    strlen(colon + 1) >= sizeof(s->pass)) {
		log_error("etcd user file '%s' does not start with a "
			  "USER:PASSWORD line",
			  path);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	/* Both fit: checked above. */
	memcpy(s->user, buf, (size_t)(colon - buf));
	s->user[colon - buf] = '\0';
	memcpy(s->pass, colon + 1, strlen(colon + 1) + 1);
	explicit_bzero(buf, sizeof(buf));
	s->auth = true;
	return 0;
}

static int
read_creds(struct remote_set *s, const struct remote_creds *c)
{
	s->creds = *c;
	if (check_readable(c->cacert, "etcd CA certificate") < 0 ||
	    check_readable(c->cert, "etcd client certificate") < 0 ||
	    check_readable(c->key, "etcd client key") < 0) {
		return -1;
	}
	if ((c->cert == NULL) != (c->key == NULL)) {
		log_error("an etcd client certificate needs its key, and a "
			  "key its certificate");
		return -1;
	}
	return c->user_file != NULL ? read_user_file(s, c->user_file) : 0;
}

int
remote_prepare(char *const *paths, size_t n, const struct remote_creds *c,
	       uint64_t ttl_ns, struct remote_set **out)
{
	struct remote_set *s;
	char err[256];
	size_t i, j;

	*out = NULL;
	for (i = j = 0; i < n; i++) {
		j += remote_is_url(paths[i]);
	}
	if (j == 0) {
		return 0;
	}
	if (rlib_load(err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->v = calloc(j, sizeof(*s->v))) == NULL) {
		log_error("cannot prepare locks: %s", strerror(errno));
		free(s);
		return -1;
	}
	s->timer = LOOP_NEVER;
	/* Whole seconds, as etcd counts them; never 0. */
	s->ttl_s = (int64_t)((ttl_ns + SEC - 1) / SEC);
	if (s->ttl_s < 1) {
		s->ttl_s = 1;
	}
	for (i = 0; i < n; i++) {
		struct rlock *l = &s->v[s->n];

		if (!remote_is_url(paths[i])) {
			continue;
		}
		if (remote_parse_url(paths[i], &l->u, err, sizeof(err)) < 0) {
			log_error("invalid lock URL '%s': %s", paths[i], err);
			remote_free(s);
			return -1;
		}
		l->url = paths[i];
		s->n++;
	}
	if (read_creds(s, c) < 0) {
		remote_free(s);
		return -1;
	}
	/* The canonical order: by name, then the endpoints as a set. */
	for (i = 0; i < s->n; i++) {
		order_key(&s->v[i]);
	}
	qsort(s->v, s->n, sizeof(*s->v), compare_locks);
	for (i = j = 0; i < s->n; i++) {
		if (j > 0 && compare_locks(&s->v[j - 1], &s->v[i]) == 0) {
			continue;
		}
		s->v[j++] = s->v[i];
	}
	s->n = j;
	for (i = 0; i < s->n; i++) {
		s->v[i].s = s;
		s->v[i].phase = PH_IDLE;
	}
	*out = s;
	return 0;
}

size_t
remote_count(const struct remote_set *s)
{
	return s == NULL ? 0 : s->n;
}

const char *
remote_url_of(const struct remote_set *s, size_t i)
{
	return s->v[i].url;
}

void
remote_set_record(struct remote_set *s, const char *rec)
{
	free(s->record);
	s->record = strdup(rec);
}

void
remote_attach(struct remote_set *s, struct loop *lp)
{
	size_t i;

	if (s == NULL || lp == s->lp) {
		return;
	}
	if (s->multi != NULL) {
		/* Dropped requests are made again in the next loop. */
		for (i = 0; i < s->n; i++) {
			end_requests(&s->v[i]);
			s->v[i].ka_next = 0;
		}
		rlib->multi_cleanup(s->multi);
		s->multi = NULL;
	}
	s->lp = lp;
	s->timer = LOOP_NEVER;
	if (lp == NULL) {
		return;
	}
	s->multi = rlib->multi_init();
	if (s->multi == NULL) {
		return;
	}
	rlib->multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	rlib->multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
	rlib->multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	rlib->multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
}

void
remote_adopt(struct remote_set *s, struct loop *lp)
{
	uint64_t now = loop_now();
	size_t i;

	if (s == NULL) {
		return;
	}
	remote_attach(s, lp);
	for (i = 0; i < s->n; i++) {
		s->v[i].ka_ok_sent = now;
		s->v[i].ka_next = now;
	}
}

void
remote_acquire_begin(struct remote_set *s, size_t i, uint64_t now)
{
	struct rlock *l = &s->v[i];

	l->phase = PH_GRANT;
	l->failures = 0;
	l->contacted = false;
	l->retry_at = now;
	l->ep = 0;
}

/* A lease of a held lock was lost: stop every request of the set. */
static void
stop_all(struct remote_set *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		end_requests(&s->v[i]);
		s->v[i].lost = true;
	}
}

enum remote_progress
remote_acquire_step(struct remote_set *s, size_t i, uint64_t now)
{
	struct rlock *l = &s->v[i];
	bool blocked = false;
	size_t j;

	pump(s, now);
	if (l->op.done) {
		blocked = op_done(l, now);
	}
	for (j = 0; j <= i; j++) {
		keep_step(&s->v[j], now);
	}
	if (s->lost) {
		log_error("%s", s->why);
		stop_all(s);
		return REMOTE_FAILED;
	}
	check_step(l, now);
	op_ensure(l, now);
	if (l->phase == PH_FAILED) {
		log_error("cannot lock '%s': %s", l->url, l->last_err);
		return REMOTE_FAILED;
	}
	if (l->phase == PH_HELD) {
		return REMOTE_HELD;
	}
	return blocked ? REMOTE_BLOCKED : REMOTE_PENDING;
}

const char *
remote_holder_record(const struct remote_set *s, size_t i)
{
	return s->v[i].holder;
}

bool
remote_keep(struct remote_set *s, uint64_t now)
{
	size_t i;

	if (s == NULL || s->lost || s->lp == NULL) {
		return false;
	}
	pump(s, now);
	for (i = 0; i < s->n; i++) {
		keep_step(&s->v[i], now);
	}
	if (s->lost) {
		stop_all(s);
		return true;
	}
	return false;
}

const char *
remote_lost_why(const struct remote_set *s)
{
	return s->why;
}

uint64_t
remote_deadline(const struct remote_set *s)
{
	const struct rlock *l;
	uint64_t d;
	size_t i;

	if (s == NULL || s->lost || s->lp == NULL) {
		return LOOP_NEVER;
	}
	d = s->timer;
	for (i = 0; i < s->n; i++) {
		l = &s->v[i];
		if (l->phase < PH_HELD && !l->op.active && l->retry_at < d) {
			d = l->retry_at;
		}
		/* Only a lock being waited for wakes up for its check. */
		if (l->phase == PH_WATCH && l->op.active && !l->chk.active &&
		    l->chk_next < d) {
			d = l->chk_next;
		}
		if (l->lease == 0 || l->lost) {
			continue;
		}
		if (!l->ka.active && l->ka_next < d) {
			d = l->ka_next;
		}
		if (l->ka_ok_sent + (uint64_t)l->ttl_s * SEC < d) {
			d = l->ka_ok_sent + (uint64_t)l->ttl_s * SEC;
		}
	}
	return d;
}

const char *
remote_tokens(const struct remote_set *s, char *buf, size_t len)
{
	size_t i, used = 0;

	if (len > 0) {
		buf[0] = '\0';
	}
	for (i = 0; s != NULL && i < s->n && used < len; i++) {
		if (s->v[i].phase == PH_HELD) {
			used += (size_t)snprintf(buf + used, len - used,
						 "%s%" PRId64,
						 used > 0 ? "," : "",
						 s->v[i].rev);
		}
	}
	return buf;
}

/* One step of releasing lock l: returns true while not done. */
static bool
release_step(struct rlock *l, uint64_t now)
{
	struct json_object *o;
	char body[64];
	enum outcome oc;

	if (l->lease == 0 || l->released) {
		return false;
	}
	if (l->op.done) {
		l->op.done = false;
		oc = outcome(l, &l->op, &o);
		if (oc == OK && l->phase == PH_AUTH) {
			snprintf(l->token, sizeof(l->token), "%s",
				 jstr(o, "token") != NULL ? jstr(o, "token") :
							    "");
			l->phase = PH_IDLE;
		} else if (oc == OK || l->last_code == 5) {
			/* Revoked, or expired already (NotFound). */
			log_debug("released lock %s", l->url);
			l->released = true;
		} else if (++l->failures >= 2 * l->u.n) {
			log_debug("cannot release lock %s: %s; it frees "
				  "itself when its lease expires",
				  l->url, l->last_err);
			l->released = true;
		} else {
			l->ep = (l->ep + 1) % l->u.n;
		}
		rlib->object_put(o);
	}
	if (l->released) {
		return false;
	}
	if (!l->op.active) {
		if (l->s->auth && l->token[0] == '\0') {
			l->phase = PH_AUTH;
			req_start(l, &l->op, l->ep, "/v3/auth/authenticate",
				  auth_body(l->s), false, now);
		} else {
			snprintf(body, sizeof(body),
				 "{\"ID\": \"%" PRId64 "\"}", l->lease);
			req_start(l, &l->op, l->ep, "/v3/lease/revoke",
				  strdup(body), false, now);
		}
	}
	return true;
}

void
remote_release(struct remote_set *s, uint64_t budget_ns)
{
	uint64_t now = loop_now(), deadline = now + budget_ns;
	bool pending = true;
	struct loop lp;
	size_t i;

	if (s == NULL) {
		return;
	}
	loop_init(&lp);
	remote_attach(s, &lp);
	for (i = 0; i < s->n; i++) {
		s->v[i].failures = 0;
		s->v[i].phase = PH_IDLE;
		/* A token may have expired since: a fresh one. */
		s->v[i].token[0] = '\0';
	}
	while (pending && now < deadline) {
		pump(s, now);
		pending = false;
		for (i = 0; i < s->n; i++) {
			pending |= release_step(&s->v[i], now);
		}
		if (pending) {
			loop_turn(&lp,
				  s->timer < deadline ? s->timer : deadline);
			now = loop_now();
		}
	}
	remote_attach(s, NULL);
	for (i = 0; i < s->n; i++) {
		s->v[i].lease = 0;
	}
}

void
remote_free(struct remote_set *s)
{
	size_t i;

	if (s == NULL) {
		return;
	}
	remote_attach(s, NULL);
	for (i = 0; i < s->n; i++) {
		free(s->v[i].holder);
		free(s->v[i].op.resp.data);
		free(s->v[i].ka.resp.data);
		free(s->v[i].chk.resp.data);
	}
	free(s->v);
	free(s->record);
	explicit_bzero(s->pass, sizeof(s->pass));
	free(s);
}

#endif
