/*
 * refdrv.c - the reference SMMUv3 driver, part one: guest memory from the
 * chunk, MMIO and polling, the command queue (batches, CMD_SYNC by CONS or
 * MSI polling, command errors skipped), the event queue, probe, the reset
 * sequence, and creation.  See refdrv.h for what the driver does and the
 * Linux behaviour it follows; refdrv_internal.h for the layout.
 */
#include "refdrv/smmuv3_internal.h"

const unsigned int drv_ps_bits[6] = { 32, 36, 40, 42, 44, 48 };

/* ---- guest memory -------------------------------------------------------- */

/* page_used() - whether chunk page @p is allocated. */
static bool page_used(const struct smmudrv *d, uint64_t p)
{
	return d->pagemap[p / 64] & BIT(p % 64);
}

/* pages_mark() - mark @n chunk pages from @p (un)allocated. */
static void pages_mark(struct smmudrv *d, uint64_t p, uint64_t n, bool used)
{
	for (uint64_t i = p; i < p + n; i++) {
		if (used)
			d->pagemap[i / 64] |= BIT(i % 64);
		else
			d->pagemap[i / 64] &= ~BIT(i % 64);
	}
}

/* first_used() - the first allocated page in [p, p + n), or UINT64_MAX. */
static uint64_t first_used(const struct smmudrv *d, uint64_t p, uint64_t n)
{
	for (uint64_t i = p; i < p + n; i++)
		if (page_used(d, i))
			return i;
	return UINT64_MAX;
}

/*
 * drv_gmem_alloc() - zeroed guest memory from the chunk: @size bytes aligned
 * to @align (powers of two; at least a page each).  First fit.  The event
 * queue is allocated first, so GPA 0 never names any other structure and
 * callers may use 0 for "none".
 */
int drv_gmem_alloc(struct smmudrv *d, uint64_t size, uint64_t align,
		   uint64_t *gpa)
{
	uint64_t np = (size + PG - 1) / PG, al = MAX(align, PG);
	uint64_t step = al / PG, first, p, u;

	first = (((d->cfg.ram_gpa + al - 1) & ~(al - 1)) - d->cfg.ram_gpa) /
		PG;
	for (p = first; p + np <= d->npages;) {
		u = first_used(d, p, np);
		if (u == UINT64_MAX) {
			pages_mark(d, p, np, true);
			memset(d->ram + p * PG, 0, np * PG);
			d->info.mem_used += np * PG;
			*gpa = d->cfg.ram_gpa + p * PG;
			return 0;
		}
		p = first + ((u + 1 - first + step - 1) / step) * step;
	}
	log_warn(&d->cfg.log, "smmudrv: out of guest memory (%llu bytes)",
		 (unsigned long long)size);
	return -ENOSPC;
}

/* gmem_free() - give back what drv_gmem_alloc() gave. */
static void gmem_free(struct smmudrv *d, uint64_t gpa, uint64_t size)
{
	uint64_t np = (size + PG - 1) / PG, p = (gpa - d->cfg.ram_gpa) / PG;

	if (gpa < d->cfg.ram_gpa || p + np > d->npages)
		return;
	pages_mark(d, p, np, false);
	d->info.mem_used -= np * PG;
}

/* lp_alloc() / lp_free() - the LPAE builder's table allocator. */
static int lp_alloc(void *opaque, uint64_t size, uint64_t align,
		    uint64_t *gpa)
{
	return drv_gmem_alloc(opaque, size, align, gpa) ? -ENOMEM : 0;
}

static void lp_free(void *opaque, uint64_t gpa, uint64_t size)
{
	gmem_free(opaque, gpa, size);
}

/* hq() - host address of chunk GPA @gpa (the caller checked it). */
static uint64_t *hq(const struct smmudrv *d, uint64_t gpa)
{
	return (uint64_t *)(void *)(d->ram + (gpa - d->cfg.ram_gpa));
}

/* drv_st64() / drv_ld64() - one single-copy-atomic little-endian qword. */
void drv_st64(const struct smmudrv *d, uint64_t gpa, uint64_t v)
{
	__atomic_store_n(hq(d, gpa), htole64(v), __ATOMIC_RELEASE);
}

uint64_t drv_ld64(const struct smmudrv *d, uint64_t gpa)
{
	return le64toh(__atomic_load_n(hq(d, gpa), __ATOMIC_ACQUIRE));
}

/* ---- MMIO ---------------------------------------------------------------- */

/* model_read() / model_write() - MMIO straight to the model. */
static int model_read(void *o, uint64_t off, unsigned int size, uint64_t *v)
{
	return viommu_smmuv3_mmio_read(o, off, size, v);
}

static int model_write(void *o, uint64_t off, unsigned int size, uint64_t v)
{
	return viommu_smmuv3_mmio_write(o, off, size, v);
}

/* rd32() / wr32() / wr64() - MMIO; a refused access is remembered. */
static uint32_t rd32(struct smmudrv *d, uint32_t off)
{
	uint64_t v = 0;

	if (d->mmio.read(d->mmio.opaque, off, 4, &v))
		d->mmio_err = true;
	return (uint32_t)v;
}

static void wr32(struct smmudrv *d, uint32_t off, uint32_t v)
{
	if (d->mmio.write(d->mmio.opaque, off, 4, v))
		d->mmio_err = true;
}

static void wr64(struct smmudrv *d, uint32_t off, uint64_t v)
{
	if (d->mmio.write(d->mmio.opaque, off, 8, v))
		d->mmio_err = true;
}

/* poll32() - wait for (@off & @mask) == @want. */
static int poll32(struct smmudrv *d, uint32_t off, uint32_t mask,
		  uint32_t want)
{
	for (unsigned int i = 0; i < SMMUDRV_POLL_MAX; i++) {
		if ((rd32(d, off) & mask) == want)
			return 0;
		d->info.polls++;
	}
	log_err(&d->cfg.log, "smmudrv: register %#x never read %#x", off,
		want);
	return -ETIMEDOUT;
}

/* write_cr0() - CR0 = @v, acknowledged through CR0ACK. */
static int write_cr0(struct smmudrv *d, uint32_t v)
{
	wr32(d, CR0, v);
	return poll32(d, CR0ACK, UINT32_MAX, v);
}

/* ---- command queue ------------------------------------------------------- */

/* q_wrap_mask() - the PROD/CONS bits that count: index and wrap. */
static uint32_t q_wrap_mask(const struct q *q)
{
	return (2u << q->log2) - 1;
}

/* q_idx() - the entry index of a PROD/CONS value. */
static uint32_t q_idx(const struct q *q, uint32_t v)
{
	return v & ((1u << q->log2) - 1);
}

/* q_free() - entries the producer may still write. */
static uint32_t q_free(const struct q *q)
{
	uint32_t used = (q->prod - q->cons) & q_wrap_mask(q);

	return (1u << q->log2) - used;
}

/* ack_gerror() - acknowledge GERROR @bits through GERRORN. */
static void ack_gerror(struct smmudrv *d, uint32_t bits)
{
	wr32(d, GERRORN, rd32(d, GERRORN) ^ bits);
	d->info.gerrors += (uint64_t)__builtin_popcount(bits);
}

/*
 * skip_cmd_error() - the queue stopped on a bad command: turn that entry
 * into a CMD_SYNC and acknowledge, so processing resumes (Linux does the
 * same).
 */
static void skip_cmd_error(struct smmudrv *d)
{
	uint32_t cons = rd32(d, CMDQ_CONS);
	uint64_t ent = d->cmdq.base + (uint64_t)q_idx(&d->cmdq, cons) * 16;
	uint32_t code = (cons >> 24) & 0x7f;

	log_warn(&d->cfg.log, "smmudrv: command %#llx at CONS %#x: CERROR "
		 "%u, skipped", (unsigned long long)drv_ld64(d, ent), cons,
		 code);
	drv_st64(d, ent, OP_CMD_SYNC);
	drv_st64(d, ent + 8, 0);
	d->info.cmd_errors++;
	d->info.last_cerror = code;
	d->cerr = true;
	ack_gerror(d, GERR_CMDQ);
}

/* cmdq_stuck() - handle a command error if one is active; true if so. */
static bool cmdq_stuck(struct smmudrv *d)
{
	if (!((rd32(d, GERROR) ^ rd32(d, GERRORN)) & GERR_CMDQ))
		return false;
	skip_cmd_error(d);
	return true;
}

/* cmdq_read_cons() - refresh the driver's copy of CMDQ_CONS. */
static void cmdq_read_cons(struct smmudrv *d)
{
	d->cmdq.cons = rd32(d, CMDQ_CONS) & q_wrap_mask(&d->cmdq);
}

/* cmdq_wait_space() - wait until @n entries are free. */
static int cmdq_wait_space(struct smmudrv *d, uint32_t n)
{
	for (unsigned int i = 0; i < SMMUDRV_POLL_MAX; i++) {
		if (q_free(&d->cmdq) >= n)
			return 0;
		cmdq_read_cons(d);
		if (q_free(&d->cmdq) < n) {
			d->info.polls++;
			cmdq_stuck(d);
		}
	}
	log_err(&d->cfg.log, "smmudrv: command queue never drained");
	return -ETIMEDOUT;
}

/*
 * wait_sync() - wait for the CMD_SYNC at @ent, after which PROD reads
 * @end: by its MSI write zeroing the entry's first word, or by CMDQ_CONS
 * reaching @end.
 */
static int wait_sync(struct smmudrv *d, uint64_t ent, uint32_t end)
{
	uint32_t *word = (uint32_t *)(void *)hq(d, ent);

	for (unsigned int i = 0; i < SMMUDRV_POLL_MAX; i++) {
		if (d->info.msi_sync) {
			if (!__atomic_load_n(word, __ATOMIC_ACQUIRE)) {
				d->cmdq.cons = end;
				return 0;
			}
		} else {
			cmdq_read_cons(d);
			if (d->cmdq.cons == end)
				return 0;
		}
		d->info.polls++;
		cmdq_stuck(d);
	}
	log_err(&d->cfg.log, "smmudrv: CMD_SYNC never completed");
	return -ETIMEDOUT;
}

/* cmdq_put() - write one entry at PROD and advance the driver's PROD. */
static uint64_t cmdq_put(struct smmudrv *d, uint64_t d0, uint64_t d1)
{
	struct q *q = &d->cmdq;
	uint64_t ent = q->base + (uint64_t)q_idx(q, q->prod) * 16;

	drv_st64(d, ent, d0);
	drv_st64(d, ent + 8, d1);
	q->prod = (q->prod + 1) & q_wrap_mask(q);
	return ent;
}

/*
 * cmdq_issue() - queue @n commands (pairs of qwords), plus a CMD_SYNC if
 * @sync, ring the doorbell once and, with @sync, wait for completion.
 * Return: 0; -EIO (a command error since the last report); -ETIMEDOUT.
 */
static int cmdq_issue(struct smmudrv *d, const uint64_t (*cmds)[2],
		      unsigned int n, bool sync)
{
	uint64_t ent = 0, s0 = OP_CMD_SYNC;
	int ret;

	ret = cmdq_wait_space(d, n + sync);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < n; i++)
		cmdq_put(d, cmds[i][0], cmds[i][1]);
	if (sync) {
		uint64_t at = d->cmdq.base +
			      (uint64_t)q_idx(&d->cmdq, d->cmdq.prod) * 16;

		/* MSI polling: the SMMU writes MSIData 0 over this entry. */
		if (d->info.msi_sync)
			s0 |= (SYNC_CS_IRQ << 12) | (3ull << 22) |
			      (0xfull << 24);
		ent = cmdq_put(d, s0, d->info.msi_sync ?
			       (at & GENMASK(51, 2)) : 0);
	}
	wr32(d, CMDQ_PROD, d->cmdq.prod);
	d->info.doorbells++;
	d->info.cmds += n + sync;
	if (!sync)
		return 0;
	ret = wait_sync(d, ent, d->cmdq.prod);
	if (ret)
		return ret;
	d->info.syncs++;
	ret = d->cerr ? -EIO : 0;
	d->cerr = false;
	return ret;
}

/* drv_batch_add() - append; a full batch goes out first (without a sync). */
int drv_batch_add(struct smmudrv *d, struct batch *b, uint64_t d0,
		  uint64_t d1)
{
	if (b->n == SMMUDRV_BATCH) {
		int ret = cmdq_issue(d, b->c, b->n, false);

		b->n = 0;
		if (ret)
			return ret;
	}
	b->c[b->n][0] = d0;
	b->c[b->n][1] = d1;
	b->n++;
	return 0;
}

/* drv_batch_submit() - issue the rest with a CMD_SYNC and wait. */
int drv_batch_submit(struct smmudrv *d, struct batch *b)
{
	int ret = cmdq_issue(d, b->c, b->n, true);

	b->n = 0;
	return ret;
}

/* drv_cmd_sync1() - one command and a CMD_SYNC. */
int drv_cmd_sync1(struct smmudrv *d, uint64_t d0, uint64_t d1)
{
	const uint64_t c[1][2] = { { d0, d1 } };

	return cmdq_issue(d, c, 1, true);
}

/* ---- event queue --------------------------------------------------------- */

/* evt_decode() - the fields of a raw event record. */
static void evt_decode(struct smmudrv_event *ev)
{
	const uint64_t *r = ev->raw;

	ev->type = (uint8_t)FIELD(r[0], 7, 0);
	ev->ssv = r[0] & BIT(11);
	ev->ssid = (uint32_t)FIELD(r[0], 31, 12);
	ev->sid = (uint32_t)(r[0] >> 32);
	ev->pnu = r[1] & BIT(33);
	ev->ind = r[1] & BIT(34);
	ev->rnw = r[1] & BIT(35);
	ev->s2 = r[1] & BIT(39);
	ev->cls = (uint8_t)FIELD(r[1], 41, 40);
	ev->addr = r[2];
	ev->ipa = r[3] & GENMASK(51, 12);
	ev->fetch = r[3] & GENMASK(51, 3);
}

/* smmudrv_event_pop() - see refdrv.h. */
int smmudrv_event_pop(struct smmudrv *d, struct smmudrv_event *ev)
{
	struct q *q;
	uint32_t prod, wm;
	uint64_t ent;

	if (!d || !ev)
		return -EINVAL;
	q = &d->evtq;
	wm = q_wrap_mask(q);
	prod = rd32(d, EVTQ_PROD);
	if ((prod ^ q->cons) & Q_OVF) {
		log_warn(&d->cfg.log, "smmudrv: event queue overflowed, "
			 "events lost");
		d->info.evtq_overflows++;
		q->cons = (q->cons & wm) | (prod & Q_OVF);
		wr32(d, EVTQ_CONS, q->cons);
	}
	if ((prod & wm) == (q->cons & wm))
		return 0;
	ent = q->base + (uint64_t)q_idx(q, q->cons) * 32;
	for (int i = 0; i < 4; i++)
		ev->raw[i] = drv_ld64(d, ent + 8 * i);
	evt_decode(ev);
	q->cons = ((q->cons + 1) & wm) | (prod & Q_OVF);
	wr32(d, EVTQ_CONS, q->cons);
	d->info.events++;
	return 1;
}

/* smmudrv_gerror() - see refdrv.h. */
int smmudrv_gerror(struct smmudrv *d, uint32_t *active)
{
	uint32_t act;
	int ret = 0;

	if (!d)
		return -EINVAL;
	act = (rd32(d, GERROR) ^ rd32(d, GERRORN)) & GERR_ALL;
	if (act & GERR_CMDQ) {
		skip_cmd_error(d);
		d->cerr = false;
		ret = -EIO;
	}
	if (act & ~GERR_CMDQ)
		ack_gerror(d, act & ~GERR_CMDQ);
	if (active)
		*active = act;
	return ret;
}

/* ---- probe --------------------------------------------------------------- */

/* probe_idr0() - the IDR0 checks and features. */
static int probe_idr0(struct smmudrv *d, uint32_t i0)
{
	struct smmudrv_info *in = &d->info;
	unsigned int endian = (unsigned int)FIELD(i0, 22, 21);

	if (endian != 0 && endian != 2) {
		log_err(&d->cfg.log, "smmudrv: IDR0.TTENDIAN %u: no "
			"little-endian tables", endian);
		return -ENODEV;
	}
	in->stage2 = i0 & BIT(0);
	in->stage1 = i0 & BIT(1);
	if (!in->stage1 && !in->stage2) {
		log_err(&d->cfg.log, "smmudrv: no translation stage");
		return -ENODEV;
	}
	if (!(FIELD(i0, 3, 2) & 2)) {
		log_err(&d->cfg.log, "smmudrv: IDR0.TTF: no AArch64 tables");
		return -ENODEV;
	}
	in->httu_ha = FIELD(i0, 7, 6) >= 1;
	in->httu_hd = FIELD(i0, 7, 6) == 2;
	in->asid16 = i0 & BIT(12);
	in->msi = i0 & BIT(13);
	in->sev = i0 & BIT(14);
	in->vmid16 = i0 & BIT(18);
	in->cd2l = i0 & BIT(19);
	in->st2l = FIELD(i0, 28, 27) == 1;
	return 0;
}

/* probe_idr1() - presets, queue limits, ID sizes. */
static int probe_idr1(struct smmudrv *d, uint32_t i1)
{
	struct smmudrv_info *in = &d->info;
	unsigned int cmdqs = (unsigned int)FIELD(i1, 25, 21);

	if (i1 & (BIT(30) | BIT(29) | BIT(28))) {
		log_err(&d->cfg.log, "smmudrv: tables/queues preset or REL: "
			"embedded implementation not supported");
		return -ENODEV;
	}
	if (cmdqs < 7) {
		log_err(&d->cfg.log, "smmudrv: command queue of %u entries "
			"is below a batch", 1u << cmdqs);
		return -ENODEV;
	}
	in->sid_bits = (unsigned int)FIELD(i1, 5, 0);
	in->ssid_bits = (unsigned int)FIELD(i1, 10, 6);
	if (in->sid_bits <= STRTAB_SPLIT)
		in->st2l = false;
	in->cmdq_log2 = MIN(cmdqs, 19u);
	in->evtq_log2 = MIN((unsigned int)FIELD(i1, 20, 16), 19u);
	return 0;
}

/* probe_idr5() - granules and output size. */
static int probe_idr5(struct smmudrv *d, uint32_t i5)
{
	struct smmudrv_info *in = &d->info;
	unsigned int oas = (unsigned int)FIELD(i5, 2, 0);

	in->pgsize_bitmap = 0;
	if (i5 & BIT(4))
		in->pgsize_bitmap |= BIT(12) | BIT(21) | BIT(30);
	if (i5 & BIT(5))
		in->pgsize_bitmap |= BIT(14) | BIT(25);
	if (i5 & BIT(6))
		in->pgsize_bitmap |= BIT(16) | BIT(29);
	if (!in->pgsize_bitmap) {
		log_err(&d->cfg.log, "smmudrv: IDR5 lists no granule");
		return -ENODEV;
	}
	if (oas > 5) {
		log_warn(&d->cfg.log, "smmudrv: IDR5.OAS %u: using 48 bits",
			 oas);
		oas = 5;
	}
	in->oas = drv_ps_bits[oas];
	return 0;
}

/* probe() - read and check the ID registers. */
static int probe(struct smmudrv *d)
{
	int ret;

	for (unsigned int i = 0; i < 6; i++)
		d->info.idr[i] = rd32(d, 4 * i);
	if (d->mmio_err)
		return -ENODEV;
	ret = probe_idr0(d, d->info.idr[0]);
	if (!ret)
		ret = probe_idr1(d, d->info.idr[1]);
	if (!ret)
		ret = probe_idr5(d, d->info.idr[5]);
	d->info.ril = d->info.idr[3] & BIT(10);
	return ret;
}

/* choose() - queue, table and ID sizes from the config and the probe. */
static int choose(struct smmudrv *d)
{
	const struct smmudrv_config *c = &d->cfg;
	struct smmudrv_info *in = &d->info;
	unsigned int lim = in->cmdq_log2;

	if ((c->cmdq_log2 && c->cmdq_log2 < 7) || c->evtq_log2 > 19 ||
	    (unsigned int)c->tlbi > SMMUDRV_TLBI_RANGE || c->cd_bits > 20)
		return -EINVAL;
	if ((c->msi_sync && !in->msi) ||
	    (c->tlbi == SMMUDRV_TLBI_RANGE && !in->ril))
		return -EOPNOTSUPP;
	in->cmdq_log2 = MIN(c->cmdq_log2 ? c->cmdq_log2 : 8, lim);
	in->evtq_log2 = MIN(c->evtq_log2 ? c->evtq_log2 : 8, in->evtq_log2);
	in->strtab_2lvl = c->strtab_2lvl && in->st2l;
	in->strtab_log2 = c->strtab_log2 ? c->strtab_log2 :
			  in->strtab_2lvl ? 16 : 8;
	in->strtab_log2 = MIN(in->strtab_log2, in->sid_bits);
	if (in->strtab_log2 <= STRTAB_SPLIT)
		in->strtab_2lvl = false;
	in->cd_bits = MIN(c->cd_bits ? c->cd_bits : 8, in->ssid_bits);
	in->cd_2lvl = in->cd2l && in->cd_bits > CD_SPLIT;
	in->msi_sync = c->msi_sync;
	in->tlbi = c->tlbi;
	d->asid_max = in->asid16 ? 0xffff : 0xff;
	d->vmid_max = in->vmid16 ? 0xffff : 0xff;
	return 0;
}

/* ---- reset --------------------------------------------------------------- */

/* gbpa_abort() - the GBPA update handshake setting ABORT. */
static int gbpa_abort(struct smmudrv *d)
{
	int ret = poll32(d, GBPA, GBPA_UPDATE, 0);

	if (ret)
		return ret;
	wr32(d, GBPA, rd32(d, GBPA) | GBPA_ABORT | GBPA_UPDATE);
	return poll32(d, GBPA, GBPA_UPDATE, 0);
}

/* default_ste() - what an unattached stream gets: abort or bypass. */
static void default_ste(const struct smmudrv *d, uint64_t q[8])
{
	memset(q, 0, 64);
	if (d->cfg.bypass_unattached) {
		q[0] = STE0_V | ((uint64_t)CFG_BYPASS << 1);
		q[1] = 1ull << 44; /* SHCFG: incoming */
	} else {
		q[0] = STE0_V | ((uint64_t)CFG_ABORT << 1);
	}
}

/* drv_init_stes() - fill @n STEs at @gpa with the default (not live yet). */
void drv_init_stes(struct smmudrv *d, uint64_t gpa, uint64_t n)
{
	uint64_t q[8];

	default_ste(d, q);
	for (uint64_t s = 0; s < n; s++)
		for (int i = 0; i < 8; i++)
			drv_st64(d, gpa + s * 64 + 8 * i, q[i]);
}

/* alloc_structs() - queues and the stream table (L1 only if 2-level). */
static int alloc_structs(struct smmudrv *d)
{
	struct smmudrv_info *in = &d->info;
	uint64_t sz;
	int ret;

	d->cmdq.log2 = in->cmdq_log2;
	d->evtq.log2 = in->evtq_log2;
	/* Event queue first: a CMD_SYNC MSI address is never 0. */
	sz = 32ull << in->evtq_log2;
	ret = drv_gmem_alloc(d, sz, sz, &d->evtq.base);
	if (!ret) {
		sz = 16ull << in->cmdq_log2;
		ret = drv_gmem_alloc(d, sz, sz, &d->cmdq.base);
	}
	if (ret)
		return ret;
	if (!in->strtab_2lvl) {
		sz = 64ull << in->strtab_log2;
		ret = drv_gmem_alloc(d, sz, sz, &d->strtab);
		if (!ret)
			drv_init_stes(d, d->strtab, 1ull << in->strtab_log2);
		return ret;
	}
	d->nl1 = 1u << (in->strtab_log2 - STRTAB_SPLIT);
	d->l2 = xzalloc(&d->alloc, d->nl1 * sizeof(*d->l2));
	if (!d->l2)
		return -ENOMEM;
	sz = 8ull * d->nl1;
	return drv_gmem_alloc(d, sz, MAX(sz, 64), &d->strtab);
}

/* reset_tables() - CR1/CR2, stream table, command queue + CMDQEN. */
static int reset_tables(struct smmudrv *d)
{
	struct smmudrv_info *in = &d->info;
	uint32_t cfg = in->strtab_log2;

	wr32(d, CR1, (CR1_ISH << 10) | (CR1_WB << 8) | (CR1_WB << 6) |
	     (CR1_ISH << 4) | (CR1_WB << 2) | CR1_WB);
	wr32(d, CR2, CR2_PTM | CR2_RECINVSID);
	if (in->strtab_2lvl)
		cfg |= (1u << 16) | (STRTAB_SPLIT << 6);
	wr64(d, STRTAB_BASE, d->strtab | BASE_RA);
	wr32(d, STRTAB_BASE_CFG, cfg);
	wr64(d, CMDQ_BASE, d->cmdq.base | BASE_RA | in->cmdq_log2);
	wr32(d, CMDQ_PROD, 0);
	wr32(d, CMDQ_CONS, 0);
	d->cmdq.prod = d->cmdq.cons = 0;
	return write_cr0(d, CR0_CMDQEN);
}

/* reset_irqs() - IRQ_CTRL off, wired (no MSI address), then on. */
static int reset_irqs(struct smmudrv *d)
{
	int ret;

	wr32(d, IRQ_CTRL, 0);
	ret = poll32(d, IRQ_CTRLACK, UINT32_MAX, 0);
	if (ret)
		return ret;
	if (d->info.msi) {
		wr64(d, GERROR_IRQ_CFG0, 0);
		wr64(d, EVTQ_IRQ_CFG0, 0);
	}
	wr32(d, IRQ_CTRL, IRQ_EN_GERROR | IRQ_EN_EVTQ);
	return poll32(d, IRQ_CTRLACK, UINT32_MAX,
		      IRQ_EN_GERROR | IRQ_EN_EVTQ);
}

/* reset() - the Linux reset sequence (DESIGN.md §6). */
static int reset(struct smmudrv *d)
{
	uint32_t en = CR0_CMDQEN | CR0_EVTQEN;
	int ret = 0;

	if (rd32(d, CR0) & CR0_SMMUEN) {
		log_warn(&d->cfg.log, "smmudrv: SMMU enabled, resetting");
		ret = gbpa_abort(d);
	}
	if (!ret)
		ret = write_cr0(d, 0);
	if (!ret)
		ret = reset_tables(d);
	if (!ret)
		ret = drv_cmd_sync1(d, OP_CFGI_ALL, 31);
	if (!ret)
		ret = drv_cmd_sync1(d, OP_TLBI_NSNH_ALL, 0);
	if (ret)
		return ret;
	wr64(d, EVTQ_BASE, d->evtq.base | BASE_RA | d->info.evtq_log2);
	wr32(d, EVTQ_PROD, 0);
	wr32(d, EVTQ_CONS, 0);
	d->evtq.prod = d->evtq.cons = 0;
	ret = write_cr0(d, en);
	if (!ret)
		ret = reset_irqs(d);
	if (!ret)
		ret = write_cr0(d, en | CR0_SMMUEN);
	return ret ? ret : d->mmio_err ? -EIO : 0;
}

/* ---- create / destroy ---------------------------------------------------- */

/* check_cfg() - the caller's part of @c. */
static int check_cfg(const struct smmudrv_config *c)
{
	if (!c->mem || (!c->smmu && !c->mmio.read) || !c->ram ||
	    (c->mmio.read && !c->mmio.write) || (c->ram_gpa & (PG - 1)) ||
	    !c->ram_size || (c->ram_size & (PG - 1)) ||
	    c->ram_gpa + c->ram_size < c->ram_gpa)
		return -EINVAL;
	return 0;
}

/* alloc_host() - the driver's host bookkeeping. */
static int alloc_host(struct smmudrv *d)
{
	d->npages = d->cfg.ram_size / PG;
	d->pagemap = xzalloc(&d->alloc, ((d->npages + 63) / 64) * 8);
	d->asids = xzalloc(&d->alloc, 65536 / 8);
	d->vmids = xzalloc(&d->alloc, 65536 / 8);
	return d->pagemap && d->asids && d->vmids ? 0 : -ENOMEM;
}

/* free_all() - every host allocation of @d, and @d. */
static void free_all(struct smmudrv *d)
{
	struct viommu_allocator a = d->alloc;

	while (d->masters) {
		struct master *m = d->masters;

		d->masters = m->next;
		drv_free_master(d, m);
	}
	while (d->domains) {
		struct smmudrv_domain *dom = d->domains;

		d->domains = dom->next;
		xfree(&a, dom);
	}
	xfree(&a, d->pagemap);
	xfree(&a, d->asids);
	xfree(&a, d->vmids);
	xfree(&a, d->l2);
	xfree(&a, d);
}

/* smmudrv_create() - see refdrv.h. */
int smmudrv_create(const struct smmudrv_config *cfg, struct smmudrv **out)
{
	struct smmudrv *d;
	int ret;

	if (!cfg || !out || check_cfg(cfg))
		return -EINVAL;
	d = xzalloc(&cfg->allocator, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	d->alloc = cfg->allocator;
	d->ram = cfg->ram;
	d->mmio = cfg->mmio;
	if (!d->mmio.read) {
		d->mmio.read = model_read;
		d->mmio.write = model_write;
		d->mmio.opaque = cfg->smmu;
	}
	d->ops.mem = cfg->mem;
	d->ops.alloc = lp_alloc;
	d->ops.free = lp_free;
	d->ops.opaque = d;
	ret = alloc_host(d);
	if (!ret)
		ret = probe(d);
	if (!ret)
		ret = choose(d);
	if (!ret)
		ret = alloc_structs(d);
	if (!ret)
		ret = reset(d);
	if (ret) {
		log_err(&cfg->log, "smmudrv: initialisation failed: %d", ret);
		free_all(d);
		return ret;
	}
	log_info(&cfg->log, "smmudrv: up: S1 %d S2 %d RIL %d OAS %u, "
		 "%s stream table of 2^%u", d->info.stage1, d->info.stage2,
		 d->info.ril, d->info.oas,
		 d->info.strtab_2lvl ? "2-level" : "linear",
		 d->info.strtab_log2);
	*out = d;
	return 0;
}

/* smmudrv_destroy() - see refdrv.h. */
void smmudrv_destroy(struct smmudrv *d)
{
	if (!d)
		return;
	write_cr0(d, 0);
	free_all(d);
}

/* smmudrv_info() - see refdrv.h. */
int smmudrv_info(const struct smmudrv *d, struct smmudrv_info *out)
{
	if (!d || !out)
		return -EINVAL;
	*out = d->info;
	return 0;
}

/* smmudrv_set_tlbi() - see refdrv.h. */
int smmudrv_set_tlbi(struct smmudrv *d, enum smmudrv_tlbi mode)
{
	if (!d || (unsigned int)mode > SMMUDRV_TLBI_RANGE)
		return -EINVAL;
	if (mode == SMMUDRV_TLBI_RANGE && !d->info.ril)
		return -EOPNOTSUPP;
	d->info.tlbi = mode;
	return 0;
}

/* smmudrv_cmd() - see refdrv.h. */
int smmudrv_cmd(struct smmudrv *d, uint64_t d0, uint64_t d1, bool sync)
{
	const uint64_t c[1][2] = { { d0, d1 } };

	if (!d)
		return -EINVAL;
	return cmdq_issue(d, c, 1, sync);
}

