/*
 * fuse_uring_abi.h: the FUSE-over-io_uring part of the kernel's FUSE ABI (protocol 7.42,
 * <linux/fuse.h> of Linux 6.14 and later), for systems whose headers are older (Debian 12 ships
 * 7.38). The layouts are the kernel's; only used when <linux/fuse.h> lacks them.
 */
#ifndef VAULT_FUSE_URING_ABI_H
#define VAULT_FUSE_URING_ABI_H

#include <linux/fuse.h>
#include <stdint.h>

#ifndef FUSE_INIT_EXT
#define FUSE_INIT_EXT (1u << 30)
#endif
/* In fuse_init_in/out.flags2 (the upper half of the 64-bit flag set): bit 41 - 32. */
#define VF_FLAGS2_OVER_IO_URING (1u << (41 - 32))

#if FUSE_KERNEL_MINOR_VERSION < 42
#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ 128

/* Part of fuse_uring_req_header: the entry's commit id and payload size. */
struct fuse_uring_ent_in_out {
  uint64_t flags;
  uint64_t commit_id; /* to be passed back in fuse_uring_cmd_req.commit_id */
  uint32_t payload_sz; /* bytes of payload (request in, reply out) */
  uint32_t padding;
  uint64_t reserved;
};

/* The header buffer of a ring entry (iov[0] of its registration). */
struct fuse_uring_req_header {
  char in_out[FUSE_URING_IN_OUT_HEADER_SZ]; /* fuse_in_header in, fuse_out_header out */
  char op_in[FUSE_URING_OP_IN_OUT_SZ];      /* the op's first argument (fuse_write_in, ...) */
  struct fuse_uring_ent_in_out ring_ent_in_out;
};

enum fuse_uring_cmd {
  FUSE_IO_URING_CMD_INVALID = 0,
  FUSE_IO_URING_CMD_REGISTER = 1,         /* register an entry's buffers and fetch a request */
  FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2, /* commit the reply and fetch the next request */
};

/* In the 80-byte command area of a 128-byte SQE. */
struct fuse_uring_cmd_req {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
#endif

_Static_assert(sizeof(struct fuse_uring_cmd_req) <= 80, "fits the SQE128 command area");

#endif
