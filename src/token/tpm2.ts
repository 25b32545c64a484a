// TPM2 sealing: a short secret sealed by the TPM under a PCR policy (and optionally a PIN), and
// unsealed again, through the native addon (native/tpm2.c over tpm2-tss). The sealed object is the
// one systemd-cryptenroll 252 makes (src/token/systemd-tpm2.ts reads its tokens with this).
//
// The TPM work runs on the libuv threadpool. The secret and the PIN go to the addon as bytes and
// never through argv, the environment or a file; the addon keeps its copies in locked memory and
// wipes them. The caller owns (and wipes) the buffers it passes and the secret it gets back.
import { VaultError } from '../errors.js';
import { nativeTpm2 } from '../crypto/native.js';

/** What a TPM2 keyslot stores: enough to unseal on the same TPM, nothing secret. */
export interface Tpm2Sealed {
  pcrBank: 'sha256';
  /** The PCRs the policy binds, ascending. */
  pcrs: number[];
  /** Whether unsealing needs the PIN (the object's authValue is SHA-256 of its bytes). */
  pin: boolean;
  /** Marshalled TPM2B_PUBLIC of the sealed object. */
  public: Buffer;
  /** Marshalled TPM2B_PRIVATE (the secret, encrypted by the TPM's storage key). */
  private: Buffer;
  /** The object's policy digest (SHA-256), as systemd's tpm2-policy-hash. */
  policyHash: Buffer;
}

export interface Tpm2Options {
  /** A tpm2-tss TCTI ("swtpm:host=localhost,port=2321", "device:/dev/tpmrm0"); absent or null:
   *  tpm2-tss's default search (/dev/tpmrm0, /dev/tpm0, then a simulator on localhost:2321). */
  tcti?: string | null;
  /** The PIN's bytes (UTF-8 of what the user typed). */
  pin?: Uint8Array;
}

export interface Tpm2SealOptions extends Tpm2Options {
  /** PCRs of the sha256 bank whose current values the secret is bound to (0..23). */
  pcrs: readonly number[];
}

export const TPM2_MAX_SECRET = 128;
export const TPM2_PCR_COUNT = 24;
const MAX_BLOB = 1024;

/** The PCR list as a mask; a bad list is a usage error. */
export function pcrMask(pcrs: readonly number[]): number {
  let mask = 0;
  for (const p of pcrs) {
    if (!Number.isInteger(p) || p < 0 || p >= TPM2_PCR_COUNT)
      throw new VaultError('usage', `invalid TPM2 PCR ${String(p)}`, `PCRs are numbers 0 to ${TPM2_PCR_COUNT - 1}, e.g. 7 (Secure Boot state)`);
    mask |= 1 << p;
  }
  return mask >>> 0;
}

function pcrList(mask: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < TPM2_PCR_COUNT; i++) if (mask & (1 << i)) out.push(i);
  return out;
}

function checkTcti(tcti: string | null | undefined): string | null {
  if (tcti === undefined || tcti === null) return null;
  if (tcti.length === 0 || Buffer.byteLength(tcti) > 255 || tcti.includes('\0'))
    throw new VaultError('usage', 'invalid TPM2 device (TCTI)', "give a tpm2-tss TCTI such as 'device:/dev/tpmrm0' or 'swtpm:host=localhost,port=2321'");
  return tcti;
}

function checkPin(pin: Uint8Array | undefined): Uint8Array | null {
  if (pin === undefined) return null;
  if (pin.length === 0 || pin.length > 1024) throw new VaultError('usage', 'the TPM2 PIN must be 1 to 1024 bytes');
  return pin;
}

/** tpm2-tss logs every failed command to stderr unless told otherwise; vault reports errors itself. */
function quietTss(): void {
  process.env['TSS2_LOG'] ??= 'all+none';
}

const HINT_DEVICE = 'check that the TPM is there (/dev/tpmrm0) or that the TPM2 device (TCTI) is right; the passphrase still unlocks';

/** The addon's rejection as a VaultError (other errors, e.g. bad arguments, pass through). */
function tpmError(e: unknown): unknown {
  const code = (e as { code?: unknown } | null)?.code;
  const msg = e instanceof Error ? e.message : String(e);
  switch (code) {
    case 'ERR_VAULT_TPM_UNAVAILABLE':
      return new VaultError('token-unavailable', msg, HINT_DEVICE, { cause: e });
    case 'ERR_VAULT_TPM_POLICY':
      return new VaultError('token-refused', msg, 'a PCR the token is bound to changed (firmware, boot loader, Secure Boot settings): unlock with the passphrase and enroll the TPM again', { cause: e });
    case 'ERR_VAULT_TPM_AUTH':
      return new VaultError('wrong-password', 'wrong TPM2 PIN', 'too many wrong PINs put the TPM in dictionary-attack lockout', { cause: e });
    case 'ERR_VAULT_TPM_LOCKOUT':
      return new VaultError('token-refused', msg, 'the TPM accepts no PIN until its lockout time has passed; the passphrase still unlocks', { cause: e });
    case 'ERR_VAULT_TPM_BLOB':
      return new VaultError('token-refused', msg, 'unlock with the passphrase and enroll the TPM again', { cause: e });
    case 'ERR_VAULT_TPM':
      return new VaultError('io', msg, undefined, { cause: e });
    default:
      return e;
  }
}

/** Seals `secret` (1 to 128 bytes; vault uses 32) to the TPM under the current values of `pcrs`
 *  (and `pin`). */
export async function tpm2Seal(secret: Uint8Array, opts: Tpm2SealOptions): Promise<Tpm2Sealed> {
  if (secret.length === 0 || secret.length > TPM2_MAX_SECRET) throw new RangeError(`a TPM2 secret is 1 to ${TPM2_MAX_SECRET} bytes`);
  const mask = pcrMask(opts.pcrs);
  const tcti = checkTcti(opts.tcti);
  const pin = checkPin(opts.pin);
  quietTss();
  try {
    const r = await nativeTpm2().tpm2SealAsync(secret, tcti, mask, pin);
    return { pcrBank: 'sha256', pcrs: pcrList(mask), pin: pin !== null, public: r.public, private: r.private, policyHash: r.policyHash };
  } catch (e) {
    throw tpmError(e);
  }
}

/** Unseals a secret sealed by tpm2Seal (or systemd-cryptenroll) on this TPM. Resolves to a Buffer
 *  the caller wipes. Throws VaultError: token-unavailable (no TPM at that TCTI), token-refused (the
 *  PCR policy does not hold, lockout, a damaged or foreign blob), wrong-password (wrong PIN), usage
 *  (a PIN-protected token without a PIN). */
export async function tpm2Unseal(sealed: Tpm2Sealed, opts: Tpm2Options = {}): Promise<Buffer> {
  if (sealed.pcrBank !== 'sha256')
    throw new VaultError('unsupported-feature', `TPM2 PCR bank '${String(sealed.pcrBank)}' is not supported`, 'vault seals to the sha256 bank');
  for (const [name, b] of [['public', sealed.public], ['private', sealed.private]] as const)
    if (b.length < 2 || b.length > MAX_BLOB) throw new VaultError('invalid-field', `the TPM2 token's ${name} blob has an impossible size (${b.length} bytes)`);
  const mask = pcrMask(sealed.pcrs);
  const tcti = checkTcti(opts.tcti);
  const pin = sealed.pin ? checkPin(opts.pin) : null;
  if (sealed.pin && pin === null) throw new VaultError('usage', 'this TPM2 token needs its PIN');
  quietTss();
  try {
    return await nativeTpm2().tpm2UnsealAsync(sealed.public, sealed.private, mask, tcti, pin);
  } catch (e) {
    throw tpmError(e);
  }
}
