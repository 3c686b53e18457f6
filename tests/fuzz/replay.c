/*
 * A main() for the fuzz harnesses where libFuzzer is not available (gcc):
 * runs LLVMFuzzerTestOneInput() once on each file named on the command
 * line, and on each file of each directory named.  `make fuzz-replay`
 * builds every harness with it (and ASan + UBSan) and replays the seed
 * corpora and the regression inputs.
 */
#include <sys/stat.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		perror(path);
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (buf == NULL) {
				abort();
			}
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0) {
			break;
		}
		len += n;
	}
	fclose(f);
	/* An exact-size copy, so that reads past the end are caught. */
	{
		uint8_t *exact = malloc(len ? len : 1);
		if (exact == NULL) {
			abort();
		}
		if (len > 0) {
			memcpy(exact, buf, len);
		}
		free(buf);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	return 0;
}

static int
run_path(const char *path, int *count)
{
	struct stat st;
	struct dirent **names;
	char sub[4096];
	int n, i, rc = 0;

	if (stat(path, &st) < 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return run_file(path);
	}
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		perror(path);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", path,
				 names[i]->d_name);
			if (run_path(sub, count) < 0) {
				rc = -1;
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	int i, count = 0, rc = 0;

	for (i = 1; i < argc; i++) {
		if (run_path(argv[i], &count) < 0) {
			rc = 1;
		}
	}
	printf("%s: %d inputs replayed\n", argv[0], count);
	return rc;
}
