/*
 * tc_legacy_napi: JS bindings of tc_legacy.c (TrueCrypt's LRW and CBC modes). Synchronous, on the
 * JS thread: legacy volumes are a read-mostly rarity, and one call covers many sectors.
 *
 *   tcLegacyChains(): {name, mode, ciphers, keyBytes}[]   mode: 'lrw' | 'cbc' | 'cbc-outer'
 *   tcLegacyOpen(chain: string, key: NativeKey): External  (key schedules; key stays in its handle)
 *   tcLegacyHeader(ctx, buf: Uint8Array(448), encrypt: boolean): void
 *   tcLegacySectors(ctx, buf: Uint8Array(512 * n), firstSector: bigint, encrypt: boolean): void
 *   tcLegacyClose(ctx): void  (idempotent; the GC closes a forgotten one)
 */
#define NAPI_VERSION 8

#include "tc_legacy.h"
#include "tc_legacy_napi.h"
#include "napi_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>
#include <node_api.h>

#define ADDON_NAME "vault_native"
#define CHECK VAULT_CHECK

static const napi_type_tag CTX_TAG = {0x7661756c74746c65ULL, 0x67616379637478ULL};

typedef struct {
  tc_legacy_ctx *ctx; /* NULL once closed */
} ctx_box;

static void box_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tc_legacy_close(((ctx_box *)data)->ctx);
  free(data);
}

static bool unbox(napi_env env, napi_value v, bool allow_closed, ctx_box **out) {
  napi_valuetype t;
  bool tagged = false;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, v, &CTX_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, v, &p) != napi_ok) {
    vault_throw_type_error(env, "expected a TrueCrypt legacy context from tcLegacyOpen");
    return false;
  }
  *out = p;
  if ((*out)->ctx == NULL && !allow_closed) {
    vault_throw_error(env, "ERR_VAULT_KEY_DISPOSED", "the TrueCrypt legacy context has been closed");
    return false;
  }
  return true;
}

static void throw_crypto(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s failed in libgcrypt: %s", what, gcry_strerror((gcry_error_t)err));
  vault_throw_error(env, "ERR_VAULT_CRYPTO", msg);
}

static napi_value chains(napi_env env, napi_callback_info info) {
  napi_value arr, obj, v, list;
  const tc_legacy_chain_info *c;
  (void)info;
  CHECK(napi_create_array(env, &arr));
  for (uint32_t i = 0; (c = tc_legacy_chain(i)) != NULL; i++) {
    const char *mode = c->mode == TC_MODE_LRW ? "lrw" : c->mode == TC_MODE_CBC_OUTER ? "cbc-outer" : "cbc";
    CHECK(napi_create_object(env, &obj));
    CHECK(napi_create_string_utf8(env, c->name, NAPI_AUTO_LENGTH, &v));
    CHECK(napi_set_named_property(env, obj, "name", v));
    CHECK(napi_create_string_utf8(env, mode, NAPI_AUTO_LENGTH, &v));
    CHECK(napi_set_named_property(env, obj, "mode", v));
    CHECK(napi_create_array_with_length(env, c->count, &list));
    for (uint32_t j = 0; j < c->count; j++) {
      CHECK(napi_create_string_utf8(env, c->ciphers[j], NAPI_AUTO_LENGTH, &v));
      CHECK(napi_set_element(env, list, j, v));
    }
    CHECK(napi_set_named_property(env, obj, "ciphers", list));
    CHECK(napi_create_uint32(env, c->key_bytes, &v));
    CHECK(napi_set_named_property(env, obj, "keyBytes", v));
    CHECK(napi_set_element(env, arr, i, obj));
  }
  return arr;
}

static napi_value open_ctx(napi_env env, napi_callback_info info) {
  napi_value argv[2], ext;
  char name[64], msg[160];
  size_t name_len = 0, key_len;
  const uint8_t *key;
  const tc_legacy_chain_info *chain;
  ctx_box *box;
  int err = 0;
  if (!vault_arg_count(env, info, 2, argv)) return NULL;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &name_len) != napi_ok) {
    vault_throw_type_error(env, "chain must be a string");
    return NULL;
  }
  chain = tc_legacy_chain_by_name(name);
  if (chain == NULL) {
    snprintf(msg, sizeof msg, "unknown TrueCrypt legacy chain '%s' (see tcLegacyChains())", name);
    vault_throw_range_error(env, msg);
    return NULL;
  }
  if (!vault_key_bytes(env, argv[1], &key, &key_len)) return NULL;
  if (key_len < chain->key_bytes) {
    snprintf(msg, sizeof msg, "chain %s needs %u bytes of key material, the key has %zu", name, chain->key_bytes, key_len);
    vault_throw_range_error(env, msg);
    return NULL;
  }
  box = calloc(1, sizeof *box);
  if (box == NULL) {
    vault_throw_errno(env, "calloc", "TrueCrypt legacy context", ENOMEM);
    return NULL;
  }
  box->ctx = tc_legacy_open(chain, key, key_len, &err);
  if (box->ctx == NULL) {
    free(box);
    if (err < 0)
      vault_throw_errno(env, "mlock", "locked memory for a TrueCrypt legacy context", -err);
    else
      throw_crypto(env, "setting up the cipher", err);
    return NULL;
  }
  if (napi_create_external(env, box, box_finalize, NULL, &ext) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_create_external");
    box_finalize(env, box, NULL);
    return NULL;
  }
  if (napi_type_tag_object(env, ext, &CTX_TAG) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_type_tag_object");
    return NULL; /* the finalizer frees it */
  }
  return ext;
}

/* header: (ctx, buf, encrypt); sectors: (ctx, buf, firstSector, encrypt). */
static napi_value transform(napi_env env, napi_callback_info info, bool is_header) {
  napi_value argv[4];
  size_t n = is_header ? 3 : 4, len;
  ctx_box *box;
  uint8_t *buf;
  uint64_t first = 0;
  bool enc;
  int r;
  if (!vault_arg_count(env, info, n, argv) || !unbox(env, argv[0], false, &box) ||
      !vault_arg_bytes(env, argv[1], is_header ? "header" : "buffer", &buf, &len) ||
      (!is_header && !vault_arg_u64(env, argv[2], "firstSector", &first)) || !vault_arg_bool(env, argv[n - 1], "encrypt", &enc))
    return NULL;
  if (is_header && len != TC_LEGACY_HEADER_ENC_LEN) {
    vault_throw_range_error(env, "the encrypted header part must be exactly 448 bytes (header bytes 64..512)");
    return NULL;
  }
  if (!is_header && len % TC_LEGACY_SECTOR != 0) {
    vault_throw_range_error(env, "the buffer length must be a multiple of 512 (whole sectors)");
    return NULL;
  }
  if (!is_header && (first >= TC_LEGACY_MAX_SECTOR || len / TC_LEGACY_SECTOR > TC_LEGACY_MAX_SECTOR - first)) {
    vault_throw_range_error(env, "firstSector is too large: legacy volumes end below sector 2^55");
    return NULL;
  }
  r = is_header ? tc_legacy_header(box->ctx, buf, enc) : tc_legacy_sectors(box->ctx, buf, len, first, enc);
  if (r != 0) throw_crypto(env, is_header ? "the header transform" : "the sector transform", r);
  return NULL;
}

static napi_value header(napi_env env, napi_callback_info info) {
  return transform(env, info, true);
}

static napi_value sectors(napi_env env, napi_callback_info info) {
  return transform(env, info, false);
}

static napi_value close_ctx(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ctx_box *box;
  if (!vault_arg_count(env, info, 1, argv) || !unbox(env, argv[0], true, &box)) return NULL;
  tc_legacy_close(box->ctx);
  box->ctx = NULL;
  return NULL;
}

napi_value vault_tc_legacy_register(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"tcLegacyChains", chains}, {"tcLegacyOpen", open_ctx}, {"tcLegacyHeader", header},
             {"tcLegacySectors", sectors}, {"tcLegacyClose", close_ctx}};
  enum { N = sizeof fns / sizeof fns[0] };
  napi_property_descriptor props[N];
  for (size_t i = 0; i < N; i++)
    props[i] = (napi_property_descriptor){fns[i].name, NULL, fns[i].fn, NULL, NULL, NULL, napi_enumerable, NULL};
  CHECK(napi_define_properties(env, exports, N, props));
  return exports;
}
