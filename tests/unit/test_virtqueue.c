/*
 * test_virtqueue.c - unit tests of the device-side virtqueues
 * (src/virtio/virtqueue.c), the virtio device core (src/virtio/virtio.c)
 * and the driver-side rings (src/refdrv/drvring.c), through the echo
 * device of vq_fixture.h: round trips on split and packed rings with and
 * without indirect descriptors and EVENT_IDX, batches, wrap-around,
 * notification suppression both ways, status and feature negotiation, and
 * a two-thread run.  The hardening rules are in test_virtqueue_hard.c.
 */
#include "vq_fixture.h"

/* ---- round trips ------------------------------------------------------ */

/* Every ring flavour: chains of several segments, echo across segments. */
static void rt_matrix(bool packed, bool event_idx, bool indirect)
{
	struct fx *f = fx_open((struct opts){ packed, event_idx, indirect,
					      16, 0 });
	static const uint32_t r1[] = { 5 }, w1[] = { 5 };
	static const uint32_t r3[] = { 3, 100, 1 }, w2[] = { 7, 200 };
	static const uint32_t r0[] = { 0 }, w8[] = { 8 };
	static const uint32_t rbig[] = { 1000 }, wsmall[] = { 10 };

	roundtrip(f, 0, r1, 1, w1, 1, false, 1);
	roundtrip(f, 0, r3, 3, w2, 2, false, 2);
	roundtrip(f, 0, r0, 1, w8, 1, false, 3);   /* zero-length segment */
	roundtrip(f, 0, rbig, 1, wsmall, 1, false, 4); /* short reply */
	roundtrip(f, 0, w2, 2, NULL, 0, false, 5); /* read-only buffer */
	roundtrip(f, 1, NULL, 0, w2, 2, false, 6); /* write-only, queue 1 */
	if (indirect) {
		roundtrip(f, 0, r3, 3, w2, 2, true, 7);
		roundtrip(f, 1, r1, 1, w1, 1, true, 8);
	}
	CHECK_EQ(f->fk.last.nseg, indirect ? 2 : 2);
	CHECK_EQ(f->fk.last.nread, indirect ? 1 : 0);
	CHECK_EQ(viommu_virtio_dev_status(dev_of(f)), S_ALL_OK);
	CHECK_EQ(f->nlog, 0);
	fx_close(f);
}

TEST(rt_split) { rt_matrix(false, false, false); }
TEST(rt_split_event_idx) { rt_matrix(false, true, false); }
TEST(rt_split_indirect) { rt_matrix(false, false, true); }
TEST(rt_split_event_idx_indirect) { rt_matrix(false, true, true); }
TEST(rt_packed) { rt_matrix(true, false, false); }
TEST(rt_packed_event_idx) { rt_matrix(true, true, false); }
TEST(rt_packed_indirect) { rt_matrix(true, false, true); }
TEST(rt_packed_event_idx_indirect) { rt_matrix(true, true, true); }

/* The popped element describes the chain exactly. */
TEST(elem_layout)
{
	for (int packed = 0; packed < 2; packed++) {
		struct fx *f = fx_open((struct opts){ packed, false, true,
						      8, 0 });
		static const uint32_t r[] = { 3, 4 }, w[] = { 5, 6, 7 };
		const struct vq_elem *e = &f->fk.last;

		roundtrip(f, 0, r, 2, w, 3, false, 9);
		CHECK_EQ(e->nseg, 5);
		CHECK_EQ(e->nread, 2);
		CHECK_EQ(e->read_len, 7);
		CHECK_EQ(e->write_len, 18);
		CHECK_EQ(e->ndesc, packed ? 5 : 1);
		CHECK_EQ(e->id, 0);
		for (unsigned int i = 0; i < 5; i++)
			CHECK_EQ(e->segs[i].write, i >= 2);
		roundtrip(f, 0, r, 2, w, 3, true, 10);
		CHECK_EQ(e->nseg, 5);
		CHECK_EQ(e->ndesc, 1);
		fx_close(f);
	}
}

/* A buffer may span two adjacent RAM regions. */
TEST(buffer_spans_adjacent_regions)
{
	struct fx *f = fx_open((struct opts){ false, false, false, 8, 0 });
	struct drvring_seg s[2] = {
		{ RAM2 - 100, 200, false }, { RAM2 + 0x1000, 200, true },
	};
	uint8_t tmp[200];
	uint64_t t;
	uint32_t len;

	fill(tmp, 200, 42);
	memcpy(hva(f, RAM2 - 100), tmp, 200);
	REQUIRE(drvring_add(&f->ring[0], s, 2, 42, false) == 0);
	viommu_virtio_dev_notify(dev_of(f), 0);
	REQUIRE(drvring_get_used(&f->ring[0], &t, &len) == 0);
	CHECK_EQ(len, 200);
	CHECK(check_fill(hva(f, RAM2 + 0x1000), 200, 42));
	CHECK_EQ(f->nlog, 0);
	fx_close(f);
}

/* Batches: many buffers, one kick, returned in ring order. */
static void batch(bool packed, bool indirect)
{
	struct fx *f = fx_open((struct opts){ packed, true, indirect, 32, 0 });
	struct drvring_seg s[4][12];
	uint64_t t;
	uint32_t len;
	uint8_t out[256];

	for (unsigned int i = 0; i < 12; i++) {
		uint32_t r[] = { 10 + i }, w[] = { 64 };
		unsigned int n = echo_req(f, s[0], r, 1, w, 1, 100 + i);

		memcpy(&s[1][i], &s[0][1], sizeof(s[0][1]));
		REQUIRE(drvring_add(&f->ring[0], s[0], n, 100 + i,
				    indirect && (i & 1)) == 0);
		/* split: avail_event stays 0; packed: device never suppresses */
		CHECK_EQ(drvring_kick_needed(&f->ring[0]), packed || i == 0);
	}
	CHECK_EQ(f->fk.popped[0], 0);
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->fk.popped[0], 12);
	CHECK_EQ(f->irq_queue[0], 1);
	for (unsigned int i = 0; i < 12; i++) {
		REQUIRE(drvring_get_used(&f->ring[0], &t, &len) == 0);
		CHECK_U64(t, 100 + i);
		CHECK_EQ(len, 10 + i);
		memcpy(out, hva(f, s[1][i].gpa), len);
		CHECK(check_fill(out, len, 100 + i));
	}
	CHECK_EQ(drvring_get_used(&f->ring[0], &t, &len), -ENOENT);
	fx_close(f);
}

TEST(batch_split) { batch(false, false); }
TEST(batch_split_indirect) { batch(false, true); }
TEST(batch_packed) { batch(true, false); }
TEST(batch_packed_indirect) { batch(true, true); }

/*
 * Wrap-around: many more requests than the ring size, chains of varying
 * length so that packed chains straddle the ring end.
 */
static void wrap_around(bool packed, bool event_idx, uint16_t qsize)
{
	struct fx *f = fx_open((struct opts){ packed, event_idx, true, qsize,
					      0 });
	uint64_t scratch = buf_alloc(f, 4096), t;
	unsigned int done = 0, sent = 0, kicks = 0;
	uint32_t len;

	while (done < 3000) {
		unsigned int batch_n = 1 + sent % 4;

		for (unsigned int i = 0; i < batch_n; i++) {
			unsigned int nr = 1 + (sent % 3), k = 0;
			struct drvring_seg s[4];

			for (; k < nr; k++)
				s[k] = (struct drvring_seg){
					scratch + 64 * k, 8, false };
			s[k++] = (struct drvring_seg){ scratch + 1024 +
						       64 * (sent % 16), 32,
						       true };
			if (drvring_add(&f->ring[0], s, k, sent,
					(sent % 5) == 0) != 0)
				break;
			sent++;
		}
		kicks += drvring_kick_needed(&f->ring[0]);
		viommu_virtio_dev_notify(dev_of(f), 0);
		while (drvring_get_used(&f->ring[0], &t, &len) == 0) {
			CHECK_U64(t, done);
			CHECK_EQ(len, 8 * (1 + done % 3));
			done++;
		}
		REQUIRE(done == sent);
	}
	CHECK(kicks > 0);
	CHECK_EQ(f->fk.popped[0], done);
	CHECK_EQ(viommu_virtio_dev_status(dev_of(f)), S_ALL_OK);
	CHECK_EQ(f->nlog, 0);
	if (packed) /* the device's wrap counter has flipped many times */
		CHECK_EQ(vdev_queue(dev_of(f), 0)->next_avail,
			 f->ring[0].next_avail);
	else
		CHECK_EQ(vdev_queue(dev_of(f), 0)->last_avail,
			 (uint16_t)f->ring[0].avail_idx);
	fx_close(f);
}

TEST(wrap_split) { wrap_around(false, false, 8); }
TEST(wrap_split_event_idx) { wrap_around(false, true, 4); }
TEST(wrap_packed) { wrap_around(true, false, 8); }
TEST(wrap_packed_odd_size) { wrap_around(true, true, 5); }
TEST(wrap_packed_size_7) { wrap_around(true, false, 7); }

/* A chain exactly as long as the queue is fine. */
TEST(chain_of_queue_size)
{
	for (int packed = 0; packed < 2; packed++) {
		struct fx *f = fx_open((struct opts){ packed, false, false,
						      8, 0 });
		static const uint32_t r[] = { 1, 1, 1, 1, 1, 1, 1 };
		static const uint32_t w[] = { 7 };

		roundtrip(f, 0, r, 7, w, 1, false, 1);
		CHECK_EQ(f->fk.last.nseg, 8);
		CHECK_EQ(viommu_virtio_dev_status(dev_of(f)), S_ALL_OK);
		fx_close(f);
	}
}

/* An indirect table with exactly the queue maximum of entries is fine. */
TEST(indirect_table_of_queue_max)
{
	for (int packed = 0; packed < 2; packed++) {
		struct fx *f = fx_open((struct opts){ packed, false, true, 4,
						      32 });
		struct drvring_seg s[32];
		uint64_t tbl = buf_alloc(f, 32 * 16), t;
		uint32_t len;

		for (int i = 0; i < 32; i++)
			s[i] = (struct drvring_seg){ buf_alloc(f, 4), 4,
						     i >= 16 };
		REQUIRE(drvring_add_indirect(&f->ring[0], s, 32, 5,
					     hva(f, tbl), tbl) == 0);
		viommu_virtio_dev_notify(dev_of(f), 0);
		REQUIRE(drvring_get_used(&f->ring[0], &t, &len) == 0);
		CHECK_EQ(len, 64);
		CHECK_EQ(f->fk.last.nseg, 32);
		CHECK_EQ(viommu_virtio_dev_status(dev_of(f)), S_ALL_OK);
		fx_close(f);
	}
}

/* Split: direct descriptors followed by one INDIRECT (VIRTIO 1.3 2.7.5.3.2). */
TEST(split_direct_then_indirect)
{
	struct fx *f = fx_open((struct opts){ false, false, true, 8, 0 });
	struct sdesc *d = drvring_desc(&f->ring[0]);
	uint64_t tbl = buf_alloc(f, 32), b = buf_alloc(f, 64), t;
	struct sdesc *it = hva(f, tbl);
	struct drvring_seg s[2] = { { b, 8, false }, { b + 8, 8, false } };
	uint32_t len;

	fill(hva(f, b), 8, 3);
	REQUIRE(drvring_add(&f->ring[0], s, 2, 77, false) == 0);
	/* desc 1 becomes INDIRECT to a table: one readable, one writable */
	it[0] = (struct sdesc){ b + 8, 4, 1, 1 };
	it[1] = (struct sdesc){ b + 32, 16, 2, 0 };
	d[1] = (struct sdesc){ tbl, 32, 4, 0 };
	viommu_virtio_dev_notify(dev_of(f), 0);
	REQUIRE(drvring_get_used(&f->ring[0], &t, &len) == 0);
	CHECK_EQ(len, 12);
	CHECK_EQ(f->fk.last.nseg, 3);
	CHECK(check_fill(hva(f, b + 32), 8, 3));
	CHECK_EQ(f->nlog, 0);
	fx_close(f);
}

/* ---- notification suppression ----------------------------------------- */

/* Split, no EVENT_IDX: used.flags NO_NOTIFY, avail.flags NO_INTERRUPT. */
TEST(notify_split_flags)
{
	struct fx *f = fx_open((struct opts){ false, false, false, 8, 0 });
	uint16_t *used = drvring_device_area(&f->ring[0]);
	struct drvring_seg s = { buf_alloc(f, 8), 8, true };
	uint64_t t;
	uint32_t len;

	drvring_add(&f->ring[0], &s, 1, 1, false);
	CHECK(drvring_kick_needed(&f->ring[0]));
	CHECK(!drvring_kick_needed(&f->ring[0])); /* nothing new */
	used[0] = 1; /* device: VQ_USED_F_NO_NOTIFY */
	drvring_add(&f->ring[0], &s, 1, 2, false);
	CHECK(!drvring_kick_needed(&f->ring[0]));
	used[0] = 0;
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 1);
	drvring_set_irq(&f->ring[0], false); /* avail.flags = NO_INTERRUPT */
	drvring_add(&f->ring[0], &s, 1, 3, false);
	CHECK(drvring_kick_needed(&f->ring[0]));
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 1);
	drvring_set_irq(&f->ring[0], true);
	drvring_add(&f->ring[0], &s, 1, 4, false);
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 2);
	/* a kick with nothing new: no push, no interrupt */
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 2);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(drvring_get_used(&f->ring[0], &t, &len), 0);
	CHECK_EQ(viommu_virtio_dev_read_isr(dev_of(f)),
		 VIOMMU_VIRTIO_ISR_QUEUE);
	CHECK_EQ(viommu_virtio_dev_read_isr(dev_of(f)), 0);
	fx_close(f);
}

/* Split with EVENT_IDX: avail_event written by the device, used_event read. */
TEST(notify_split_event_idx)
{
	struct fx *f = fx_open((struct opts){ false, true, false, 8, 0 });
	struct drvring *r = &f->ring[0];
	uint16_t *avail = drvring_driver_area(r);
	uint16_t *used = drvring_device_area(r);
	uint16_t *used_event = &avail[2 + 8], *avail_event = &used[2 + 4 * 8];
	struct drvring_seg s = { buf_alloc(f, 8), 8, true };
	uint64_t t;
	uint32_t len;

	/* avail_event 0: the first add kicks, the second (unprocessed) not */
	drvring_add(r, &s, 1, 1, false);
	CHECK(drvring_kick_needed(r));
	drvring_add(r, &s, 1, 2, false);
	CHECK(!drvring_kick_needed(r));
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(*avail_event, 2); /* the device caught up and says so */
	CHECK_EQ(f->irq_queue[0], 1); /* used_event 0 was crossed */
	drvring_add(r, &s, 1, 3, false);
	CHECK(drvring_kick_needed(r));
	/* interrupt only when the entry at used_event is written */
	*used_event = 5;
	viommu_virtio_dev_notify(dev_of(f), 0); /* writes entry 2 */
	CHECK_EQ(f->irq_queue[0], 1);
	drvring_add(r, &s, 1, 4, false);
	drvring_add(r, &s, 1, 5, false);
	viommu_virtio_dev_notify(dev_of(f), 0); /* entries 3, 4 */
	CHECK_EQ(f->irq_queue[0], 1);
	drvring_add(r, &s, 1, 6, false);
	drvring_add(r, &s, 1, 7, false);
	viommu_virtio_dev_notify(dev_of(f), 0); /* entries 5, 6: hit */
	CHECK_EQ(f->irq_queue[0], 2);
	for (int i = 0; i < 7; i++)
		CHECK_EQ(drvring_get_used(r, &t, &len), 0);
	CHECK_EQ(*used_event, 7); /* drvring re-armed at the next entry */
	drvring_set_irq(r, false);
	drvring_add(r, &s, 1, 8, false);
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 2);
	fx_close(f);
}

/* Split EVENT_IDX: used_event far behind means no interrupt for 64K. */
TEST(notify_split_event_idx_wraps)
{
	struct fx *f = fx_open((struct opts){ false, true, false, 4, 0 });
	struct drvring *r = &f->ring[0];
	uint16_t *used_event = (uint16_t *)drvring_driver_area(r) + 2 + 4;
	struct drvring_seg s = { buf_alloc(f, 8), 8, true };
	uint64_t t;
	uint32_t len;
	unsigned long irqs;

	drvring_set_irq(r, false); /* used_event = last_used - 1 = 0xffff */
	CHECK_EQ(*used_event, 0xffff);
	for (unsigned int i = 0; i < 0xffff; i++) {
		drvring_add(r, &s, 1, i, false);
		viommu_virtio_dev_notify(dev_of(f), 0);
		drvring_get_used(r, &t, &len);
		*used_event = 0xffff; /* keep it there */
	}
	CHECK_EQ(f->irq_queue[0], 0);
	irqs = f->irq_queue[0];
	drvring_add(r, &s, 1, 0, false); /* entry 0xffff */
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], irqs + 1);
	fx_close(f);
}

/* Packed: driver event suppression modes seen by the device. */
TEST(notify_packed_driver_events)
{
	struct fx *f = fx_open((struct opts){ true, true, false, 4, 0 });
	struct drvring *r = &f->ring[0];
	uint16_t *ev = drvring_driver_area(r);
	struct drvring_seg s = { buf_alloc(f, 8), 8, true };
	uint64_t t;
	uint32_t len;

	/* drvring's default with EVENT_IDX: DESC at the next used slot */
	CHECK_EQ(ev[1], VQ_EVENT_F_DESC);
	CHECK_EQ(ev[0], 1u << 15);
	drvring_add(r, &s, 1, 1, false); /* slot 0 */
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 1);
	CHECK_EQ(drvring_get_used(r, &t, &len), 0);
	CHECK_EQ(ev[0], 1 | (1u << 15)); /* re-armed at slot 1 */
	ev[1] = VQ_EVENT_F_DISABLE;
	drvring_add(r, &s, 1, 2, false); /* slot 1 */
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 1);
	CHECK_EQ(drvring_get_used(r, &t, &len), 0);
	ev[1] = VQ_EVENT_F_ENABLE;
	drvring_add(r, &s, 1, 3, false); /* slot 2 */
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 2);
	CHECK_EQ(drvring_get_used(r, &t, &len), 0);
	/* next used is slot 3 (wrap 1); ask for slot 1 of the next lap */
	ev[0] = 1;
	ev[1] = VQ_EVENT_F_DESC;
	drvring_add(r, &s, 1, 4, false); /* slot 3 */
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 2);
	drvring_add(r, &s, 1, 5, false); /* slot 0, lap 2 */
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 2);
	drvring_add(r, &s, 1, 6, false); /* slot 1, lap 2: hit */
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 3);
	/* the reserved mode 3 is treated as ENABLE */
	ev[1] = 3;
	drvring_add(r, &s, 1, 7, false); /* slot 2, lap 2 */
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 4);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(drvring_get_used(r, &t, &len), 0);
	CHECK_EQ(drvring_get_used(r, &t, &len), -ENOENT);
	fx_close(f);
}

/* Packed without EVENT_IDX: a DESC mode is not honoured (interrupts). */
TEST(notify_packed_desc_without_event_idx)
{
	struct fx *f = fx_open((struct opts){ true, false, false, 4, 0 });
	uint16_t *ev = drvring_driver_area(&f->ring[0]);
	struct drvring_seg s = { buf_alloc(f, 8), 8, true };

	ev[0] = 3; /* some slot not about to be used */
	ev[1] = VQ_EVENT_F_DESC;
	drvring_add(&f->ring[0], &s, 1, 1, false);
	viommu_virtio_dev_notify(dev_of(f), 0);
	CHECK_EQ(f->irq_queue[0], 1);
	fx_close(f);
}

/* Packed: device event suppression seen by drvring_kick_needed(). */
TEST(notify_packed_device_events)
{
	struct fx *f = fx_open((struct opts){ true, true, false, 4, 0 });
	struct drvring *r = &f->ring[0];
	uint16_t *ev = drvring_device_area(r);
	struct drvring_seg s = { buf_alloc(f, 8), 8, true };

	drvring_add(r, &s, 1, 1, false); /* slot 0 */
	CHECK(drvring_kick_needed(r));
	ev[1] = VQ_EVENT_F_DISABLE;
	drvring_add(r, &s, 1, 2, false); /* slot 1 */
	CHECK(!drvring_kick_needed(r));
	ev[0] = 3 | (1u << 15); /* slot 3 of lap 1 */
	ev[1] = VQ_EVENT_F_DESC;
	drvring_add(r, &s, 1, 3, false); /* slot 2 */
	CHECK(!drvring_kick_needed(r));
	drvring_add(r, &s, 1, 4, false); /* slot 3: hit */
	CHECK(drvring_kick_needed(r));
	ev[1] = VQ_EVENT_F_ENABLE;
	CHECK(!drvring_kick_needed(r)); /* nothing new */
	fx_close(f);
}

/* ---- polling: the device's side of kick suppression ------------------ */

/*
 * poll_matrix() - viommu_virtio_dev_poll() with kicks off: the driver sees
 * no need to notify and polling alone serves it, over five laps of the
 * ring; a chain added just before kicks come back on is served by that
 * call; afterwards the driver is asked to notify again.
 */
static void poll_matrix(bool packed, bool event_idx)
{
	struct fx *f = fx_open((struct opts){ packed, event_idx, false, 8, 0 });
	struct viommu_virtio_dev *d = dev_of(f);
	struct drvring *r = &f->ring[0];
	struct drvring_seg s[2] = { { buf_alloc(f, 16), 16, false },
				    { buf_alloc(f, 16), 16, true } };
	unsigned int done = 99;
	uint64_t tok = 0;
	uint32_t len = 0;
	bool ok = true;

	CHECK_EQ(viommu_virtio_dev_poll(d, 0, false, &done), 0);
	CHECK_EQ(done, 0);
	for (uint64_t i = 1; i <= 40; i++) {
		REQUIRE(drvring_add(r, s, 2, i, false) == 0);
		ok &= !drvring_kick_needed(r);
		ok &= viommu_virtio_dev_poll(d, 0, false, &done) == 0 &&
		      done == 1;
		ok &= drvring_get_used(r, &tok, &len) == 0 && tok == i &&
		      len == 16;
	}
	CHECK(ok);
	REQUIRE(drvring_add(r, s, 2, 41, false) == 0);
	CHECK(!drvring_kick_needed(r));
	CHECK_EQ(viommu_virtio_dev_poll(d, 0, true, &done), 0);
	CHECK_EQ(done, 1);
	CHECK_EQ(drvring_get_used(r, &tok, &len), 0);
	CHECK_U64(tok, 41);
	REQUIRE(drvring_add(r, s, 2, 42, false) == 0);
	CHECK(drvring_kick_needed(r));
	CHECK_EQ(viommu_virtio_dev_notify(d, 0), 0);
	CHECK_EQ(drvring_get_used(r, &tok, &len), 0);
	CHECK_U64(tok, 42);
	CHECK_EQ(f->nlog, 0);
	fx_close(f);
}

TEST(poll_split) { poll_matrix(false, false); }
TEST(poll_split_event_idx) { poll_matrix(false, true); }
TEST(poll_packed) { poll_matrix(true, false); }
TEST(poll_packed_event_idx) { poll_matrix(true, true); }

TEST(poll_bad_args_not_ready_and_reset)
{
	struct fx *f = fx_new((struct opts){ 0 });
	struct viommu_virtio_dev *d = dev_of(f);
	unsigned int done = 99;

	CHECK_EQ(viommu_virtio_dev_poll(NULL, 0, false, &done), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_poll(d, 2, false, &done), -EINVAL);
	/* before DRIVER_OK nothing happens, and nothing is written */
	CHECK_EQ(viommu_virtio_dev_poll(d, 0, false, &done), 0);
	CHECK_EQ(done, 0);
	CHECK(!d->vqs[0].kicks_off);
	REQUIRE(negotiate(f, opts_features(&f->o)) == 0);
	CHECK_EQ(viommu_virtio_dev_poll(d, 0, false, NULL), 0);
	CHECK(d->vqs[0].kicks_off);
	/* a device reset asks for kicks again */
	CHECK_EQ(viommu_virtio_dev_set_status(d, 0), 0);
	CHECK(!d->vqs[0].kicks_off);
	fx_close(f);
}

/* ---- status and features ---------------------------------------------- */

TEST(features_ok_needs_version_1)
{
	struct fx *f = fx_new((struct opts){ 0 });
	struct viommu_virtio_dev *d = dev_of(f);
	uint8_t ad = VIOMMU_VIRTIO_S_ACKNOWLEDGE | VIOMMU_VIRTIO_S_DRIVER;

	CHECK_U64(viommu_virtio_dev_features(d),
		  F_VERSION_1 | F_EVENT_IDX | F_INDIRECT | F_PACKED |
			  F_POISON);
	CHECK_EQ(viommu_virtio_dev_device_id(d), 0x7e57);
	CHECK_EQ(viommu_virtio_dev_set_status(d, ad), 0);
	CHECK_EQ(viommu_virtio_dev_set_driver_features(d, F_EVENT_IDX), 0);
	CHECK_EQ(viommu_virtio_dev_set_status(
			 d, ad | VIOMMU_VIRTIO_S_FEATURES_OK), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_status(d), ad);
	CHECK_EQ(f->nlog, 1);
	/* the model refuses POISON */
	CHECK_EQ(viommu_virtio_dev_set_driver_features(
			 d, F_VERSION_1 | F_POISON), 0);
	CHECK_EQ(viommu_virtio_dev_set_status(
			 d, ad | VIOMMU_VIRTIO_S_FEATURES_OK), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_status(d), ad);
	CHECK_EQ(f->nlog, 2);
	/* bits not offered are dropped; then it is accepted */
	CHECK_EQ(viommu_virtio_dev_set_driver_features(
			 d, F_VERSION_1 | (1ull << 40) | 1), 0);
	CHECK_U64(viommu_virtio_dev_driver_features(d), F_VERSION_1);
	CHECK_EQ(viommu_virtio_dev_set_status(
			 d, ad | VIOMMU_VIRTIO_S_FEATURES_OK), 0);
	CHECK_EQ(viommu_virtio_dev_status(d),
		 ad | VIOMMU_VIRTIO_S_FEATURES_OK);
	CHECK_EQ(viommu_virtio_dev_set_driver_features(d, F_VERSION_1 |
						       F_PACKED), -EBUSY);
	CHECK_U64(viommu_virtio_dev_driver_features(d), F_VERSION_1);
	fx_close(f);
}

TEST(status_order_rules)
{
	struct fx *f = fx_new((struct opts){ 0 });
	struct viommu_virtio_dev *d = dev_of(f);
	uint8_t a = VIOMMU_VIRTIO_S_ACKNOWLEDGE, dr = VIOMMU_VIRTIO_S_DRIVER;

	viommu_virtio_dev_set_driver_features(d, F_VERSION_1);
	/* FEATURES_OK before DRIVER */
	CHECK_EQ(viommu_virtio_dev_set_status(
			 d, a | VIOMMU_VIRTIO_S_FEATURES_OK), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_status(d), a);
	/* DRIVER_OK before FEATURES_OK */
	CHECK_EQ(viommu_virtio_dev_set_status(
			 d, a | dr | VIOMMU_VIRTIO_S_DRIVER_OK), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_status(d), a | dr);
	/* all at once is fine */
	CHECK_EQ(viommu_virtio_dev_set_status(d, S_ALL_OK), 0);
	CHECK_EQ(viommu_virtio_dev_status(d), S_ALL_OK);
	CHECK_EQ(f->nlog, 2);
	/* clearing a bit is refused and changes nothing */
	CHECK_EQ(viommu_virtio_dev_set_status(d, a | dr), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_status(d), S_ALL_OK);
	CHECK_EQ(f->nlog, 3);
	/* unknown bits are refused */
	CHECK_EQ(viommu_virtio_dev_set_status(d, S_ALL_OK | 0x20), -EINVAL);
	CHECK_EQ(f->nlog, 4);
	/* rewriting the same value is a no-op; FAILED can be added */
	CHECK_EQ(viommu_virtio_dev_set_status(d, S_ALL_OK), 0);
	CHECK_EQ(viommu_virtio_dev_set_status(
			 d, S_ALL_OK | VIOMMU_VIRTIO_S_FAILED), 0);
	CHECK_EQ(viommu_virtio_dev_status(d),
		 S_ALL_OK | VIOMMU_VIRTIO_S_FAILED);
	CHECK_EQ(viommu_virtio_dev_set_status(NULL, 1), -EINVAL);
	fx_close(f);
}

TEST(queue_setup_rules)
{
	struct fx *f = fx_new((struct opts){ 0 });
	struct viommu_virtio_dev *d = dev_of(f);
	struct viommu_virtio_queue_cfg good, c;
	uint8_t ad = VIOMMU_VIRTIO_S_ACKNOWLEDGE | VIOMMU_VIRTIO_S_DRIVER;

	drvring_queue_cfg(&f->ring[0], &good);
	CHECK_EQ(viommu_virtio_dev_num_queues(d), 2);
	CHECK_EQ(viommu_virtio_dev_queue_max(d, 1), 256);
	CHECK_EQ(viommu_virtio_dev_queue_max(d, 2), 0);
	/* before FEATURES_OK: refused */
	viommu_virtio_dev_set_status(d, ad);
	CHECK_EQ(viommu_virtio_dev_queue_setup(d, 0, &good), -EINVAL);
	viommu_virtio_dev_set_driver_features(d, F_VERSION_1);
	viommu_virtio_dev_set_status(d, ad | VIOMMU_VIRTIO_S_FEATURES_OK);
	CHECK_EQ(viommu_virtio_dev_queue_setup(d, 2, &good), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_queue_setup(NULL, 0, &good), -EINVAL);
#define BAD(field, val)                                                   \
	do {                                                              \
		c = good;                                                 \
		c.field = (val);                                          \
		CHECK_EQ(viommu_virtio_dev_queue_setup(d, 0, &c), -EINVAL); \
	} while (0)
	BAD(size, 0);
	BAD(size, 6);          /* split: not a power of two */
	BAD(size, 512);        /* above the queue max */
	BAD(desc, good.desc + 8);
	BAD(driver, good.driver + 1);
	BAD(device, good.device + 2);
	BAD(desc, HOLE);
	BAD(driver, HOLE);
	BAD(device, HOLE);
	BAD(device, ROM);      /* device area must be writable */
	BAD(desc, RAM0 + RAM0_SIZE - 64); /* runs into the hole */
	BAD(device, 0xfffffffffffffff0ull);
#undef BAD
	CHECK(!vdev_queue(d, 0)->ready);
	CHECK_EQ(viommu_virtio_dev_queue_setup(d, 0, &good), 0);
	CHECK(vdev_queue(d, 0)->ready);
	CHECK_EQ(viommu_virtio_dev_queue_setup(d, 0, NULL), 0);
	CHECK(!vdev_queue(d, 0)->ready);
	CHECK_EQ(viommu_virtio_dev_queue_setup(d, 0, &good), 0);
	CHECK_EQ(viommu_virtio_dev_set_status(d, S_ALL_OK), 0);
	CHECK_EQ(viommu_virtio_dev_queue_setup(d, 0, &good), -EBUSY);
	CHECK_EQ(viommu_virtio_dev_queue_setup(d, 0, NULL), -EBUSY);
	CHECK_EQ(viommu_virtio_dev_notify(d, 2), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_notify(NULL, 0), -EINVAL);
	/* queue 1 never set up: kicks ignored, nothing logged at INFO */
	CHECK_EQ(viommu_virtio_dev_notify(d, 1), 0);
	CHECK(!(viommu_virtio_dev_status(d) & S_NR));
	fx_close(f);
}

/* Packed rings take any size up to the max. */
TEST(packed_any_size)
{
	struct fx *f = fx_new((struct opts){ true, false, false, 3, 0 });
	struct viommu_virtio_queue_cfg c;

	REQUIRE(negotiate(f, F_VERSION_1 | F_PACKED) == 0);
	CHECK(vdev_queue(dev_of(f), 0)->packed);
	drvring_queue_cfg(&f->ring[0], &c);
	CHECK_EQ(c.size, 3);
	for (int i = 0; i < 10; i++)
		simple_rt(f, 0, (uint64_t)i);
	fx_close(f);
}

TEST(no_processing_before_driver_ok)
{
	struct fx *f = fx_new((struct opts){ 0 });
	struct viommu_virtio_dev *d = dev_of(f);
	struct viommu_virtio_queue_cfg c;
	uint64_t t;
	uint32_t len;

	viommu_virtio_dev_set_status(d, 3);
	viommu_virtio_dev_set_driver_features(d, F_VERSION_1);
	viommu_virtio_dev_set_status(d, 11);
	drvring_queue_cfg(&f->ring[0], &c);
	viommu_virtio_dev_queue_setup(d, 0, &c);
	add_rw(f, 0, false);
	viommu_virtio_dev_notify(d, 0);
	CHECK_EQ(f->fk.popped[0], 0);
	CHECK_EQ(drvring_get_used(&f->ring[0], &t, &len), -ENOENT);
	viommu_virtio_dev_set_status(d, S_ALL_OK);
	viommu_virtio_dev_notify(d, 0);
	CHECK_EQ(f->fk.popped[0], 1);
	CHECK_EQ(drvring_get_used(&f->ring[0], &t, &len), 0);
	fx_close(f);
}

TEST(reset_clears_everything)
{
	struct fx *f = fx_open((struct opts){ false, true, true, 8, 0 });
	struct viommu_virtio_dev *d = dev_of(f);

	simple_rt(f, 0, 1);
	simple_rt(f, 1, 2);
	CHECK(d->isr != 0);
	CHECK_EQ(viommu_virtio_dev_set_status(d, 0), 0);
	CHECK_EQ(viommu_virtio_dev_status(d), 0);
	CHECK_U64(viommu_virtio_dev_driver_features(d), 0);
	CHECK_EQ(viommu_virtio_dev_read_isr(d), 0);
	CHECK(!vdev_queue(d, 0)->ready && !vdev_queue(d, 1)->ready);
	CHECK_EQ(vdev_queue(d, 0)->last_avail, 0);
	CHECK_EQ(vdev_queue(d, 0)->used_idx, 0);
	CHECK_EQ(f->fk.resets, 1);
	CHECK_EQ(f->fk.sys_resets, 0);
	/* system reset: the hook is told */
	viommu_virtio_dev_reset(d);
	CHECK_EQ(f->fk.resets, 2);
	CHECK_EQ(f->fk.sys_resets, 1);
	CHECK_EQ(viommu_virtio_dev_status(d), 0);
	/* it works again from scratch, with other features */
	f->o = (struct opts){ true, false, false, 8, 0 };
	for (int q = 0; q < 2; q++)
		drvring_init(&f->ring[q], hva(f, RING_AREA(q)), RING_AREA(q),
			     8, true, false, false);
	REQUIRE(negotiate(f, opts_features(&f->o)) == 0);
	simple_rt(f, 0, 3);
	fx_close(f);
}

TEST(config_space_dispatch)
{
	struct fx *f = fx_open((struct opts){ 0 });
	struct viommu_virtio_dev *d = dev_of(f);
	uint8_t buf[8];
	uint64_t v = 0;
	uint32_t gen;

	for (int i = 0; i < 8; i++)
		f->fk.cfg[i] = (uint8_t)(0x10 + i);
	CHECK_EQ(viommu_virtio_dev_config_read(d, 0, &v, 8), 0);
	CHECK_U64(v, 0x1716151413121110ull);
	CHECK_EQ(viommu_virtio_dev_config_read(d, 6, buf, 2), 0);
	CHECK_EQ(buf[0], 0x16);
	memset(buf, 0xff, sizeof(buf));
	CHECK_EQ(viommu_virtio_dev_config_read(d, 100, buf, 4), 0);
	CHECK_EQ(buf[0] | buf[1] | buf[2] | buf[3], 0); /* past the end */
	CHECK_EQ(viommu_virtio_dev_config_read(d, 6, buf, 4), 0);
	CHECK_EQ(buf[0], 0x16);
	CHECK_EQ(buf[2], 0);
	CHECK_EQ(viommu_virtio_dev_config_read(d, 0, buf, 3), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_config_read(d, 0, buf, 0), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_config_read(d, 0, NULL, 4), -EINVAL);
	CHECK_EQ(viommu_virtio_dev_config_write(d, 4, buf, 16), -EINVAL);
	CHECK_EQ(f->fk.cfg_writes, 0);
	CHECK_EQ(viommu_virtio_dev_config_write(d, 4, buf, 2), 0);
	CHECK_EQ(f->fk.cfg_writes, 1);
	CHECK_EQ(f->fk.w_off, 4);
	CHECK_EQ(f->fk.w_len, 2);
	gen = viommu_virtio_dev_config_generation(d);
	pthread_mutex_lock(&d->lock);
	__vdev_config_changed(d);
	pthread_mutex_unlock(&d->lock);
	CHECK_EQ(viommu_virtio_dev_config_generation(d), gen + 1);
	CHECK_EQ(f->irq_config, 1);
	CHECK_EQ(viommu_virtio_dev_read_isr(d), VIOMMU_VIRTIO_ISR_CONFIG);
	CHECK_EQ(viommu_virtio_dev_read_isr(d), 0);
	fx_close(f);
}

TEST(irq_callback_and_null)
{
	struct fx *f = fx_open((struct opts){ 0 });
	struct viommu_virtio_dev *d = dev_of(f);

	simple_rt(f, 1, 1);
	CHECK_EQ(f->irq_queue[1], 1);
	viommu_virtio_dev_set_irq(d, NULL, NULL);
	simple_rt(f, 1, 2);
	CHECK_EQ(f->irq_queue[1], 1);
	CHECK_EQ(viommu_virtio_dev_read_isr(d), VIOMMU_VIRTIO_ISR_QUEUE);
	fx_close(f);
}

/* vq-level API details: read/write bounds, push clamps, init errors. */
TEST(vq_api_edges)
{
	struct fx *f = fx_open((struct opts){ false, false, false, 8, 16 });
	struct vq *vq = vdev_queue(dev_of(f), 0);
	struct vq_elem e;
	struct vq tmp;
	uint8_t b[64];
	uint64_t t;
	uint32_t len;

	f->fk.hold = true;
	add_rw(f, 0, false);
	CHECK_EQ(vq_pop(vq, &e), 0);
	CHECK_EQ(vq_read(vq, &e, 0, b, 16), 0);
	CHECK_EQ(vq_read(vq, &e, 1, b, 16), -ERANGE);
	CHECK_EQ(vq_read(vq, &e, 0xffffffffu, b, 2), -ERANGE);
	CHECK_EQ(vq_write(vq, &e, 8, b, 8), 0);
	CHECK_EQ(vq_write(vq, &e, 8, b, 9), -ERANGE);
	CHECK_EQ(vq_read(vq, &e, 16, b, 0), 0);
	CHECK_EQ(vq_pop(vq, &e), -ENOENT);
	CHECK_EQ(vq_push(vq, &e, 1000), 0); /* clamped to 16 */
	CHECK(vq_need_notify(vq));
	CHECK(!vq_need_notify(vq));
	CHECK_EQ(drvring_get_used(&f->ring[0], &t, &len), 0);
	CHECK_EQ(len, 16);
	CHECK_EQ(vq_init(&tmp, f->mem, NULL, NULL, "x", 0), -EINVAL);
	CHECK_EQ(vq_init(&tmp, NULL, NULL, NULL, "x", 8), -EINVAL);
	CHECK_EQ(vq_init(&tmp, f->mem, NULL, NULL, "x", 8), 0);
	CHECK_EQ(vq_pop(&tmp, &e), -ENOENT); /* not configured */
	CHECK_EQ(vq_push(&tmp, &e, 0), -EIO);
	CHECK(!vq_need_notify(&tmp));
	vq_set_broken(&tmp, "test");
	CHECK_EQ(vq_pop(&tmp, &e), -EIO);
	vq_destroy(&tmp);
	CHECK(vdev_queue(dev_of(f), 2) == NULL);
	fx_close(f);
}

TEST(vdev_init_errors)
{
	struct fx *f = fx_new((struct opts){ 0 });
	struct viommu_virtio_dev d2;

	CHECK_EQ(vdev_init(&d2, &fake_ops, NULL, f->mem, NULL, NULL, 0, 0, 8),
		 -EINVAL);
	CHECK_EQ(vdev_init(&d2, &fake_ops, NULL, f->mem, NULL, NULL, 0,
			   VDEV_MAX_QUEUES + 1, 8), -EINVAL);
	CHECK_EQ(vdev_init(&d2, &fake_ops, NULL, f->mem, NULL, NULL, 0, 1,
			   VIOMMU_VIRTIO_QUEUE_MAX + 1), -EINVAL);
	CHECK_EQ(vdev_init(&d2, NULL, NULL, f->mem, NULL, NULL, 0, 1, 8),
		 -EINVAL);
	CHECK_EQ(vdev_init(&d2, &fake_ops, NULL, f->mem, NULL, NULL, 0, 1, 8),
		 0);
	CHECK_U64(viommu_virtio_dev_features(&d2), F_VERSION_1);
	vdev_destroy(&d2);
	fx_close(f);
}

/* drvring itself: argument checks, ENOSPC, a buffer not in flight. */
TEST(drvring_edges)
{
	struct fx *f = fx_open((struct opts){ false, false, false, 8, 16 });
	struct drvring *r = &f->ring[0];
	struct drvring_seg s[9];
	uint32_t *used = drvring_device_area(r);
	uint64_t t;
	uint32_t len;

	for (int i = 0; i < 9; i++)
		s[i] = (struct drvring_seg){ buf_alloc(f, 8), 8, false };
	CHECK_EQ(drvring_add(r, s, 0, 1, false), -EINVAL);
	CHECK_EQ(drvring_add(r, s, 9, 1, false), -EINVAL);
	CHECK_EQ(drvring_add(r, s, 2, 1, true), -EINVAL); /* no feature */
	CHECK_EQ(drvring_add(r, s, 5, 1, false), 0);
	CHECK_EQ(drvring_num_free(r), 3);
	CHECK_EQ(drvring_add(r, s, 4, 2, false), -ENOSPC);
	CHECK_EQ(drvring_get_used(r, &t, &len), -ENOENT);
	/* a device returning head 3 (not a head in flight) */
	used[1] = 3;
	used[2] = 0;
	((uint16_t *)used)[1] = 1;
	CHECK_EQ(drvring_get_used(r, &t, &len), -EIO);
	CHECK_EQ(drvring_init(r, f->ram0 + 8, 8, 8, false, false, false),
		 -EINVAL);
	CHECK_EQ(drvring_init(r, f->ram0, 0, 6, false, false, false),
		 -EINVAL);
	CHECK_EQ(drvring_init(r, f->ram0, 0, 6, true, false, false), 0);
	CHECK(drvring_bytes(8, false) > 16 * 8 + 6 + 16 + 6 + 64);
	fx_close(f);
}

/* ---- concurrency: driver and device in different threads ------------- */

/*
 * The device thread sleeps until kicked (or, polled, alternates between
 * polling with kicks suppressed and waiting for a kick); the driver kicks
 * only when drvring_kick_needed() says so and sleeps until interrupted
 * when it has nothing to reap, so a lost notification in either direction
 * would stall the run: a 60-second guard turns a stall into a failure.
 */
#define NREQ 10000

struct thr {
	struct fx *f;
	sem_t kick, irq;
	int stop;
};

static void thr_irq(void *opaque, uint8_t isr, uint16_t q)
{
	struct thr *t = opaque;

	if (isr & VIOMMU_VIRTIO_ISR_QUEUE)
		sem_post(&t->irq);
}

static void *device_thread(void *arg)
{
	struct thr *t = arg;

	for (;;) {
		sem_wait(&t->kick);
		if (__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE))
			return NULL;
		viommu_virtio_dev_notify(dev_of(t->f), 0);
	}
}

/*
 * poller_thread() - a device that alternates: a polled phase (kicks
 * suppressed, viommu_virtio_dev_poll() in a loop, then kicks asked for
 * again) and a kicked phase (wait for one kick).  A chain the driver adds
 * without kicking while kicks are off must still be served.
 */
static void *poller_thread(void *arg)
{
	struct thr *t = arg;
	struct viommu_virtio_dev *d = dev_of(t->f);
	unsigned int done;

	for (;;) {
		for (int i = 0; i < 500; i++) {
			if (__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE))
				return NULL;
			viommu_virtio_dev_poll(d, 0, false, &done);
		}
		viommu_virtio_dev_poll(d, 0, true, &done);
		sem_wait(&t->kick);
		if (__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE))
			return NULL;
		viommu_virtio_dev_notify(d, 0);
	}
}

/* wait_sem() - sem_wait with the stall guard.  Return: 0; -ETIMEDOUT. */
static int wait_sem(sem_t *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 60;
	while (sem_timedwait(s, &ts))
		if (errno != EINTR)
			return -ETIMEDOUT;
	return 0;
}

/* submit() - add requests while there is room; kick if asked to. */
static void submit(struct thr *t, uint64_t base, unsigned int *sent,
		   unsigned int done)
{
	struct fx *f = t->f;
	bool added = false;

	while (*sent < NREQ && *sent - done < 16) {
		uint64_t slot = base + 64 * (*sent % 16), v = *sent;
		struct drvring_seg s[2] = { { slot, 8, false },
					    { slot + 32, 8, true } };

		memcpy(hva(f, slot), &v, 8);
		if (drvring_add(&f->ring[0], s, 2, *sent, false))
			break;
		(*sent)++;
		added = true;
	}
	if (added && drvring_kick_needed(&f->ring[0]))
		sem_post(&t->kick);
}

static void threaded(bool packed, bool event_idx, bool polled)
{
	struct fx *f = fx_open((struct opts){ packed, event_idx, false, 16,
					      0 });
	struct thr t = { .f = f };
	uint64_t base = buf_alloc(f, 16 * 64), tok;
	unsigned int sent = 0, done = 0, bad = 0, stalls = 0;
	pthread_t th;
	uint32_t len;

	sem_init(&t.kick, 0, 0);
	sem_init(&t.irq, 0, 0);
	viommu_virtio_dev_set_irq(dev_of(f), thr_irq, &t);
	REQUIRE(pthread_create(&th, NULL, polled ? poller_thread :
			       device_thread, &t) == 0);
	while (done < NREQ && !stalls) {
		unsigned int got = 0;

		submit(&t, base, &sent, done);
		while (drvring_get_used(&f->ring[0], &tok, &len) == 0) {
			uint64_t v;

			memcpy(&v, hva(f, base + 64 * (done % 16) + 32), 8);
			bad += tok != done || len != 8 || v != done;
			done++;
			got++;
		}
		if (!got && sent > done && wait_sem(&t.irq))
			stalls++;
	}
	__atomic_store_n(&t.stop, 1, __ATOMIC_RELEASE);
	sem_post(&t.kick);
	pthread_join(th, NULL);
	CHECK_EQ(stalls, 0);
	CHECK_EQ(bad, 0);
	CHECK_EQ(done, NREQ);
	CHECK_EQ(f->fk.popped[0], NREQ);
	CHECK_EQ(f->nlog, 0);
	sem_destroy(&t.kick);
	sem_destroy(&t.irq);
	fx_close(f);
}

TEST(threads_split) { threaded(false, false, false); }
TEST(threads_split_event_idx) { threaded(false, true, false); }
TEST(threads_packed) { threaded(true, false, false); }
TEST(threads_packed_event_idx) { threaded(true, true, false); }
TEST(threads_polled_split) { threaded(false, false, true); }
TEST(threads_polled_split_event_idx) { threaded(false, true, true); }
TEST(threads_polled_packed) { threaded(true, false, true); }
TEST(threads_polled_packed_event_idx) { threaded(true, true, true); }

/*
 * Regression (review): a ring index in a 1-byte RAM region.  host16()'s
 * bound `gpa - base > size - 2` wrapped for size 1 and the 2-byte store
 * of used.idx wrote one byte past the region.
 */
TEST(used_idx_in_one_byte_region_stays_inside)
{
	static uint8_t a[0x202] __attribute__((aligned(4096)));
	static uint8_t b[2] __attribute__((aligned(2)));
	static uint8_t c[0x1000] __attribute__((aligned(4096)));
	struct viommu_mem_region r[3] = {
		{ .gpa = 0, .size = 0x202, .hva = a, .fd = -1 },
		{ .gpa = 0x202, .size = 1, .hva = b, .fd = -1 },
		{ .gpa = 0x203, .size = 0x1000, .hva = c, .fd = -1 },
	};
	struct vq_elem e = { .id = 0 };
	struct viommu_mem *mem;
	unsigned int tok;
	struct vq vq;

	b[1] = 0xaa; /* outside every region */
	REQUIRE(viommu_mem_create(NULL, &mem) == 0);
	REQUIRE(viommu_mem_set_regions(mem, r, 3) == 0);
	REQUIRE(vq_init(&vq, mem, NULL, NULL, "t", 1) == 0);
	tok = viommu_mem_read_lock(mem);
	CHECK_EQ(vq_configure(&vq, 1, 0x0, 0x100, 0x200, false, false, false),
		 0);
	vq_push(&vq, &e, 0);
	viommu_mem_read_unlock(mem, tok);
	CHECK_EQ(b[1], 0xaa);
	vq_destroy(&vq);
	viommu_mem_destroy(mem);
}

TEST_MAIN()
