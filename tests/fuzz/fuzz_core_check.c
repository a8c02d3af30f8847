/*
 * fuzz_core_check.c - the fuzz_core target's checks: reporting a
 * disagreement, the context's fault callback and the domains' notifier
 * callback (recorded for the per-call comparison), translations and
 * faults against the model, and the whole visible state after a call
 * (at the fast level, only the mappings of the slots the call changed,
 * see fuzz_core.c).
 */
#include "fuzz_core.h"

/* ------------------------------------------------------------------ */
/* Reporting                                                          */

/* fail() - report a disagreement with the model and abort. */
void __attribute__((format(printf, 2, 3), noreturn))
fail(struct fz *fz, const char *fmt, ...)
{
	va_list ap;

	describe(fz);
	fprintf(stderr, "fuzz_core: op #%d %s: ", fz->opno, fz->desc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* errbit() - the E_* bit of a negative errno (0 for anything else). */
static unsigned int errbit(int rc)
{
	static const int errs[] = { EINVAL, EOPNOTSUPP, EEXIST, EADDRINUSE,
				    ENOSPC, ERANGE, ENOENT, EBUSY, ENODEV,
				    EFAULT, EACCES }; /* in E_* bit order */

	for (unsigned int i = 0; i < ARRAY_LEN(errs); i++)
		if (rc == -errs[i])
			return 1u << i;
	return 0;
}

/*
 * expect_rc() - check @rc against the acceptable set: @ok_bits empty
 * means success is expected, otherwise one of the listed errnos.
 */
void expect_rc(struct fz *fz, int rc, unsigned int ok_bits)
{
	if (!ok_bits) {
		if (rc != 0)
			fail(fz, "expected 0, got %d (%s)", rc, strerror(-rc));
		return;
	}
	if (rc == 0 || !(errbit(rc) & ok_bits))
		fail(fz, "expected an error in set 0x%x, got %d", ok_bits, rc);
}

/* ------------------------------------------------------------------ */
/* Callbacks                                                          */

/* on_fault() - the context's fault callback: record it. */
void on_fault(void *opaque, const struct viommu_fault *f)
{
	struct fz *fz = opaque;

	fz->fault_cb = *f;
	fz->nfault_cb++;
}

/* on_event() - per-domain notifier: record the event for the op check. */
void on_event(void *opaque, const struct viommu_event *ev)
{
	struct mdom *md = opaque;
	struct fz *fz = md->fz;

	if (ev->domain != md->d)
		fail(fz, "event for domain %p on notifier of slot %d",
		     (void *)ev->domain, md->slot);
	if (fz->nev >= (int)fz->max_maps + 64)
		fail(fz, "more than %u notifier events in one op",
		     fz->max_maps + 64);
	fz->ev[fz->nev] = *ev;
	fz->ev_slot[fz->nev] = md->slot;
	fz->nev++;
}

/* ------------------------------------------------------------------ */
/* Translation and fault comparisons                                  */

/* cmp_xlate() - compare a successful translation with the model. */
void cmp_xlate(struct fz *fz, const struct viommu_xlate *got,
	       const struct viommu_xlate *want)
{
	if (got->gpa != want->gpa || got->hva != want->hva ||
	    got->len != want->len || got->perm != want->perm ||
	    got->flags != want->flags)
		fail(fz, "xlate got gpa 0x%" PRIx64 " hva %p len %zu perm 0x%x"
		     " flags 0x%x, want gpa 0x%" PRIx64 " hva %p len %zu"
		     " perm 0x%x flags 0x%x", got->gpa, got->hva, got->len,
		     got->perm, got->flags, want->gpa, want->hva, want->len,
		     want->perm, want->flags);
}

/* cmp_fault() - compare a fault record with the model. */
void cmp_fault(struct fz *fz, const char *what,
	       const struct viommu_fault *got,
	       const struct viommu_fault *want)
{
	if (got->reason != want->reason || got->access != want->access ||
	    got->endpoint != want->endpoint || got->pasid != want->pasid ||
	    got->address != want->address ||
	    got->domain_tag != want->domain_tag)
		fail(fz, "%s fault got reason %u access %u ep 0x%x pasid 0x%x"
		     " addr 0x%" PRIx64 " tag 0x%" PRIx64 ", want reason %u"
		     " access %u ep 0x%x pasid 0x%x addr 0x%" PRIx64
		     " tag 0x%" PRIx64, what, got->reason, got->access,
		     got->endpoint, got->pasid, got->address, got->domain_tag,
		     want->reason, want->access, want->endpoint, want->pasid,
		     want->address, want->domain_tag);
}

/* check_fault_cb() - the callback ran once with @want, or not at all. */
void check_fault_cb(struct fz *fz, const struct viommu_fault *want)
{
	if (!want) {
		if (fz->nfault_cb)
			fail(fz, "fault callback ran %d times, want 0",
			     fz->nfault_cb);
		return;
	}
	if (fz->nfault_cb != 1)
		fail(fz, "fault callback ran %d times, want 1", fz->nfault_cb);
	cmp_fault(fz, "callback", &fz->fault_cb, want);
}

/* ------------------------------------------------------------------ */
/* Whole-state checks                                                 */

/* check_events() - the op produced exactly the wanted MAP/UNMAP events. */
void check_events(struct fz *fz, bool quiet)
{
	bool used[MAP_CAP + 64];
	int n = 0;

	if (!fz->nev && !fz->nwant)
		return;
	memset(used, 0, (size_t)fz->nev * sizeof(used[0]));
	if (quiet && fz->nev)
		fail(fz, "%d notifier events from a call that changes nothing",
		     fz->nev);
	for (int i = 0; i < fz->nev; i++)
		n += (fz->ev[i].type & (VIOMMU_EVENT_MAP |
					VIOMMU_EVENT_UNMAP)) != 0;
	if (n != fz->nwant)
		fail(fz, "%d MAP/UNMAP events, want %d", n, fz->nwant);
	/*
	 * Each event matches at most one wanted event (they name distinct
	 * mappings), so the order of the search does not matter; it starts
	 * after the last match, as the notifier reports in the model's
	 * order, which makes a call of thousands of events linear.
	 */
	for (int k = 0, hint = 0; k < fz->nwant; k++) {
		const struct viommu_event *w = &fz->want[k];
		int i = 0, j;

		for (j = 0; j < fz->nev; j++) {
			const struct viommu_event *g;

			i = (hint + j) % fz->nev;
			g = &fz->ev[i];
			if (used[i] || g->type != w->type ||
			    fz->ev_slot[i] != fz->want_slot[k] ||
			    g->domain != w->domain || g->tag != w->tag ||
			    g->iova != w->iova || g->last != w->last)
				continue;
			if (w->type == VIOMMU_EVENT_MAP &&
			    (g->gpa != w->gpa || g->prot != w->prot))
				continue;
			break;
		}
		if (j == fz->nev)
			fail(fz, "missing %s event 0x%" PRIx64 "-0x%" PRIx64
			     " on slot %d", w->type == VIOMMU_EVENT_MAP ?
			     "MAP" : "UNMAP", w->iova, w->last,
			     fz->want_slot[k]);
		used[i] = true;
		hint = i + 1;
	}
}

/* check_domain() - mappings and info of live slot @t. */
static void check_domain(struct fz *fz, int t)
{
	const struct mdom *md = &fz->dom[t];
	struct viommu_domain_info info;
	uint64_t bytes = 0;
	int rc;

	if (fz->walk_mask & (1u << t)) {
		if (fz->walk_mask != ~0u && fz->touch_lo <= fz->touch_hi)
			walk_check(fz, t, fz->touch_lo, fz->touch_hi, 0);
		else
			walk_check(fz, t, 0, UINT64_MAX, 0);
	}
	if (md->bytes_stale) {
		for (int i = 0; i < md->nmap; i++)
			bytes = sat_add(bytes, range_bytes(md->map[i].iova,
							   md->map[i].last));
		fz->dom[t].bytes = bytes;
		fz->dom[t].bytes_stale = false;
	}
	bytes = md->bytes;
	rc = viommu_domain_info(md->d, &info, sizeof(info));
	if (rc)
		fail(fz, "domain_info returned %d", rc);
	if (info.kind != VIOMMU_DOMAIN_PAGING ||
	    info.endpoints != dom_endpoints(fz, t) ||
	    info.mappings != (uint64_t)md->nmap ||
	    info.mapped_bytes != bytes ||
	    info.dirty_tracking != md->dirty_on)
		fail(fz, "slot %d info: kind %u eps %u maps %" PRIu64
		     " bytes 0x%" PRIx64 " dirty %d; want eps %u maps %d bytes"
		     " 0x%" PRIx64 " dirty %d", t, info.kind, info.endpoints,
		     info.mappings, info.mapped_bytes, info.dirty_tracking,
		     dom_endpoints(fz, t), md->nmap, bytes, md->dirty_on);
	if (md->nmap && !info.host_bytes)
		fail(fz, "slot %d holds mappings but no host bytes", t);
}

/* check_attached() - @pasid of @me is attached to target @t. */
static void check_attached(struct fz *fz, const struct mep *me,
			   uint32_t pasid, int t)
{
	struct viommu_domain *d = (struct viommu_domain *)1;
	int rc = viommu_endpoint_domain(me->e, pasid, &d);

	if (rc || d != (t == T_NONE ? NULL : target_dom(fz, t)))
		fail(fz, "ep 0x%x pasid 0x%x: domain_get %d %p, want target"
		     " %d", me->id, pasid, rc, (void *)d, t);
}

/* check_endpoint() - attachments and reserved regions of a live ep. */
static void check_endpoint(struct fz *fz, const struct mep *me)
{
	struct viommu_resv rv[MAX_RESV + 1];
	struct viommu_endpoint *found = NULL;
	unsigned int n = 99;
	int rc;

	check_attached(fz, me, VIOMMU_NO_PASID, me->rid);
	for (int i = 0; i < me->npas; i++)
		check_attached(fz, me, me->pas[i].pasid, me->pas[i].t);
	for (int k = 3; k < 8; k++)
		if (find_pasid(me, pasid_tab[k]) < 0 &&
		    pasid_tab[k] <= VIOMMU_PASID_MAX)
			check_attached(fz, me, pasid_tab[k], T_NONE);
	rc = viommu_endpoint_get_resv(me->e, rv, MAX_RESV + 1, &n);
	if (rc || n != (unsigned int)me->nresv)
		fail(fz, "ep 0x%x: get_resv %d n %u, want %d", me->id, rc, n,
		     me->nresv);
	for (int i = 0; i < me->nresv; i++)
		if (rv[i].start != me->resv[i].start ||
		    rv[i].last != me->resv[i].last ||
		    rv[i].type != me->resv[i].type)
			fail(fz, "ep 0x%x: resv %d differs", me->id, i);
	rc = viommu_endpoint_lookup(fz->ctx, me->id, &found);
	if (rc || found != me->e)
		fail(fz, "endpoint_lookup(0x%x) = %d %p", me->id, rc,
		     (void *)found);
}

/* check_state() - compare everything the API shows with the model. */
void check_state(struct fz *fz)
{
	struct viommu_ctx_stats st;
	uint64_t maps = 0;

	for (int t = 0; t < NDOM; t++) {
		if (!fz->dom[t].d)
			continue;
		check_domain(fz, t);
		maps += fz->dom[t].nmap;
	}
	for (int e = 0; e < NEP && fz->check_eps; e++)
		if (fz->ep[e].e)
			check_endpoint(fz, &fz->ep[e]);
	if (viommu_ctx_stats(fz->ctx, &st, sizeof(st)))
		fail(fz, "ctx_stats failed");
	if (st.domains != (uint64_t)fz->ndom ||
	    st.endpoints != (uint64_t)fz->nep || st.mappings != maps ||
	    st.maps != fz->maps || st.unmaps != fz->unmaps ||
	    st.faults != fz->faults)
		fail(fz, "stats: doms %" PRIu64 " eps %" PRIu64 " maps %"
		     PRIu64 " map calls %" PRIu64 " unmap calls %" PRIu64
		     " faults %" PRIu64 "; want %d %d %" PRIu64 " %" PRIu64
		     " %" PRIu64 " %" PRIu64, st.domains, st.endpoints,
		     st.mappings, st.maps, st.unmaps, st.faults, fz->ndom,
		     fz->nep, maps, fz->maps, fz->unmaps, fz->faults);
}
