/*
 * fuzz_core_ops.c - one function per core call the fuzz_core target
 * makes: each works out the expected result from the model (the set of
 * acceptable errnos where core.h allows several), makes the call,
 * compares return code, outputs, faults and notifier events, and updates
 * the model.
 */
#include "fuzz_core.h"

static const uint32_t ep_ids[NEP] = { 0x18, 0x20, 0x0, 0xffffffffu,
				      0x18, 0x108 };

/* ------------------------------------------------------------------ */
/* Operations                                                         */

/* op_map() - map on target @t (a slot or a static domain). */
void op_map(struct fz *fz, int t, uint64_t iova, uint64_t last,
	    uint64_t gpa, uint32_t prot)
{
	struct viommu_domain *d = target_dom(fz, t);
	unsigned int args = 0, state = 0;
	struct mdom *md;
	int rc, i;

	if (!d)
		return;
	if (iova > last || gpa + (last - iova) < gpa || (prot & ~PROT_ALL))
		args |= E_INVAL;
	if (t >= NDOM)
		args |= E_NOTSUP;
	rc = viommu_domain_map(d, iova, last, gpa, prot);
	if (args) {
		expect_rc(fz, rc, args);
		return;
	}
	/* refused or not, the range it named is walked (fast level) */
	touch(fz, iova, last);
	md = &fz->dom[t];
	i = first_from(md, iova);
	if (i < md->nmap && md->map[i].iova <= last)
		state |= E_EXIST;
	for (i = 0; i < NEP; i++) {
		const struct mep *me = &fz->ep[i];

		if (!ep_attached_to(me, t))
			continue;
		for (int j = 0; j < me->nresv; j++)
			if (overlap(iova, last, me->resv[j].start,
				    me->resv[j].last))
				state |= E_INUSE;
	}
	if ((uint32_t)md->nmap >= fz->max_maps)
		state |= E_NOSPC;
	expect_rc(fz, rc, state);
	if (state)
		return;
	i = first_from(md, iova); /* no overlap: the insertion point */
	memmove(&md->map[i + 1], &md->map[i],
		(size_t)(md->nmap - i) * sizeof(md->map[0]));
	md->map[i] = (struct mmapping){ iova, last, gpa, prot };
	md->nmap++;
	md->bytes_stale = true;
	fz->maps++;
	want_event(fz, t, VIOMMU_EVENT_MAP, &md->map[i]);
}

/* op_unmap() - unmap [iova, last] from target @t. */
void op_unmap(struct fz *fz, int t, uint64_t iova, uint64_t last,
	      bool want_bytes)
{
	struct viommu_domain *d = target_dom(fz, t);
	uint64_t bytes = 0xdeadbeef, sum = 0;
	unsigned int args = 0;
	bool straddle = false;
	struct mdom *md;
	int rc, i, j, n = 0;

	if (!d)
		return;
	if (iova > last)
		args |= E_INVAL;
	if (t >= NDOM)
		args |= E_NOTSUP;
	rc = viommu_domain_unmap(d, iova, last, want_bytes ? &bytes : NULL);
	if (args) {
		expect_rc(fz, rc, args);
		return;
	}
	touch(fz, iova, last); /* refused or not, as for a map */
	md = &fz->dom[t];
	for (i = first_from(md, iova); i < md->nmap; i++) {
		const struct mmapping *m = &md->map[i];

		if (m->iova > last)
			break;
		if (m->iova < iova || m->last > last)
			straddle = true;
		n++;
	}
	if (straddle || !n) {
		expect_rc(fz, rc, straddle ? E_RANGE : E_NOENT);
		return;
	}
	expect_rc(fz, rc, 0);
	for (i = 0, j = 0; i < md->nmap; i++) {
		const struct mmapping *m = &md->map[i];

		if (overlap(iova, last, m->iova, m->last)) {
			sum = sat_add(sum, range_bytes(m->iova, m->last));
			want_event(fz, t, VIOMMU_EVENT_UNMAP, m);
		} else {
			md->map[j++] = *m;
		}
	}
	md->nmap = j;
	md->bytes_stale = true;
	fz->unmaps++;
	if (want_bytes && bytes != sum)
		fail(fz, "unmapped %" PRIu64 " bytes, want %" PRIu64, bytes,
		     sum);
}

/* op_translate() - viommu_translate() on endpoint slot @e. */
void op_translate(struct fz *fz, int e, uint32_t pasid, uint64_t iova,
		  size_t len, unsigned int access, bool want_fault)
{
	struct viommu_fault f;
	struct viommu_xlate x;
	struct xres r;
	int rc;

	if (!fz->ep[e].e)
		return;
	model_xlate(fz, e, pasid, iova, len, access, &r);
	memset(&f, 0xa5, sizeof(f));
	rc = viommu_translate(fz->ep[e].e, pasid, iova, len, access, &x,
			      want_fault ? &f : NULL);
	if (rc != r.rc)
		fail(fz, "translate returned %d, want %d (reason %u)", rc,
		     r.rc, r.f.reason);
	if (rc == 0) {
		cmp_xlate(fz, &x, &r.x);
		xlate_apply(fz, &r, iova, access);
	} else if (rc == -EFAULT && want_fault) {
		cmp_fault(fz, "returned", &f, &r.f);
	}
	if (rc == -EFAULT)
		fz->faults++;
	check_fault_cb(fz, rc == -EFAULT ? &r.f : NULL);
}

/* op_lookup() - viommu_domain_lookup() on target @t. */
void op_lookup(struct fz *fz, int t, uint64_t iova, size_t len,
	       unsigned int access)
{
	struct viommu_domain *d = target_dom(fz, t);
	struct viommu_xlate x;
	struct xres r;
	int rc;

	if (!d)
		return;
	memset(&r, 0, sizeof(r));
	if (len == 0 || !access || (access & ~PERM_ALL))
		r.rc = -EINVAL;
	else if (t == T_BLOCK)
		r.rc = -EFAULT;
	else if (t == T_IDENT)
		xident(fz, &r, iova, len, access);
	else
		xpaging(fz, &r, t, iova, len, access);
	if (r.rc == -EFAULT && r.f.reason == VIOMMU_FAULT_PERMISSION)
		r.rc = -EACCES;
	rc = viommu_domain_lookup(d, iova, len, access, &x);
	if (rc != r.rc)
		fail(fz, "lookup returned %d, want %d", rc, r.rc);
	if (rc == 0) {
		cmp_xlate(fz, &x, &r.x);
		r.t = t; /* lookup writes mark dirty pages too */
		xlate_apply(fz, &r, iova, access);
	}
	check_fault_cb(fz, NULL);
}

/* struct piece - one translated piece of a DMA transfer. */
struct piece {
	uint8_t *hva;
	size_t off, len;
};

/* pieces_alias() - whether two pieces share guest RAM bytes. */
static bool pieces_alias(const struct piece *p, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (p[i].hva < p[j].hva + p[j].len &&
			    p[j].hva < p[i].hva + p[i].len)
				return true;
	return false;
}

/*
 * op_dma() - viommu_dma_read/write() of @len bytes: the model translates
 * piece by piece; the copied bytes are checked against guest RAM.
 */
void op_dma(struct fz *fz, int e, uint32_t pasid, uint64_t iova,
	    size_t len, bool write, uint8_t seed)
{
	static uint8_t buf[DMA_MAX];
	static struct piece pc[DMA_PIECES];
	unsigned int access = write ? VIOMMU_WRITE : VIOMMU_READ;
	struct xres r = { 0 };
	size_t off = 0;
	int rc, want = 0, n = 0;

	if (!fz->ep[e].e)
		return;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7);
	if (pasid != VIOMMU_NO_PASID && pasid > VIOMMU_PASID_MAX)
		want = -EINVAL;
	else if (iova + (len - 1) < iova)
		want = -EFAULT; /* wraps: not guest RAM, no fault report */
	while (!want && off < len) {
		model_xlate(fz, e, pasid, iova + off, len - off, access, &r);
		xlate_apply(fz, &r, iova + off, access);
		if (r.rc || !r.x.hva) {
			want = r.rc ? r.rc : -EFAULT;
			break;
		}
		if (n < DMA_PIECES)
			pc[n] = (struct piece){ r.x.hva, off, r.x.len };
		n++;
		off += r.x.len;
	}
	rc = write ? viommu_dma_write(fz->ep[e].e, pasid, iova, buf, len)
		   : viommu_dma_read(fz->ep[e].e, pasid, iova, buf, len);
	if (rc != want)
		fail(fz, "dma %s returned %d, want %d",
		     write ? "write" : "read", rc, want);
	if (rc == -EFAULT && r.rc)
		fz->faults++;
	check_fault_cb(fz, rc == -EFAULT && r.rc ? &r.f : NULL);
	if ((rc && rc != -EFAULT) || n > DMA_PIECES ||
	    (write && pieces_alias(pc, n)))
		return;
	for (int i = 0; i < n; i++)
		if (memcmp(buf + pc[i].off, pc[i].hva, pc[i].len))
			fail(fz, "dma %s data differs at iova 0x%" PRIx64,
			     write ? "write" : "read", iova + pc[i].off);
}

/* op_attach() - attach the RID or @pasid of endpoint @e to target @t. */
void op_attach(struct fz *fz, int e, uint32_t pasid, int t)
{
	struct viommu_domain *d = target_dom(fz, t);
	struct mep *me = &fz->ep[e];
	unsigned int bits = 0;
	int rc, i;

	if (!me->e || !d)
		return;
	i = pasid == VIOMMU_NO_PASID ? -1 : find_pasid(me, pasid);
	if (pasid != VIOMMU_NO_PASID && pasid > VIOMMU_PASID_MAX) {
		bits = E_INVAL;
	} else {
		if (t < NDOM && ep_resv_hits_dom(fz, me, t))
			bits |= E_INVAL;
		if (pasid != VIOMMU_NO_PASID && i < 0 &&
		    me->npas >= MAX_PASIDS)
			bits |= E_NOSPC;
	}
	rc = viommu_endpoint_attach(me->e, pasid, d);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	if (pasid == VIOMMU_NO_PASID)
		me->rid = t;
	else if (i >= 0)
		me->pas[i].t = t;
	else
		me->pas[me->npas++] = (struct mpasid){ pasid, t };
}

/* op_detach() - detach the RID or @pasid of endpoint @e. */
void op_detach(struct fz *fz, int e, uint32_t pasid)
{
	struct mep *me = &fz->ep[e];
	unsigned int bits = 0;
	int rc, i = -1;

	if (!me->e)
		return;
	if (pasid != VIOMMU_NO_PASID && pasid > VIOMMU_PASID_MAX)
		bits = E_INVAL;
	else if (pasid == VIOMMU_NO_PASID && me->rid == T_NONE)
		bits = E_NOENT;
	else if (pasid != VIOMMU_NO_PASID && (i = find_pasid(me, pasid)) < 0)
		bits = E_NOENT;
	rc = viommu_endpoint_detach(me->e, pasid);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	if (pasid == VIOMMU_NO_PASID) {
		me->rid = T_NONE;
		return;
	}
	me->pas[i] = me->pas[--me->npas];
}

/* op_dom_create() - create a domain in empty slot @s (or a bad kind). */
void op_dom_create(struct fz *fz, int s, uint8_t kind_sel)
{
	struct viommu_domain_config cfg = { 0 };
	struct mdom *md = &fz->dom[s];
	struct mmapping *map = md->map;
	struct viommu_domain *d = NULL;
	unsigned int bits = 0;
	int rc;

	if (md->d)
		return;
	cfg.kind = VIOMMU_DOMAIN_PAGING;
	cfg.tag = ((uint64_t)fz->opno << 8) | (uint64_t)s;
	if ((kind_sel & 7) == 7)
		cfg.kind = VIOMMU_DOMAIN_IDENTITY;
	else if ((kind_sel & 7) == 6)
		cfg.kind = VIOMMU_DOMAIN_NESTED; /* no parent, no s1 */
	if (cfg.kind != VIOMMU_DOMAIN_PAGING)
		bits = E_INVAL;
	else if (fz->ndom >= MAX_DOMAINS)
		bits = E_NOSPC;
	rc = viommu_domain_create(fz->ctx, &cfg, &d);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	memset(md, 0, sizeof(*md));
	md->map = map;
	md->d = d;
	md->fz = fz;
	md->slot = s;
	md->tag = cfg.tag;
	fz->ndom++;
	if (viommu_domain_tag(d) != cfg.tag ||
	    viommu_domain_kind(d) != VIOMMU_DOMAIN_PAGING)
		fail(fz, "new domain has wrong tag or kind");
	rc = viommu_notifier_add(d, 0x3f, on_event, md, &md->nt);
	if (rc)
		fail(fz, "notifier_add returned %d", rc);
}

/* op_dom_destroy() - destroy slot @t's domain or try a static one. */
void op_dom_destroy(struct fz *fz, int t)
{
	struct viommu_domain *d = target_dom(fz, t);
	unsigned int bits = 0;
	int rc;

	if (!d)
		return;
	if (t >= NDOM)
		bits = E_INVAL;
	else if (dom_endpoints(fz, t))
		bits = E_BUSY;
	if (!bits) {
		/* Remove our notifier first; DESTROY events are not
		 * checked. */
		viommu_notifier_remove(fz->dom[t].nt);
		fz->dom[t].nt = NULL;
	}
	rc = viommu_domain_destroy(d);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	fz->dom[t].d = NULL;
	fz->dom[t].nmap = 0;
	fz->dom[t].bytes_stale = true;
	fz->ndom--;
}

/* op_invalidate() - invalidate a range, a domain, or everything. */
void op_invalidate(struct fz *fz, int t, uint8_t how, uint64_t iova,
		   uint64_t last)
{
	struct viommu_domain *d = target_dom(fz, t);
	int rc;

	if (how % 4 == 3) {
		rc = viommu_ctx_invalidate_all(fz->ctx);
		expect_rc(fz, rc, 0);
		return;
	}
	if (!d || t >= NDOM)
		return;
	if (how % 4 == 2) {
		rc = viommu_domain_invalidate_all(d);
		expect_rc(fz, rc, 0);
		return;
	}
	rc = viommu_domain_invalidate(d, iova, last);
	expect_rc(fz, rc, iova > last ? E_INVAL : 0);
}

/* op_bypass() - switch bypass of unattached endpoints. */
void op_bypass(struct fz *fz, bool on)
{
	expect_rc(fz, viommu_ctx_set_bypass(fz->ctx, on), 0);
	fz->bypass = on;
}

/* op_add_resv() - add a reserved region to endpoint @e. */
void op_add_resv(struct fz *fz, int e, uint64_t start, uint64_t last,
		 uint32_t type)
{
	struct mep *me = &fz->ep[e];
	unsigned int bits = 0;
	int rc, i;

	if (!me->e)
		return;
	if (start > last || type > VIOMMU_RESV_MSI) {
		bits = E_INVAL;
	} else {
		for (i = 0; i < me->nresv; i++) {
			if (overlap(start, last, me->resv[i].start,
				    me->resv[i].last))
				bits |= E_INVAL;
			if (type == VIOMMU_RESV_MSI &&
			    me->resv[i].type == VIOMMU_RESV_MSI)
				bits |= E_INVAL;
		}
		if (resv_hits_maps(fz, me->rid, start, last))
			bits |= E_INVAL;
		for (i = 0; i < me->npas; i++)
			if (resv_hits_maps(fz, me->pas[i].t, start, last))
				bits |= E_INVAL;
		if (me->nresv >= MAX_RESV)
			bits |= E_NOSPC;
	}
	rc = viommu_endpoint_add_resv(me->e, start, last, type);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	for (i = me->nresv; i > 0 && me->resv[i - 1].start > start; i--)
		me->resv[i] = me->resv[i - 1];
	me->resv[i] = (struct viommu_resv){ start, last, type };
	me->nresv++;
}

/* op_dirty_enable() - start or stop dirty tracking on target @t. */
void op_dirty_enable(struct fz *fz, int t, bool on)
{
	struct viommu_domain *d = target_dom(fz, t);
	struct mdom *md;
	int rc;

	if (!d)
		return;
	rc = viommu_domain_dirty_enable(d, on);
	if (t >= NDOM) {
		expect_rc(fz, rc, E_NOTSUP);
		return;
	}
	expect_rc(fz, rc, 0);
	md = &fz->dom[t];
	if (on) {
		md->ndirty = 0;
		md->dirty_lost = false;
	}
	md->dirty_on = on;
}

/*
 * op_dirty_read() - read the dirty bitmap of @npages pages at @iova into
 * a prefilled buffer of @words words (the word after it is a canary).
 */
void op_dirty_read(struct fz *fz, int t, uint64_t iova,
		   uint64_t npages, size_t words, uint32_t flags,
		   uint64_t fill)
{
	struct viommu_domain *d = target_dom(fz, t);
	uint64_t bm[10], last = iova + npages * PAGE - 1;
	unsigned int bits = 0;
	struct mdom *md;
	int rc;

	if (!d)
		return;
	for (size_t i = 0; i < ARRAY_LEN(bm); i++)
		bm[i] = fill;
	if ((iova & (PAGE - 1)) || iova > last ||
	    ((last + 1) & (PAGE - 1)) ||
	    words * 64 < npages ||
	    (flags & ~VIOMMU_DIRTY_NO_CLEAR))
		bits |= E_INVAL;
	if (t >= NDOM)
		bits |= E_NOTSUP;
	else if (!fz->dom[t].dirty_on)
		bits |= E_NODEV;
	rc = viommu_domain_dirty_read(d, iova, last, bm, words, flags);
	expect_rc(fz, rc, bits);
	for (size_t i = words; i < ARRAY_LEN(bm); i++)
		if (bm[i] != fill)
			fail(fz, "dirty_read wrote word %zu beyond %zu", i,
			     words);
	if (bits)
		return;
	md = &fz->dom[t];
	for (uint64_t p = 0; p < npages && !md->dirty_lost; p++) {
		bool want = model_dirty_has(md, iova / PAGE + p) ||
			    ((fill >> (p % 64)) & 1);
		bool got = (bm[p / 64] >> (p % 64)) & 1;

		if (got != want)
			fail(fz, "dirty bit of page 0x%" PRIx64 " is %d, want"
			     " %d", iova + p * PAGE, got, want);
	}
	if (!(flags & VIOMMU_DIRTY_NO_CLEAR))
		model_dirty_clear(md, iova / PAGE, last / PAGE);
}

/* op_ep_create() - create the endpoint of slot @e. */
void op_ep_create(struct fz *fz, int e)
{
	struct mep *me = &fz->ep[e];
	struct viommu_endpoint *ep = NULL;
	unsigned int bits = 0;
	int rc;

	if (me->e)
		return;
	for (int i = 0; i < NEP; i++)
		if (fz->ep[i].e && fz->ep[i].id == ep_ids[e])
			bits |= E_EXIST;
	if (fz->nep >= MAX_EPS)
		bits |= E_NOSPC;
	rc = viommu_endpoint_create(fz->ctx, ep_ids[e], &ep);
	expect_rc(fz, rc, bits);
	if (bits)
		return;
	memset(me, 0, sizeof(*me));
	me->e = ep;
	me->id = ep_ids[e];
	me->rid = T_NONE;
	fz->nep++;
	if (viommu_endpoint_id(ep) != me->id)
		fail(fz, "endpoint id 0x%x, want 0x%x", viommu_endpoint_id(ep),
		     me->id);
}

/* op_ep_destroy() - destroy the endpoint of slot @e. */
void op_ep_destroy(struct fz *fz, int e)
{
	struct mep *me = &fz->ep[e];

	if (!me->e)
		return;
	viommu_endpoint_destroy(me->e);
	me->e = NULL;
	fz->nep--;
}

/* make_regions() - the region set of layout @lay; returns the count. */
unsigned int make_regions(unsigned int lay,
			  struct viommu_mem_region *reg)
{
	unsigned int n = 0;

	reg[n++] = (struct viommu_mem_region){ .gpa = 0, .size = RAM_A_SIZE,
					       .fd = -1, .hva = ram_a };
	if (lay & LAY_B)
		reg[n++] = (struct viommu_mem_region){
			.gpa = RAM_B_GPA, .size = RAM_B_SIZE, .fd = -1,
			.hva = ram_b };
	reg[n++] = (struct viommu_mem_region){
		.gpa = RAM_C_GPA, .size = RAM_C_SIZE, .fd = -1,
		.hva = lay & LAY_C2 ? ram_c2 : ram_c,
		.flags = lay & LAY_C_RO ? VIOMMU_MEM_F_READONLY : 0 };
	return n;
}

/*
 * op_mem() - replace the guest-memory region set (translations cached
 * in IOTLBs must follow), or try an overlapping set that must be refused.
 */
void op_mem(struct fz *fz, uint8_t v)
{
	struct viommu_mem_region reg[4];
	unsigned int n = make_regions(v & 7, reg);
	int rc;

	if ((v & 0x18) == 0x18) {
		reg[n] = reg[0];
		reg[n++].gpa = RAM_A_SIZE / 2;
		rc = viommu_mem_set_regions(fz->mem, reg, n);
		expect_rc(fz, rc, E_INVAL);
		return;
	}
	rc = viommu_mem_set_regions(fz->mem, reg, n);
	expect_rc(fz, rc, 0);
	fz->layout = v & 7;
}

/*
 * op_bulk() - up to 256 maps of equal size in a row on target @t, each
 * checked like a single map; stops at the first refusal.
 */
void op_bulk(struct fz *fz, int t, uint64_t base, unsigned int count,
	     uint64_t size, uint64_t stride, uint32_t prot)
{
	for (unsigned int k = 0; k < count; k++) {
		uint64_t iova = base + k * stride;
		uint64_t before = fz->maps;

		fz->nev = 0;
		fz->nwant = 0;
		op_map(fz, t, iova, iova + size - 1, k * size, prot);
		check_events(fz, false);
		if (fz->maps == before)
			break;
	}
}

/* struct walk - state of a viommu_domain_for_each_mapping() check. */
struct walk {
	struct fz *fz;
	const struct mdom *md;
	uint64_t iova, last;
	int next;      /* index of the next model mapping expected */
	int calls;
	int stop_after; /* return 1 after this many calls (0: never) */
};

/* walk_fn() - compare each reported mapping with the model's next one. */
static int walk_fn(void *opaque, const struct viommu_mapping *m)
{
	struct walk *w = opaque;
	const struct mdom *md = w->md;
	const struct mmapping *want;

	while (w->next < md->nmap &&
	       !overlap(w->iova, w->last, md->map[w->next].iova,
			md->map[w->next].last))
		w->next++;
	if (w->next >= md->nmap)
		fail(w->fz, "walk of slot %d reports extra mapping 0x%" PRIx64
		     "-0x%" PRIx64, md->slot, m->iova, m->last);
	want = &md->map[w->next++];
	if (m->iova != want->iova || m->last != want->last ||
	    m->gpa != want->gpa || m->prot != want->prot)
		fail(w->fz, "walk of slot %d: got 0x%" PRIx64 "-0x%" PRIx64
		     " gpa 0x%" PRIx64 " prot 0x%x, want 0x%" PRIx64 "-0x%"
		     PRIx64 " gpa 0x%" PRIx64 " prot 0x%x", md->slot, m->iova,
		     m->last, m->gpa, m->prot, want->iova, want->last,
		     want->gpa, want->prot);
	w->calls++;
	return w->stop_after && w->calls == w->stop_after ? 1 : 0;
}

/* walk_check() - walk [iova, last] of slot @t and compare. */
void walk_check(struct fz *fz, int t, uint64_t iova, uint64_t last,
		int stop_after)
{
	const struct mdom *md = &fz->dom[t];
	struct walk w = { fz, md, iova, last, first_from(md, iova), 0,
			  stop_after };
	int rc, n = 0;

	rc = viommu_domain_for_each_mapping(md->d, iova, last, walk_fn, &w);
	if (iova > last) {
		expect_rc(fz, rc, E_INVAL);
		return;
	}
	for (int i = first_from(md, iova);
	     i < md->nmap && md->map[i].iova <= last; i++)
		n++;
	if (stop_after && n >= stop_after) {
		if (rc != 1 || w.calls != stop_after)
			fail(fz, "walk stopped with %d after %d calls", rc,
			     w.calls);
		return;
	}
	if (rc != 0 || w.calls != n)
		fail(fz, "walk returned %d after %d calls, want 0 after %d",
		     rc, w.calls, n);
}

/* op_walk() - for_each_mapping over a range, maybe stopping early. */
void op_walk(struct fz *fz, int t, uint64_t iova, uint64_t last,
	     int stop_after)
{
	struct viommu_domain *d = target_dom(fz, t);

	if (!d)
		return;
	if (t >= NDOM)
		expect_rc(fz, viommu_domain_for_each_mapping(d, iova, last,
							     walk_fn, NULL),
			  iova > last ? E_INVAL | E_NOTSUP : E_NOTSUP);
	else
		walk_check(fz, t, iova, last, stop_after);
}
