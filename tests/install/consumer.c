/*
 * consumer.c - the install check's embedder: a program that knows viommu
 * only through the installed <viommu/viommu.h> and `pkg-config viommu`.
 *
 * It builds the smallest useful setup (guest memory, a context, one
 * endpoint, one paging domain), maps, translates, does DMA, provokes a
 * fault and checks every answer.  It prints what it checked and the library
 * version, and exits non-zero on the first mismatch.  Built and run by
 * scripts/check-install.sh against a DESTDIR install (make check, stage
 * "install"); written in plain C11 so that it also proves the headers need
 * no compiler extensions.
 */
#include <viommu/viommu.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RAM_GPA 0x100000u   /* guest RAM: 1 MiB at 1 MiB */
#define RAM_SIZE 0x100000u
#define EP_ID 0x0008u       /* requester ID 00:01.0 */
#define IOVA 0x40000000u    /* the device sees the buffer here */
#define MAP_SIZE 0x2000u    /* two 4 KiB pages */
#define BUF_GPA 0x180000u   /* ...backed by this guest RAM */

static int faults_seen;
static struct viommu_fault last_fault;

/* on_fault() - the context's fault callback: remember the last fault. */
static void on_fault(void *opaque, const struct viommu_fault *f)
{
	(void)opaque;
	faults_seen++;
	last_fault = *f;
}

/* fail() - report a failed check; returns 1 for the exit status. */
static int fail(const char *what, long long got, long long want)
{
	fprintf(stderr, "consumer: %s: got %lld, want %lld\n", what, got,
		want);
	return 1;
}

#define EXPECT(what, got, want)                                          \
	do {                                                               \
		long long got_ = (long long)(got), want_ = (long long)(want); \
		if (got_ != want_) {                                       \
			status = fail((what), got_, want_);                \
			goto cleanup;                                      \
		}                                                          \
		printf("ok: %s\n", (what));                               \
	} while (0)

int main(void)
{
	struct viommu_mem *mem = NULL;
	struct viommu_ctx *ctx = NULL;
	struct viommu_endpoint *ep = NULL;
	struct viommu_domain *dom = NULL;
	struct viommu_ctx_config cfg;
	struct viommu_domain_config dcfg;
	struct viommu_mem_region region;
	struct viommu_xlate xl;
	struct viommu_fault fault;
	uint64_t unmapped = 0;
	unsigned char *ram = calloc(1, RAM_SIZE);
	unsigned char data[16] = "install-check!!";
	char want_version[32];
	int status = 0;

	if (!ram)
		return fail("calloc", 0, 1);

	memset(&region, 0, sizeof(region));
	region.gpa = RAM_GPA;
	region.size = RAM_SIZE;
	region.fd = -1;
	region.hva = ram;
	EXPECT("mem_create", viommu_mem_create(NULL, &mem), 0);
	EXPECT("mem_set_regions", viommu_mem_set_regions(mem, &region, 1), 0);

	memset(&cfg, 0, sizeof(cfg));
	cfg.mem = mem;
	cfg.fault = on_fault;
	EXPECT("ctx_create", viommu_ctx_create(&cfg, &ctx), 0);
	EXPECT("endpoint_create", viommu_endpoint_create(ctx, EP_ID, &ep), 0);

	memset(&dcfg, 0, sizeof(dcfg));
	dcfg.kind = VIOMMU_DOMAIN_PAGING;
	dcfg.tag = 1;
	EXPECT("domain_create", viommu_domain_create(ctx, &dcfg, &dom), 0);
	/* Map before attach, as the Linux driver's replay does. */
	EXPECT("domain_map", viommu_domain_map(dom, IOVA, IOVA + MAP_SIZE - 1,
					       BUF_GPA,
					       VIOMMU_READ | VIOMMU_WRITE), 0);
	EXPECT("endpoint_attach",
	       viommu_endpoint_attach(ep, VIOMMU_NO_PASID, dom), 0);

	/* Translate: GPA, host pointer into our RAM, contiguous length. */
	memset(&xl, 0, sizeof(xl));
	EXPECT("translate", viommu_translate(ep, VIOMMU_NO_PASID, IOVA + 0x10,
					     64, VIOMMU_READ, &xl, NULL), 0);
	EXPECT("translate gpa", xl.gpa, BUF_GPA + 0x10);
	EXPECT("translate hva", (unsigned char *)xl.hva - ram,
	       BUF_GPA + 0x10 - RAM_GPA);
	EXPECT("translate len", xl.len, 64);

	/* DMA write through the IOMMU lands in guest RAM. */
	EXPECT("dma_write", viommu_dma_write(ep, VIOMMU_NO_PASID, IOVA + 0x100,
					     data, sizeof(data)), 0);
	EXPECT("dma data in RAM",
	       memcmp(ram + (BUF_GPA - RAM_GPA) + 0x100, data, sizeof(data)),
	       0);

	/* An unmapped IOVA faults and reaches the fault callback. */
	memset(&fault, 0, sizeof(fault));
	EXPECT("translate unmapped",
	       viommu_translate(ep, VIOMMU_NO_PASID, IOVA + MAP_SIZE, 4,
				VIOMMU_READ, &xl, &fault), -EFAULT);
	EXPECT("fault reason", fault.reason, VIOMMU_FAULT_NO_MAPPING);
	EXPECT("fault address", fault.address, IOVA + MAP_SIZE);
	EXPECT("fault endpoint", fault.endpoint, EP_ID);
	EXPECT("fault callback", faults_seen, 1);
	EXPECT("fault callback reason", last_fault.reason,
	       VIOMMU_FAULT_NO_MAPPING);

	/* Unmap reports the bytes; afterwards the IOVA faults. */
	EXPECT("domain_unmap", viommu_domain_unmap(dom, IOVA,
						   IOVA + MAP_SIZE - 1,
						   &unmapped), 0);
	EXPECT("unmapped bytes", unmapped, MAP_SIZE);
	EXPECT("translate after unmap",
	       viommu_translate(ep, VIOMMU_NO_PASID, IOVA, 4, VIOMMU_READ,
				&xl, NULL), -EFAULT);

	snprintf(want_version, sizeof(want_version), "%d.%d.%d",
		 VIOMMU_VERSION_MAJOR, VIOMMU_VERSION_MINOR,
		 VIOMMU_VERSION_PATCH);
	EXPECT("library version matches the header",
	       strcmp(viommu_version(), want_version), 0);
	printf("viommu %s: install check passed\n", viommu_version());

cleanup:
	viommu_ctx_destroy(ctx); /* destroys the endpoint and the domain */
	viommu_mem_destroy(mem);
	free(ram);
	return status;
}
