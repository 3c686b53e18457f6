#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

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
static struct rlib table;

/* The sonames of Debian's libcurl4 (OpenSSL) and libjson-c5. */
#define CURL_SONAME "libcurl.so.4"
#define JSON_SONAME "libjson-c.so.5"

/* A symbol and where its address goes in the table. */
struct sym {
	const char *name;
	size_t off;
};

static const struct sym curl_syms[] = {
	{ "curl_global_init", offsetof(struct rlib, global_init) },
	{ "curl_easy_init", offsetof(struct rlib, easy_init) },
	{ "curl_easy_setopt", offsetof(struct rlib, easy_setopt) },
	{ "curl_easy_getinfo", offsetof(struct rlib, easy_getinfo) },
	{ "curl_easy_cleanup", offsetof(struct rlib, easy_cleanup) },
	{ "curl_easy_strerror", offsetof(struct rlib, easy_strerror) },
	{ "curl_multi_init", offsetof(struct rlib, multi_init) },
	{ "curl_multi_setopt", offsetof(struct rlib, multi_setopt) },
	{ "curl_multi_add_handle", offsetof(struct rlib, multi_add_handle) },
	{ "curl_multi_remove_handle",
	  offsetof(struct rlib, multi_remove_handle) },
	{ "curl_multi_socket_action",
	  offsetof(struct rlib, multi_socket_action) },
	{ "curl_multi_info_read", offsetof(struct rlib, multi_info_read) },
	{ "curl_multi_cleanup", offsetof(struct rlib, multi_cleanup) },
	{ "curl_slist_append", offsetof(struct rlib, slist_append) },
	{ "curl_slist_free_all", offsetof(struct rlib, slist_free_all) },
};

static const struct sym json_syms[] = {
	{ "json_tokener_parse_verbose",
	  offsetof(struct rlib, tokener_parse_verbose) },
	{ "json_object_put", offsetof(struct rlib, object_put) },
	{ "json_object_object_get_ex", offsetof(struct rlib, object_get_ex) },
	{ "json_object_get_string", offsetof(struct rlib, get_string) },
	{ "json_object_get_string_len", offsetof(struct rlib, get_string_len) },
	{ "json_object_get_int64", offsetof(struct rlib, get_int64) },
	{ "json_object_get_boolean", offsetof(struct rlib, get_boolean) },
	{ "json_object_is_type", offsetof(struct rlib, is_type) },
	{ "json_object_array_length", offsetof(struct rlib, array_length) },
	{ "json_object_array_get_idx", offsetof(struct rlib, array_get_idx) },
};

#define NSYMS(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Resolves every symbol of a library into the table (POSIX allows the
 * use of dlsym()'s result as a function pointer), or says which is
 * missing.
 */
static int
resolve(void *lib, const char *soname, const struct sym *syms, size_t n,
	char *err, size_t errlen)
{
	void *addr;
	size_t i;

	for (i = 0; i < n; i++) {
		addr = dlsym(lib, syms[i].name);
		if (addr == NULL) {
			snprintf(err, errlen, "cannot find %s in %s",
				 syms[i].name, soname);
			return -1;
		}
		memcpy((char *)&table + syms[i].off, &addr, sizeof(addr));
	}
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
	if (resolve(curl, CURL_SONAME, curl_syms, NSYMS(curl_syms), err,
		    errlen) < 0 ||
	    resolve(json, JSON_SONAME, json_syms, NSYMS(json_syms), err,
		    errlen) < 0) {
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
