/*
 * fs_napi: what vault asks of a volume's filesystem without running a tool, for vault_native's
 * exports. JS thread only.
 *
 * blkidProbe(fd, onlyTypes): libblkid's low-level probe of the device (or file) open on fd, as
 * `blkid -p` does (superblocks and partition tables, blkid_do_safeprobe), in this process. With
 * onlyTypes (an array of TYPE names, at most 16) only those filesystems are looked for: about 1 ms
 * instead of 11-13 on a mounted vault volume (each read the full probe makes, down to RAID
 * signatures at the device's end, is a FUSE round trip and a decryption). Null: every type.
 * Returns [rc, type]:
 *   rc 0   a signature was found; type is its TYPE (null for a partition table only)
 *   rc 1   nothing recognised
 *   rc -2  ambivalent: signatures of more than one filesystem (of those looked for)
 *   rc -1  the probe failed (an I/O error reading the device)
 *
 * mountAt(type, source, params, attrs, targetFd): mounts with the kernel's mount API (fsopen,
 * fsconfig, fsmount, move_mount) onto the directory open on targetFd, as `mount -i -t type`
 * would, without its process (8-16 ms of every mount from the CLI): the target is the descriptor
 * vault pinned and checked, never a name. params: [name, value] pairs for fsconfig (value null:
 * a flag; the superblock's "ro" among them); attrs: MOUNT_ATTR_* for the mount (nosuid, nodev,
 * noexec, rdonly, atime). Returns [errno, log]: 0 when mounted, else the failing step's errno and
 * what the filesystem wrote to the context's log (e.g. "ext4: Unrecognized mount option ...").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fsopen & co. in <sys/mount.h> (glibc 2.36) */
#endif
#define NAPI_VERSION 8

#include "fs_napi.h"
#include "napi_util.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define ADDON_NAME "vault_native"
#define CHECK VAULT_CHECK

#define MAX_ONLY_TYPES 16
#define TYPE_NAME_MAX 32

/* onlyTypes: null, or an array of up to MAX_ONLY_TYPES short strings copied into `names` (a
   NULL-terminated list, as blkid_probe_filter_superblocks_type takes). */
static bool get_only_types(napi_env env, napi_value v, char store[][TYPE_NAME_MAX], char **names, bool *any) {
  napi_valuetype t;
  uint32_t n = 0;
  *any = false;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_null || t == napi_undefined) return true;
  bool is_array = false;
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array || napi_get_array_length(env, v, &n) != napi_ok || n == 0 || n > MAX_ONLY_TYPES) {
    vault_throw_type_error(env, "onlyTypes must be null or an array of 1 to 16 filesystem type names");
    return false;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    size_t len = 0;
    if (napi_get_element(env, v, i, &e) != napi_ok || napi_get_value_string_utf8(env, e, store[i], TYPE_NAME_MAX, &len) != napi_ok || len == 0 ||
        len >= TYPE_NAME_MAX - 1) {
      vault_throw_type_error(env, "onlyTypes must hold short filesystem type names");
      return false;
    }
    names[i] = store[i];
  }
  names[n] = NULL;
  *any = true;
  return true;
}

napi_value blkid_probe_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2], result, rc_v, type_v;
  int fd, rc = -1;
  char type[64] = "", store[MAX_ONLY_TYPES][TYPE_NAME_MAX], *names[MAX_ONLY_TYPES + 1];
  bool only = false;
  if (!vault_arg_count(env, info, 2, argv) || !vault_arg_fd(env, argv[0], &fd) || !get_only_types(env, argv[1], store, names, &only)) return NULL;
  blkid_probe pr = blkid_new_probe();
  if (pr != NULL && blkid_probe_set_device(pr, fd, 0, 0) == 0) {
    const char *found = NULL;
    /* blkid -p's chains and flags (misc-utils/blkid.c, lowprobe_device). */
    blkid_probe_enable_superblocks(pr, 1);
    blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE | BLKID_SUBLKS_SECTYPE |
                                              BLKID_SUBLKS_USAGE | BLKID_SUBLKS_VERSION);
    if (only) blkid_probe_filter_superblocks_type(pr, BLKID_FLTR_ONLYIN, names);
    blkid_probe_enable_partitions(pr, 1);
    blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
    rc = blkid_do_safeprobe(pr);
    if (rc == 0 && blkid_probe_lookup_value(pr, "TYPE", &found, NULL) == 0 && found != NULL) snprintf(type, sizeof type, "%s", found);
  }
  if (pr != NULL) blkid_free_probe(pr); /* `found` pointed into it: copied above */
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_create_int32(env, rc, &rc_v));
  if (type[0] != '\0') {
    CHECK(napi_create_string_utf8(env, type, NAPI_AUTO_LENGTH, &type_v));
  } else {
    CHECK(napi_get_null(env, &type_v));
  }
  CHECK(napi_set_element(env, result, 0, rc_v));
  CHECK(napi_set_element(env, result, 1, type_v));
  return result;
}

#define MOUNT_PARAMS_MAX 64
#define MOUNT_STR_MAX 4096
#define MOUNT_LOG_MAX 1024

/* A string argument of at most MOUNT_STR_MAX - 1 bytes, into a new malloc'ed buffer (NULL: thrown). */
static char *get_str(napi_env env, napi_value v, const char *what) {
  size_t len = 0;
  char *buf;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len == 0 || len >= MOUNT_STR_MAX) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a non-empty string of fewer than %d bytes", what, MOUNT_STR_MAX);
    vault_throw_type_error(env, msg);
    return NULL;
  }
  buf = malloc(len + 1);
  if (buf == NULL || napi_get_value_string_utf8(env, v, buf, len + 1, &len) != napi_ok || strlen(buf) != len) {
    free(buf);
    vault_throw_type_error(env, "strings passed to mountAt must not contain NUL");
    return NULL;
  }
  return buf;
}

/* The messages fsconfig and friends left on the context (each read is one message), joined by "; ". */
static void read_fs_log(int fs, char *out, size_t cap) {
  char msg[512];
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < 8; i++) {
    ssize_t n = read(fs, msg, sizeof msg - 1);
    if (n <= 0) break;
    msg[n] = '\0';
    /* "e ext4: ...", "w ...", "i ...": the severity letter is dropped. */
    const char *text = (n > 2 && msg[1] == ' ') ? msg + 2 : msg;
    int w = snprintf(out + used, cap - used, "%s%s", used ? "; " : "", text);
    if (w < 0 || (size_t)w >= cap - used) break;
    used += (size_t)w;
  }
}

napi_value mount_at(napi_env env, napi_callback_info info) {
  napi_value argv[5], result = NULL, v;
  char *type = NULL, *source = NULL, *names[MOUNT_PARAMS_MAX] = {0}, *values[MOUNT_PARAMS_MAX] = {0}, log[MOUNT_LOG_MAX] = "";
  uint32_t nparams = 0;
  double attrs_d;
  int target, err = 0, fs = -1, mnt = -1;
  bool is_array = false;
  if (!vault_arg_count(env, info, 5, argv) || !vault_arg_number(env, argv[3], "attrs", &attrs_d) || !vault_arg_fd(env, argv[4], &target)) return NULL;
  if (attrs_d < 0 || attrs_d > 0xffffffff || attrs_d != (double)(uint32_t)attrs_d) {
    vault_throw_range_error(env, "attrs must be a 32-bit mask of MOUNT_ATTR_* flags");
    return NULL;
  }
  if (napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[2], &nparams) != napi_ok ||
      nparams > MOUNT_PARAMS_MAX) {
    vault_throw_type_error(env, "params must be an array of at most 64 [name, value] pairs");
    return NULL;
  }
  if ((type = get_str(env, argv[0], "type")) == NULL || (source = get_str(env, argv[1], "source")) == NULL) goto out;
  for (uint32_t i = 0; i < nparams; i++) {
    napi_value pair, name_v, value_v;
    napi_valuetype vt;
    bool pair_ok = false;
    uint32_t plen = 0;
    if (napi_get_element(env, argv[2], i, &pair) != napi_ok || napi_is_array(env, pair, &pair_ok) != napi_ok || !pair_ok ||
        napi_get_array_length(env, pair, &plen) != napi_ok || plen != 2 || napi_get_element(env, pair, 0, &name_v) != napi_ok ||
        napi_get_element(env, pair, 1, &value_v) != napi_ok || napi_typeof(env, value_v, &vt) != napi_ok) {
      vault_throw_type_error(env, "params must hold [name, value] pairs");
      goto out;
    }
    if ((names[i] = get_str(env, name_v, "a parameter's name")) == NULL) goto out;
    if (vt != napi_null && (values[i] = get_str(env, value_v, "a parameter's value")) == NULL) goto out;
  }

  fs = fsopen(type, FSOPEN_CLOEXEC);
  if (fs < 0) {
    err = errno;
    snprintf(log, sizeof log, "fsopen(%s) failed", type);
  }
  if (err == 0 && fsconfig(fs, FSCONFIG_SET_STRING, "source", source, 0) != 0) err = errno;
  for (uint32_t i = 0; err == 0 && i < nparams; i++)
    if ((values[i] ? fsconfig(fs, FSCONFIG_SET_STRING, names[i], values[i], 0) : fsconfig(fs, FSCONFIG_SET_FLAG, names[i], NULL, 0)) != 0) err = errno;
  if (err == 0 && fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) err = errno;
  if (err == 0 && (mnt = fsmount(fs, FSMOUNT_CLOEXEC, (unsigned int)attrs_d)) < 0) err = errno;
  if (err == 0 && move_mount(mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) err = errno;
  if (err != 0 && fs >= 0) read_fs_log(fs, log, sizeof log);
  if (mnt >= 0) close(mnt); /* a mount never moved is undone when its last descriptor closes */
  if (fs >= 0) close(fs);

  if (napi_create_array_with_length(env, 2, &result) != napi_ok || napi_create_int32(env, err, &v) != napi_ok || napi_set_element(env, result, 0, v) != napi_ok ||
      napi_create_string_utf8(env, log, NAPI_AUTO_LENGTH, &v) != napi_ok || napi_set_element(env, result, 1, v) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "mountAt result");
    result = NULL;
  }
out:
  free(type);
  free(source);
  for (uint32_t i = 0; i < nparams; i++) {
    free(names[i]);
    free(values[i]);
  }
  return result; /* NULL: an exception is pending */
}
