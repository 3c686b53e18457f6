#include <dlfcn.h>
#include <stdio.h>

#include "remotelib.h"

#ifndef SUPERVISE_REMOTE

int
rlib_load(char *err, size_t errlen)
{
	snprintf(err, errlen, "remote locks are not available in this build");
	return -1;
}

#else

const struct rlib *rlib;

/* The sonames of Debian's libcurl4 (OpenSSL) and libjson-c5. */
#define CURL_SONAME "libcurl.so.4"
#define JSON_SONAME "libjson-c.so.5"

/*
 * Resolves one symbol into its slot of the table (POSIX allows the cast
 * of dlsym()'s result to a function pointer), or says which is missing.
 */
static int
sym(void *lib, const char *soname, const char *name, void **slot, char *err,
    size_t errlen)
{
	*slot = dlsym(lib, name);
	if (*slot == NULL) {
		snprintf(err, errlen, "cannot find %s in %s", name, soname);
		return -1;
	}
	return 0;
}

#define RESOLVE(lib, soname, field, name)                                      \
	do {                                                                   \
		if (sym(lib, soname, name, (void **)&table.field, err,         \
			errlen) < 0) {                                         \
			return -1;                                             \
		}                                                              \
	} while (0)
#define CURL_SYM(field, name) RESOLVE(curl, CURL_SONAME, field, name)
#define JSON_SYM(field, name) RESOLVE(json, JSON_SONAME, field, name)

static struct rlib table;

static int
resolve_curl(void *curl, char *err, size_t errlen)
{
	CURL_SYM(global_init, "curl_global_init");
	CURL_SYM(easy_init, "curl_easy_init");
	CURL_SYM(easy_setopt, "curl_easy_setopt");
	CURL_SYM(easy_getinfo, "curl_easy_getinfo");
	CURL_SYM(easy_cleanup, "curl_easy_cleanup");
	CURL_SYM(easy_strerror, "curl_easy_strerror");
	CURL_SYM(multi_init, "curl_multi_init");
	CURL_SYM(multi_setopt, "curl_multi_setopt");
	CURL_SYM(multi_add_handle, "curl_multi_add_handle");
	CURL_SYM(multi_remove_handle, "curl_multi_remove_handle");
	CURL_SYM(multi_socket_action, "curl_multi_socket_action");
	CURL_SYM(multi_info_read, "curl_multi_info_read");
	CURL_SYM(multi_cleanup, "curl_multi_cleanup");
	CURL_SYM(slist_append, "curl_slist_append");
	CURL_SYM(slist_free_all, "curl_slist_free_all");
	return 0;
}

static int
resolve_json(void *json, char *err, size_t errlen)
{
	JSON_SYM(tokener_parse_verbose, "json_tokener_parse_verbose");
	JSON_SYM(object_put, "json_object_put");
	JSON_SYM(object_get_ex, "json_object_object_get_ex");
	JSON_SYM(get_string, "json_object_get_string");
	JSON_SYM(get_string_len, "json_object_get_string_len");
	JSON_SYM(get_int64, "json_object_get_int64");
	JSON_SYM(get_boolean, "json_object_get_boolean");
	JSON_SYM(is_type, "json_object_is_type");
	JSON_SYM(array_length, "json_object_array_length");
	JSON_SYM(array_get_idx, "json_object_array_get_idx");
	return 0;
}

int
rlib_load(char *err, size_t errlen)
{
	void *curl, *json;

	if (rlib != NULL) {
		return 0;
	}
	/*
	 * RTLD_NOW: a missing symbol shows here, not in the middle of a
	 * run.  The handles stay open for the life of the process.
	 */
	curl = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (curl == NULL) {
		snprintf(err, errlen,
			 "remote locks need %s (Debian: libcurl4): %s",
			 CURL_SONAME, dlerror());
		return -1;
	}
	json = dlopen(JSON_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (json == NULL) {
		snprintf(err, errlen,
			 "remote locks need %s (Debian: libjson-c5): %s",
			 JSON_SONAME, dlerror());
		return -1;
	}
	if (resolve_curl(curl, err, errlen) < 0 ||
	    resolve_json(json, err, errlen) < 0) {
		return -1;
	}
	if (table.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return -1;
	}
	rlib = &table;
	return 0;
}

#endif
