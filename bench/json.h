/*
 * json.h - a small JSON reader for viommu-bench's guest subcommands.
 *
 * `viommu-bench guest` and `viommu-bench guest-io` read what their
 * tools/viommu-run children wrote (--json, --qemu-info): our own format,
 * read without a dependency.  The reader is strict (one value, then only
 * white space), bounded (depth JSON_MAX_DEPTH, files up to JSON_MAX_BYTES)
 * and keeps numbers as doubles; strings keep ASCII escapes only (others
 * become '?'), which is all viommu-run writes.  Not thread-safe per value;
 * values are independent.
 */
#ifndef VIOMMU_BENCH_JSON_H
#define VIOMMU_BENCH_JSON_H

#include <stddef.h>

#define JSON_MAX_DEPTH 32
#define JSON_MAX_BYTES (64u << 20)

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

/* One JSON value; objects keep their members' keys in kids[i].key. */
struct jval {
	enum jtype t;
	double num;
	char *str;
	char *key;
	struct jval *kids;
	int n;
};

/* jparse_text() - parse the @n bytes at @buf (NUL-terminated) into @v;
 * 0 or -EINVAL (@v is then empty). */
int jparse_text(const char *buf, size_t n, struct jval *v);

/* jload() - parse the JSON file @path into @v; 0, -errno from fopen,
 * -EIO (unreadable or larger than JSON_MAX_BYTES) or -EINVAL. */
int jload(const char *path, struct jval *v);

/* jfree() - release what @v holds (not @v itself). */
void jfree(struct jval *v);

/* jget() - member @key of object @v, or NULL (also when @v is NULL or not
 * an object). */
const struct jval *jget(const struct jval *v, const char *key);

/* jstr() - the string member @key of @v, or NULL. */
const char *jstr(const struct jval *v, const char *key);

/* jnum() - member @key of @v as a number (a number, or a string holding
 * one), or -1. */
double jnum(const struct jval *v, const char *key);

/* jsum() - the sum of the numbers in object @v, two levels of objects
 * deep; -1 if @v is not an object. */
double jsum(const struct jval *v);

#endif
