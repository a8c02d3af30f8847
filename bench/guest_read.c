/*
 * guest_read.c - `viommu-bench guest`: reading what a boot gave.
 *
 * Each boot is a tools/viommu-run child that writes its results as JSON
 * (--json): per boot the scenario results, every VIOMMU-BENCH line of the
 * guest as an object of strings (name, size, count, ns, ...; unknown keys
 * are kept and ignored here) and the server's counters.  This file holds
 * the two extractions (the JSON reader is json.c, shared with guest-io):
 * one boot's figures into struct gb_boot, and the QEMU that
 * `viommu-run --qemu-info` resolved.  A figure that is missing, not a
 * number or not positive is left at -1: the report shows "-" for it.
 */
#include "guest.h"
#include "json.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* viommu-run --qemu-info                                             */

/* gb_take_qemu_info() - see guest.h. */
bool gb_take_qemu_info(struct gb_qemu *q, char *out)
{
	char *line = NULL, *p = out;
	const char *path, *ver, *door;
	struct jval doc;
	bool ok;

	for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (*p == '{')
			line = p;
	if (!line)
		return false;
	line[strcspn(line, "\n")] = 0;
	if (jparse_text(line, strlen(line), &doc))
		return false;
	path = jstr(&doc, "path");
	ver = jstr(&doc, "version");
	door = jstr(&doc, "door");
	ok = path && ver && door;
	if (ok) {
		snprintf(q->path, sizeof(q->path), "%s", path);
		snprintf(q->version, sizeof(q->version), "%s", ver);
		snprintf(q->door, sizeof(q->door), "%s", door);
	}
	jfree(&doc);
	return ok;
}

/* ------------------------------------------------------------------ */
/* One boot's figures                                                 */

/* size_index() - index of @size in the options' sizes, or -1. */
static int size_index(const struct gb_opts *o, double size)
{
	for (int i = 0; i < o->nsizes; i++)
		if (o->sizes[i] == size)
			return i;
	return -1;
}

/* chunk_index() - index of @size in gb_chunks[], or -1. */
static int chunk_index(double size)
{
	for (int i = 0; i < GB_NCHUNKS; i++)
		if (gb_chunks[i] == size)
			return i;
	return -1;
}

/* mmio_index() - index of the register access called @name, or -1. */
static int mmio_index(const char *name)
{
	for (int i = 0; i < M_COUNT; i++)
		if (!strcmp(name, gb_mmio_names[i]))
			return i;
	return -1;
}

/* take_line() - record one VIOMMU-BENCH line (an object of strings). */
static void take_line(const struct gb_opts *o, struct gb_boot *b,
		      const struct jval *l)
{
	const char *name = jstr(l, "name"), *iommu;
	double size = jnum(l, "size"), count = jnum(l, "count");
	double ns = jnum(l, "ns");
	int i;

	if (!name || count <= 0 || ns <= 0)
		return;
	if (!strcmp(name, "map_unmap") && (i = size_index(o, size)) >= 0) {
		b->pairs[i] = count * 1e9 / ns;
		b->segs[i] = (int)jnum(l, "segs");
	} else if (!strcmp(name, "ring_copy") &&
		   (i = chunk_index(size)) >= 0) {
		iommu = jstr(l, "iommu");
		if (iommu && !strcmp(iommu, "bypass"))
			b->ring_bypass[i] = count * size / ns * 1e3;
		else
			b->ring[i] = count * size / ns * 1e3;
	} else if ((i = mmio_index(name)) >= 0) {
		b->mmio_ns[i] = ns / count;
	}
}

/* boot_status() - whether the bench scenario passed; reason in b->why. */
static bool boot_status(struct gb_boot *b, const struct jval *boot)
{
	const struct jval *res = jget(boot, "results"), *err;

	for (int i = 0; res && res->t == J_ARR && i < res->n; i++) {
		const char *sc = jstr(&res->kids[i], "scenario");
		const char *st = jstr(&res->kids[i], "status");
		const char *why = jstr(&res->kids[i], "reason");

		if (!sc || strcmp(sc, "bench"))
			continue;
		if (st && !strcmp(st, "pass"))
			return true;
		snprintf(b->why, sizeof(b->why), "bench %s%s%s",
			 st ? st : "?", why && *why ? ": " : "",
			 why ? why : "");
		return false;
	}
	err = jget(boot, "errors");
	snprintf(b->why, sizeof(b->why), "%s", err && err->t == J_ARR &&
		 err->n && err->kids[0].t == J_STR ? err->kids[0].str :
		 "no bench result");
	return false;
}

/* gb_take_json() - see guest.h. */
void gb_take_json(const struct gb_opts *o, struct gb_boot *b,
		  const char *path, int rc)
{
	const struct jval *boots, *boot, *lines, *stats;
	struct jval doc;

	if (jload(path, &doc)) {
		snprintf(b->why, sizeof(b->why), "viommu-run exit status %d, "
			 "no readable JSON", rc);
		return;
	}
	boots = jget(&doc, "boots");
	boot = boots && boots->t == J_ARR && boots->n ? &boots->kids[0] : NULL;
	lines = jget(boot, "bench");
	stats = jget(boot, "server_stats");
	b->ok = boot && boot_status(b, boot);
	b->polled = jnum(stats, "polled_requests");
	b->requests = jsum(jget(stats, "requests"));
	b->srv_cpu = jnum(stats, "cpu_seconds");
	b->srv_secs = jnum(stats, "seconds");
	for (int i = 0; lines && lines->t == J_ARR && i < lines->n; i++)
		take_line(o, b, &lines->kids[i]);
	jfree(&doc);
}
