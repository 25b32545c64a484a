/* fido2: FIDO2 hmac-secret credentials through libfido2 (Debian: libfido2-dev to build, libfido2-1 at
   run time), on the libuv threadpool.

   A device is a hidraw path ("/dev/hidraw3", libfido2's own transport), "unix:<socket path>" (CTAP HID
   reports of 64 bytes moved over a unix stream socket, one report per write and per read: a generic
   transport for authenticators bridged from elsewhere, and the one the tests' software authenticator
   listens on), or "" (the first FIDO2 device libfido2 finds).

   Errors reject with an Error whose code says what went wrong, and `fidoError` (libfido2's number):
     ERR_FIDO2_NO_DEVICE      no device, it could not be opened, or it stopped answering (removed)
     ERR_FIDO2_NO_CREDENTIAL  the device does not know the credential (another authenticator)
     ERR_FIDO2_PRESENCE       user presence not confirmed (denied, timed out, or still pending)
     ERR_FIDO2_TIMEOUT        no answer within timeoutMs (the key waited for a touch that did not come)
     ERR_FIDO2_PIN_REQUIRED   the device wants its PIN and none was given
     ERR_FIDO2_PIN_INVALID    wrong PIN
     ERR_FIDO2_PIN_BLOCKED    PIN blocked (too many wrong PINs; power cycle or reset the device)
     ERR_FIDO2_UV             user verification not supported, or it failed
     ERR_FIDO2_UNSUPPORTED    the device lacks FIDO2 (U2F only), hmac-secret or ES256
     ERR_FIDO2                anything else */
#ifndef VAULT_FIDO2_H
#define VAULT_FIDO2_H
#include <node_api.h>
/* fido2Async(options): Promise<{ credentialId: Buffer, secret: Buffer }>.
   options: { device: string ("" = first found), rpId: string, salt: Uint8Array(32), uv: boolean,
   pin?: Uint8Array (wiped by the caller), credentialId?: Uint8Array (absent: enrol a new credential),
   timeoutMs: number, up?: boolean (default true: the assertion asks for user presence), uvOption?: "omit" | "false" |
   "true" (the assertion's "uv" option; default "true" when uv and no pin, else "omit") }. uv: the result must carry
   the user-verified flag. Without credentialId it makes a non-resident ES256 credential with hmac-secret
   and then asks it for the hmac-secret of salt; with one it only asks. secret is 32 bytes. */
napi_value vault_fido2_start(napi_env env, napi_callback_info info);
/* fido2Devices(): [{ path, manufacturer, product }] as libfido2's manifest lists them (hidraw). */
napi_value vault_fido2_devices(napi_env env, napi_callback_info info);
#endif
