#ifndef SUPERVISE_REMOTELIB_H
#define SUPERVISE_REMOTELIB_H

/*
 * The libraries that remote locks need (libcurl for HTTP, json-c for
 * JSON), loaded with dlopen() the first time a remote lock is given, so
 * that a run without one never pays for them at start.  The one place
 * that knows their names and symbols: every other module calls them
 * through the table that rlib_load() fills.
 *
 * A build without their headers (SUPERVISE_REMOTE undefined, such as the
 * static build) has no table: rlib_load() says remote locks are not
 * available.
 */

#ifdef SUPERVISE_REMOTE
#include <curl/curl.h>
#include <json-c/json.h>

struct rlib {
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_multi_init) *multi_init;
	__typeof__(curl_multi_setopt) *multi_setopt;
	__typeof__(curl_multi_add_handle) *multi_add_handle;
	__typeof__(curl_multi_remove_handle) *multi_remove_handle;
	__typeof__(curl_multi_socket_action) *multi_socket_action;
	__typeof__(curl_multi_info_read) *multi_info_read;
	__typeof__(curl_multi_cleanup) *multi_cleanup;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
	__typeof__(json_tokener_parse_verbose) *tokener_parse_verbose;
	__typeof__(json_object_put) *object_put;
	__typeof__(json_object_object_get_ex) *object_get_ex;
	__typeof__(json_object_get_string) *get_string;
	__typeof__(json_object_get_string_len) *get_string_len;
	__typeof__(json_object_get_int64) *get_int64;
	__typeof__(json_object_get_boolean) *get_boolean;
	__typeof__(json_object_is_type) *is_type;
	__typeof__(json_object_array_length) *array_length;
	__typeof__(json_object_array_get_idx) *array_get_idx;
};

/* The table, once rlib_load() succeeded; else NULL. */
extern const struct rlib *rlib;
#endif

/*
 * Loads both libraries and initialises libcurl (once; later calls return
 * at once).  Returns 0, or -1 with a one-line reason in err (a build
 * without them, a library missing on this system).  Never exits.
 */
int rlib_load(char *err, size_t errlen);

#endif
