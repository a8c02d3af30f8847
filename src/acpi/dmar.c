/*
 * dmar.c - build the ACPI DMAR table (layout in dmar.h, API in
 * <viommu/acpi.h>: viommu_dmar_build()).
 *
 * The builder validates the whole topology first, computes the length,
 * and only then writes: the header, one DRHD per unit in the order given,
 * one RMRR per region, and finally the checksum byte so the table sums to
 * zero.  Fields are written byte by byte in little endian.  There is no
 * parser: the guest's firmware tables are ours, and the unit test reads
 * the bytes back against Linux's layout.
 */
#include "acpi/dmar.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define H_LENGTH 4
#define H_REVISION 8
#define H_CHECKSUM 9
#define H_OEM_ID 10
#define H_OEM_TABLE_ID 16
#define H_OEM_REVISION 24
#define H_CREATOR_ID 28
#define H_CREATOR_REVISION 32
#define H_HAW 36
#define H_FLAGS 37

#define DMAR_REVISION 1
#define CREATOR_ID "VIOM"
#define CREATOR_REVISION 1

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

/* put_str() - @s cut or space-padded to exactly @n bytes. */
static void put_str(uint8_t *p, const char *s, size_t n)
{
	size_t l = strnlen(s, n);

	memcpy(p, s, l);
	memset(p + l, ' ', n - l);
}

/* scopes_ok() - whether @n scopes at @s are well formed. */
static bool scopes_ok(const struct viommu_dmar_scope *s, unsigned int n)
{
	if (n > VIOMMU_DMAR_MAX_SCOPES || (n && !s))
		return false;
	for (unsigned int i = 0; i < n; i++)
		if ((s[i].type != VIOMMU_DMAR_SCOPE_ENDPOINT &&
		     s[i].type != VIOMMU_DMAR_SCOPE_BRIDGE) ||
		    s[i].dev > 31 || s[i].fn > 7)
			return false;
	return true;
}

/* check() - validate @t; its table length in *@len.  0 or -EINVAL. */
static int check(const struct viommu_dmar_config *t, size_t *len)
{
	size_t n = DMAR_HEADER_SIZE;

	if (!t->nr_units || !t->units || t->nr_units > VIOMMU_DMAR_MAX_UNITS ||
	    t->nr_rmrrs > VIOMMU_DMAR_MAX_RMRRS || (t->nr_rmrrs && !t->rmrrs) ||
	    t->haw_bits < 32 || t->haw_bits > 64)
		return -EINVAL;
	for (unsigned int i = 0; i < t->nr_units; i++) {
		const struct viommu_dmar_unit *u = &t->units[i];

		if ((u->reg_base & 0xfff) || !scopes_ok(u->scopes, u->nr_scopes))
			return -EINVAL;
		/* Linux: INCLUDE_PCI_ALL must be the last of its segment. */
		for (unsigned int j = i + 1; u->include_all && j < t->nr_units;
		     j++)
			if (t->units[j].segment == u->segment)
				return -EINVAL;
		n += DMAR_DRHD_SIZE + (size_t)u->nr_scopes * DMAR_SCOPE_SIZE;
	}
	for (unsigned int i = 0; i < t->nr_rmrrs; i++) {
		const struct viommu_dmar_rmrr *r = &t->rmrrs[i];

		if (r->base > r->limit || (r->base & 0xfff) ||
		    ((r->limit + 1) & 0xfff) ||
		    !scopes_ok(r->scopes, r->nr_scopes))
			return -EINVAL;
		n += DMAR_RMRR_SIZE + (size_t)r->nr_scopes * DMAR_SCOPE_SIZE;
	}
	*len = n;
	return 0;
}

/* put_scopes() - write @n scopes at @p; bytes written. */
static size_t put_scopes(uint8_t *p, const struct viommu_dmar_scope *s,
			 unsigned int n)
{
	for (unsigned int i = 0; i < n; i++, p += DMAR_SCOPE_SIZE) {
		p[0] = s[i].type;
		p[1] = DMAR_SCOPE_SIZE;
		put16(p + 2, 0);
		p[4] = 0;          /* enumeration ID: PCI scopes have none */
		p[5] = s[i].bus;   /* start bus */
		p[6] = s[i].dev;
		p[7] = s[i].fn;
	}
	return (size_t)n * DMAR_SCOPE_SIZE;
}

/* build() - the table for @t (a whole, current-version config). */
static int build(const struct viommu_dmar_config *t, uint8_t *buf,
		 size_t cap, size_t *len)
{
	size_t n, off;
	uint8_t sum = 0;

	if (!t || !len || check(t, &n))
		return -EINVAL;
	*len = n;
	if (!buf || cap < n)
		return -ENOSPC;
	memset(buf, 0, n);
	memcpy(buf, "DMAR", 4);
	put32(buf + H_LENGTH, (uint32_t)n);
	buf[H_REVISION] = DMAR_REVISION;
	put_str(buf + H_OEM_ID, t->oem_id ? t->oem_id : "VIOMMU", 6);
	put_str(buf + H_OEM_TABLE_ID,
		t->oem_table_id ? t->oem_table_id : "VIOMMUVT", 8);
	put32(buf + H_OEM_REVISION, t->oem_revision);
	memcpy(buf + H_CREATOR_ID, CREATOR_ID, 4);
	put32(buf + H_CREATOR_REVISION, CREATOR_REVISION);
	buf[H_HAW] = (uint8_t)(t->haw_bits - 1);
	buf[H_FLAGS] = t->flags;
	off = DMAR_HEADER_SIZE;
	for (unsigned int i = 0; i < t->nr_units; i++) {
		const struct viommu_dmar_unit *u = &t->units[i];
		uint8_t *p = buf + off;
		size_t l = DMAR_DRHD_SIZE + (size_t)u->nr_scopes *
			   DMAR_SCOPE_SIZE;

		put16(p, DMAR_TYPE_DRHD);
		put16(p + 2, (uint16_t)l);
		p[4] = u->include_all ? 1 : 0;
		p[5] = 0; /* one 4 KiB page of registers */
		put16(p + 6, u->segment);
		put64(p + 8, u->reg_base);
		put_scopes(p + DMAR_DRHD_SIZE, u->scopes, u->nr_scopes);
		off += l;
	}
	for (unsigned int i = 0; i < t->nr_rmrrs; i++) {
		const struct viommu_dmar_rmrr *r = &t->rmrrs[i];
		uint8_t *p = buf + off;
		size_t l = DMAR_RMRR_SIZE + (size_t)r->nr_scopes *
			   DMAR_SCOPE_SIZE;

		put16(p, DMAR_TYPE_RMRR);
		put16(p + 2, (uint16_t)l);
		put16(p + 6, r->segment);
		put64(p + 8, r->base);
		put64(p + 16, r->limit);
		put_scopes(p + DMAR_RMRR_SIZE, r->scopes, r->nr_scopes);
		off += l;
	}
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + buf[i]);
	buf[H_CHECKSUM] = (uint8_t)(0x100 - sum);
	return 0;
}

/* struct viommu_dmar_config as the first release had it (size 0). */
#define DMAR_CONFIG_SIZE_V1 \
	(offsetof(struct viommu_dmar_config, oem_revision) + sizeof(uint32_t))

int viommu_dmar_build(const struct viommu_dmar_config *cfg, void *buf,
		      size_t cap, size_t *len)
{
	struct viommu_dmar_config c = { 0 };
	size_t n;

	if (!cfg || !len)
		return -EINVAL;
	/* size 0 is the first version; never read past what the caller has */
	n = cfg->size ? cfg->size : DMAR_CONFIG_SIZE_V1;
	memcpy(&c, cfg, n < sizeof(c) ? n : sizeof(c));
	return build(&c, buf, cap, len);
}
