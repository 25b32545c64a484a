/* fido2: see fido2.h. */
#include "fido2.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <fido.h>
#include "napi_util.h"
#include "token_calls.h" /* last: every libfido2 call through its pointer */

#define ADDON_NAME "vault_native"
#define REPORT 64
#define SALT_LEN 32
#define SECRET_LEN 32
#define MAX_CRED_ID 1024
#define MAX_PIN 255 /* CTAP: at most 63 bytes; libfido2 checks */
#define MAX_NAME 512
#define UNIX_PREFIX "unix:"

/* ---- the unix socket transport -------------------------------------------------------------- */

typedef struct {
  int fd;
} sock_io;

static void *sock_open(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strncmp(path, UNIX_PREFIX, strlen(UNIX_PREFIX)) != 0) return NULL;
  path += strlen(UNIX_PREFIX);
  if (strlen(path) >= sizeof sa.sun_path) return NULL;
  strcpy(sa.sun_path, path);
  sock_io *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    if (s->fd >= 0) close(s->fd);
    free(s);
    return NULL;
  }
  return s;
}

static void sock_close(void *h) {
  sock_io *s = h;
  if (s == NULL) return;
  close(s->fd);
  free(s);
}

/* One report: exactly REPORT bytes, within ms (-1: no limit). Returns REPORT, or -1. */
static int sock_read(void *h, unsigned char *buf, size_t len, int ms) {
  sock_io *s = h;
  size_t got = 0;
  if (len < REPORT) return -1;
  while (got < REPORT) {
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1; /* timeout or error; a partial report is lost, as on hidraw */
    ssize_t n = recv(s->fd, buf + got, REPORT - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1; /* the peer went away */
    got += (size_t)n;
  }
  return REPORT;
}

/* libfido2 writes a report ID byte (0) in front of each 64-byte report, as hidraw wants it. */
static int sock_write(void *h, const unsigned char *buf, size_t len) {
  sock_io *s = h;
  const unsigned char *p = buf;
  size_t left = len;
  if (len == REPORT + 1) p++, left--;
  if (left != REPORT) return -1;
  while (left > 0) {
    ssize_t n = send(s->fd, p, left, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    left -= (size_t)n;
  }
  return (int)len;
}

static const fido_dev_io_t SOCK_IO = {sock_open, sock_close, sock_read, sock_write};

/* ---- the job -------------------------------------------------------------------------------- */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char device[MAX_NAME], rp_id[MAX_NAME];
  char *pin; /* NUL-terminated copy, wiped and freed */
  uint8_t salt[SALT_LEN];
  uint8_t cred_id[MAX_CRED_ID];
  size_t cred_id_len;
  bool enroll, uv, up;
  fido_opt_t uv_option; /* the assertion's "uv" option */
  int timeout_ms;
  /* results */
  uint8_t secret[SECRET_LEN];
  int fido_err;        /* FIDO_OK or libfido2's error */
  const char *stage;   /* which step failed */
  bool open_failed, not_fido2;
  double elapsed_ms; /* of the whole job: a receive failure after the full timeout is a wait that ran out */
} fido2_job;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void init_fido(void) { fido_init(0); }

static void job_free(napi_env env, fido2_job *j) {
  if (j->work != NULL) (void)napi_delete_async_work(env, j->work);
  if (j->pin != NULL) {
    explicit_bzero(j->pin, strlen(j->pin));
    free(j->pin);
  }
  explicit_bzero(j, sizeof *j);
  free(j);
}

static int fail(fido2_job *j, const char *stage, int r) {
  j->stage = stage;
  j->fido_err = r;
  return r;
}

/* Opens j->device (or the first device the manifest lists) into dev. */
static int open_device(fido2_job *j, fido_dev_t *dev) {
  int r;
  if (strncmp(j->device, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0 &&
      (r = fido_dev_set_io_functions(dev, &SOCK_IO)) != FIDO_OK)
    return fail(j, "fido_dev_set_io_functions", r);
  if (j->device[0] == '\0') {
    fido_dev_info_t *list = fido_dev_info_new(8);
    size_t n = 0;
    if (list == NULL) return fail(j, "fido_dev_info_new", FIDO_ERR_INTERNAL);
    r = fido_dev_info_manifest(list, 8, &n);
    if (r == FIDO_OK && n > 0) snprintf(j->device, sizeof j->device, "%s", fido_dev_info_path(fido_dev_info_ptr(list, 0)));
    fido_dev_info_free(&list, 8);
    if (r != FIDO_OK || n == 0) {
      j->open_failed = true;
      return fail(j, "fido_dev_info_manifest", r != FIDO_OK ? r : FIDO_ERR_RX);
    }
  }
  /* Before the open: it already talks to the device (CTAPHID_INIT, getInfo), and libfido2's default is to wait forever. */
  if (j->timeout_ms > 0) (void)fido_dev_set_timeout(dev, j->timeout_ms);
  if ((r = fido_dev_open(dev, j->device)) != FIDO_OK) {
    j->open_failed = true;
    return fail(j, "fido_dev_open", r);
  }
  if (!fido_dev_is_fido2(dev)) {
    fido_dev_close(dev);
    j->not_fido2 = true;
    return fail(j, "fido_dev_is_fido2", FIDO_ERR_UNSUPPORTED_OPTION);
  }
  return FIDO_OK;
}

static int make_credential(fido2_job *j, fido_dev_t *dev) {
  uint8_t user_id[32], cdh[32];
  int r = FIDO_ERR_INTERNAL;
  fido_cred_t *cred = fido_cred_new();
  if (cred == NULL) return fail(j, "fido_cred_new", FIDO_ERR_INTERNAL);
  if (getrandom(user_id, sizeof user_id, 0) != sizeof user_id || getrandom(cdh, sizeof cdh, 0) != sizeof cdh) {
    fail(j, "getrandom", FIDO_ERR_INTERNAL);
    goto out;
  }
  if ((r = fido_cred_set_type(cred, COSE_ES256)) != FIDO_OK || (r = fido_cred_set_clientdata_hash(cred, cdh, sizeof cdh)) != FIDO_OK ||
      (r = fido_cred_set_rp(cred, j->rp_id, j->rp_id)) != FIDO_OK ||
      (r = fido_cred_set_user(cred, user_id, sizeof user_id, "vault", "vault", NULL)) != FIDO_OK ||
      (r = fido_cred_set_extensions(cred, FIDO_EXT_HMAC_SECRET)) != FIDO_OK || (r = fido_cred_set_rk(cred, FIDO_OPT_FALSE)) != FIDO_OK ||
      (r = fido_cred_set_uv(cred, j->uv && j->pin == NULL ? FIDO_OPT_TRUE : FIDO_OPT_OMIT)) != FIDO_OK) {
    fail(j, "fido_cred_set", r);
    goto out;
  }
  if ((r = fido_dev_make_cred(dev, cred, j->pin)) != FIDO_OK) {
    fail(j, "fido_dev_make_cred", r);
    goto out;
  }
  /* hmac-secret itself is checked by the assertion that follows (no output, no secret). */
  if (!(fido_cred_flags(cred) & 0x01) /* UP */ || !(fido_cred_flags(cred) & 0x40) /* AT */) {
    r = fail(j, "fido_cred_flags", FIDO_ERR_OPERATION_DENIED);
    goto out;
  }
  size_t len = fido_cred_id_len(cred);
  if (len == 0 || len > MAX_CRED_ID) {
    r = fail(j, "fido_cred_id_len", FIDO_ERR_INVALID_CBOR);
    goto out;
  }
  memcpy(j->cred_id, fido_cred_id_ptr(cred), len);
  j->cred_id_len = len;
out:
  fido_cred_free(&cred);
  return r;
}

/* The hmac-secret of j->salt for j->cred_id. up: require user presence. */
static int get_secret(fido2_job *j, fido_dev_t *dev, fido_opt_t up) {
  uint8_t cdh[32];
  int r = FIDO_ERR_INTERNAL;
  fido_assert_t *a = fido_assert_new();
  if (a == NULL) return fail(j, "fido_assert_new", FIDO_ERR_INTERNAL);
  if (getrandom(cdh, sizeof cdh, 0) != sizeof cdh) {
    fail(j, "getrandom", FIDO_ERR_INTERNAL);
    goto out;
  }
  if ((r = fido_assert_set_clientdata_hash(a, cdh, sizeof cdh)) != FIDO_OK || (r = fido_assert_set_rp(a, j->rp_id)) != FIDO_OK ||
      (r = fido_assert_allow_cred(a, j->cred_id, j->cred_id_len)) != FIDO_OK ||
      (r = fido_assert_set_extensions(a, FIDO_EXT_HMAC_SECRET)) != FIDO_OK ||
      (r = fido_assert_set_hmac_salt(a, j->salt, sizeof j->salt)) != FIDO_OK || (r = fido_assert_set_up(a, up)) != FIDO_OK ||
      (r = fido_assert_set_uv(a, j->uv_option)) != FIDO_OK) {
    fail(j, "fido_assert_set", r);
    goto out;
  }
  if ((r = fido_dev_get_assert(dev, a, j->pin)) != FIDO_OK) {
    fail(j, "fido_dev_get_assert", r);
    goto out;
  }
  if (fido_assert_count(a) != 1 || fido_assert_hmac_secret_len(a, 0) != SECRET_LEN) {
    r = fail(j, "fido_assert_hmac_secret", FIDO_ERR_UNSUPPORTED_EXTENSION);
    goto out;
  }
  uint8_t flags = fido_assert_flags(a, 0);
  if ((up == FIDO_OPT_TRUE && !(flags & 0x01)) || (j->uv && !(flags & 0x04))) {
    r = fail(j, "fido_assert_flags", up == FIDO_OPT_TRUE && !(flags & 0x01) ? FIDO_ERR_OPERATION_DENIED : FIDO_ERR_UV_INVALID);
    goto out;
  }
  memcpy(j->secret, fido_assert_hmac_secret_ptr(a, 0), SECRET_LEN);
out:
  fido_assert_free(&a); /* libfido2 wipes the hmac-secret output (freezero) */
  return r;
}

static void execute(napi_env env, void *data) {
  fido2_job *j = data;
  (void)env; /* threadpool thread: no N-API calls here */
  pthread_once(&init_once, init_fido);
  double start = now_ms();
  fido_dev_t *dev = fido_dev_new();
  if (dev == NULL) {
    fail(j, "fido_dev_new", FIDO_ERR_INTERNAL);
    return;
  }
  if (open_device(j, dev) == FIDO_OK) {
    if (!j->enroll || make_credential(j, dev) == FIDO_OK) {
      /* Enrolment: the user has just touched the key, so ask for the secret without a second touch
         first, as systemd-cryptenroll does; a device that insists on presence gets it. */
      int r = get_secret(j, dev, j->enroll || !j->up ? FIDO_OPT_FALSE : FIDO_OPT_TRUE);
      if (j->enroll && (r == FIDO_ERR_UP_REQUIRED || r == FIDO_ERR_UNSUPPORTED_OPTION || r == FIDO_ERR_INVALID_OPTION)) {
        j->fido_err = FIDO_OK;
        (void)get_secret(j, dev, FIDO_OPT_TRUE);
      }
    }
    fido_dev_close(dev);
  }
  fido_dev_free(&dev);
  j->elapsed_ms = now_ms() - start;
}

/* ---- errors --------------------------------------------------------------------------------- */

static const char *error_code(const fido2_job *j) {
  if (j->open_failed) return "ERR_FIDO2_NO_DEVICE";
  if (j->not_fido2) return "ERR_FIDO2_UNSUPPORTED"; /* a U2F-only key */
  /* libfido2 reports a wait that ran out (the key keeps asking for a touch) as a receive failure. */
  if (j->fido_err == FIDO_ERR_RX && j->timeout_ms > 0 && j->elapsed_ms >= 0.95 * j->timeout_ms) return "ERR_FIDO2_TIMEOUT";
  switch (j->fido_err) {
  case FIDO_ERR_TX: case FIDO_ERR_RX: case FIDO_ERR_RX_NOT_CBOR: case FIDO_ERR_RX_INVALID_CBOR:
  case FIDO_ERR_INVALID_LENGTH: case FIDO_ERR_INVALID_COMMAND: case FIDO_ERR_CHANNEL_BUSY:
    return "ERR_FIDO2_NO_DEVICE";
  case FIDO_ERR_NO_CREDENTIALS: case FIDO_ERR_INVALID_CREDENTIAL:
    return "ERR_FIDO2_NO_CREDENTIAL";
  case FIDO_ERR_ACTION_TIMEOUT: case FIDO_ERR_USER_ACTION_TIMEOUT: case FIDO_ERR_USER_ACTION_PENDING: case FIDO_ERR_OPERATION_DENIED:
  case FIDO_ERR_KEEPALIVE_CANCEL: case FIDO_ERR_UP_REQUIRED:
    return "ERR_FIDO2_PRESENCE";
  case FIDO_ERR_PIN_REQUIRED: case FIDO_ERR_PIN_NOT_SET:
    return "ERR_FIDO2_PIN_REQUIRED";
  case FIDO_ERR_PIN_INVALID: case FIDO_ERR_PIN_AUTH_INVALID: case FIDO_ERR_PIN_POLICY_VIOLATION:
    return "ERR_FIDO2_PIN_INVALID";
  case FIDO_ERR_PIN_BLOCKED: case FIDO_ERR_PIN_AUTH_BLOCKED:
    return "ERR_FIDO2_PIN_BLOCKED";
  case FIDO_ERR_UV_INVALID: case FIDO_ERR_UV_BLOCKED: case FIDO_ERR_UNSUPPORTED_OPTION: case FIDO_ERR_INVALID_OPTION:
    return "ERR_FIDO2_UV";
  case FIDO_ERR_UNSUPPORTED_EXTENSION: case FIDO_ERR_UNSUPPORTED_ALGORITHM:
    return "ERR_FIDO2_UNSUPPORTED";
  default:
    return "ERR_FIDO2";
  }
}

static napi_value make_error(napi_env env, const fido2_job *j) {
  napi_value e = NULL, code, msg, num;
  char text[MAX_NAME + 160];
  snprintf(text, sizeof text, "libfido2: %s on %s failed: %s", j->stage != NULL ? j->stage : "?",
           j->device[0] != '\0' ? j->device : "(no device)", fido_strerr(j->fido_err));
  if (napi_create_string_utf8(env, error_code(j), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg) != napi_ok || napi_create_error(env, code, msg, &e) != napi_ok)
    return NULL;
  if (napi_create_int32(env, j->fido_err, &num) == napi_ok) (void)napi_set_named_property(env, e, "fidoError", num);
  return e;
}

static void complete(napi_env env, napi_status status, void *data) {
  fido2_job *j = data;
  napi_value result, id, secret, e;
  if (status == napi_ok && j->fido_err == FIDO_OK) {
    void *p;
    if (napi_create_object(env, &result) == napi_ok && napi_create_buffer_copy(env, j->cred_id_len, j->cred_id, &p, &id) == napi_ok &&
        napi_create_buffer_copy(env, SECRET_LEN, j->secret, &p, &secret) == napi_ok &&
        napi_set_named_property(env, result, "credentialId", id) == napi_ok &&
        napi_set_named_property(env, result, "secret", secret) == napi_ok) {
      (void)napi_resolve_deferred(env, j->deferred, result);
      job_free(env, j);
      return;
    }
    j->fido_err = FIDO_ERR_INTERNAL;
    j->stage = "result";
  }
  if (status != napi_ok) {
    j->fido_err = FIDO_ERR_INTERNAL;
    j->stage = "cancelled";
  }
  e = make_error(env, j);
  if (e != NULL) (void)napi_reject_deferred(env, j->deferred, e);
  job_free(env, j);
}

/* ---- arguments ------------------------------------------------------------------------------ */

static bool opt_bytes(napi_env env, napi_value obj, const char *name, bool required, size_t min, size_t max, uint8_t *out,
                      size_t *len, bool *present) {
  napi_value v;
  uint8_t *data;
  char what[64];
  if (!vault_opt_prop(env, obj, name, &v, present)) return false;
  if (!*present) {
    if (!required) return true;
    snprintf(what, sizeof what, "options.%s is required", name);
    vault_throw_type_error(env, what);
    return false;
  }
  snprintf(what, sizeof what, "options.%s", name);
  if (!vault_arg_bytes(env, v, what, &data, len)) return false;
  if (*len < min || *len > max) {
    snprintf(what, sizeof what, "options.%s must be %zu..%zu bytes", name, min, max);
    vault_throw_range_error(env, what);
    return false;
  }
  if (out != NULL) memcpy(out, data, *len);
  return true;
}

static bool opt_text(napi_env env, napi_value obj, const char *name, bool allow_empty, char *buf, size_t cap) {
  napi_value v;
  bool present;
  size_t len = 0;
  char msg[96];
  if (!vault_opt_prop(env, obj, name, &v, &present)) return false;
  if (!present || napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok || len + 1 >= cap || strlen(buf) != len ||
      (len == 0 && !allow_empty)) {
    snprintf(msg, sizeof msg, "options.%s must be a string of at most %zu bytes without NUL", name, cap - 2);
    vault_throw_type_error(env, msg);
    return false;
  }
  return true;
}

/* libfido2 opened (token_libs.c), or a thrown ERR_VAULT_MISSING_LIBRARY saying what to install. */
static bool fido2_lib(napi_env env) {
  char why[320];
  if (vault_fido2_lib(why, sizeof why)) return true;
  vault_throw_error(env, "ERR_VAULT_MISSING_LIBRARY", why);
  return false;
}

napi_value vault_fido2_start(napi_env env, napi_callback_info info) {
  napi_value argv[1], name, promise;
  size_t len;
  bool present;
  uint64_t timeout;
  uint8_t *pin;
  size_t pin_len;
  if (!vault_arg_count(env, info, 1, argv) || !fido2_lib(env)) return NULL;
  fido2_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    vault_throw_errno(env, "calloc", "fido2Async", ENOMEM);
    return NULL;
  }
  if (!opt_text(env, argv[0], "device", true, j->device, sizeof j->device) ||
      !opt_text(env, argv[0], "rpId", false, j->rp_id, sizeof j->rp_id) ||
      !opt_bytes(env, argv[0], "salt", true, SALT_LEN, SALT_LEN, j->salt, &len, &present) ||
      !opt_bytes(env, argv[0], "credentialId", false, 1, MAX_CRED_ID, j->cred_id, &j->cred_id_len, &present) ||
      !vault_opt_bool(env, argv[0], "uv", false, &j->uv) || !vault_opt_int(env, argv[0], "timeoutMs", false, 30000, 600000, &timeout))
    goto fail;
  j->enroll = !present;
  j->timeout_ms = (int)timeout;
  char uv_option[8] = "";
  napi_value v;
  if (!vault_opt_bool(env, argv[0], "up", true, &j->up) || !vault_opt_prop(env, argv[0], "uvOption", &v, &present)) goto fail;
  if (present && !opt_text(env, argv[0], "uvOption", false, uv_option, sizeof uv_option)) goto fail;
  if (!present)
    j->uv_option = FIDO_OPT_OMIT; /* set below, once the PIN is known */
  else if (strcmp(uv_option, "omit") == 0 || strcmp(uv_option, "false") == 0 || strcmp(uv_option, "true") == 0)
    j->uv_option = uv_option[0] == 'o' ? FIDO_OPT_OMIT : uv_option[0] == 'f' ? FIDO_OPT_FALSE : FIDO_OPT_TRUE;
  else {
    vault_throw_range_error(env, "options.uvOption must be \"omit\", \"false\" or \"true\"");
    goto fail;
  }
  if (!vault_opt_prop(env, argv[0], "pin", &v, &present)) goto fail;
  if (present) {
    if (!vault_arg_bytes(env, v, "options.pin", &pin, &pin_len)) goto fail;
    if (pin_len == 0 || pin_len > MAX_PIN || memchr(pin, 0, pin_len) != NULL) {
      vault_throw_range_error(env, "options.pin must be 1..255 bytes without NUL");
      goto fail;
    }
    if ((j->pin = malloc(pin_len + 1)) == NULL) {
      vault_throw_errno(env, "malloc", "fido2Async", ENOMEM);
      goto fail;
    }
    memcpy(j->pin, pin, pin_len);
    j->pin[pin_len] = '\0';
  }
  /* By default the "uv" option asks for built-in verification when uv is wanted and no PIN verifies the user. */
  if (uv_option[0] == '\0') j->uv_option = j->uv && j->pin == NULL ? FIDO_OPT_TRUE : FIDO_OPT_OMIT;
  if (napi_create_string_utf8(env, "vault:fido2", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, j, &j->work) != napi_ok ||
      napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "fido2Async setup");
    goto fail;
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    j->fido_err = FIDO_ERR_INTERNAL;
    j->stage = "napi_queue_async_work";
    napi_value e = make_error(env, j);
    if (e != NULL) (void)napi_reject_deferred(env, j->deferred, e);
    job_free(env, j);
  }
  return promise;
fail:
  job_free(env, j);
  return NULL;
}

napi_value vault_fido2_devices(napi_env env, napi_callback_info info) {
  napi_value arr, item, s;
  size_t n = 0;
  (void)info;
  if (!fido2_lib(env)) return NULL;
  pthread_once(&init_once, init_fido);
  fido_dev_info_t *list = fido_dev_info_new(16);
  if (list == NULL) {
    vault_throw_errno(env, "fido_dev_info_new", "fido2Devices", ENOMEM);
    return NULL;
  }
  int r = fido_dev_info_manifest(list, 16, &n);
  if (r != FIDO_OK) n = 0;
  VAULT_CHECK_GOTO(napi_create_array_with_length(env, n, &arr), fail);
  for (size_t i = 0; i < n; i++) {
    const fido_dev_info_t *di = fido_dev_info_ptr(list, i);
    const char *fields[3][2] = {{"path", fido_dev_info_path(di)},
                                {"manufacturer", fido_dev_info_manufacturer_string(di)},
                                {"product", fido_dev_info_product_string(di)}};
    VAULT_CHECK_GOTO(napi_create_object(env, &item), fail);
    for (size_t k = 0; k < 3; k++) {
      VAULT_CHECK_GOTO(napi_create_string_utf8(env, fields[k][1] != NULL ? fields[k][1] : "", NAPI_AUTO_LENGTH, &s), fail);
      VAULT_CHECK_GOTO(napi_set_named_property(env, item, fields[k][0], s), fail);
    }
    VAULT_CHECK_GOTO(napi_set_element(env, arr, (uint32_t)i, item), fail);
  }
  fido_dev_info_free(&list, 16);
  return arr;
fail:
  fido_dev_info_free(&list, 16);
  return NULL;
}
