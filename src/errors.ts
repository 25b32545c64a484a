/**
 * The one error type that core modules throw. Each carries a stable `code`; the CLI maps codes to
 * exit codes in one place (src/cli/exit-codes.ts) and prints `message` (one line) plus `hint`.
 * Messages never contain secrets.
 */
export type ErrorCode =
  // usage and input
  | 'usage'
  | 'bad-config'
  // container format (untrusted bytes)
  | 'not-a-container'
  | 'truncated'
  | 'unsupported-version'
  | 'unsupported-feature'
  | 'checksum-mismatch'
  | 'invalid-field'
  | 'header-tampered'
  | 'headers-damaged'
  | 'copies-disagree'
  | 'journal-damaged'
  | 'kdf-bounds'
  // keys
  | 'wrong-password'
  | 'no-keyslot'
  // hardware tokens (TPM2, FIDO2): the token's device is not there or stopped answering; it refuses
  // to give the secret (its policy no longer holds, locked out, another authenticator, user
  // presence not given, a damaged or foreign blob); it wants its PIN
  | 'token-unavailable'
  | 'token-refused'
  | 'token-pin-required'
  // runtime
  | 'busy'
  | 'already-mounted'
  | 'not-mounted'
  | 'privilege'
  | 'missing-component'
  | 'io'
  | 'mount-failed'
  | 'exists'
  // refused for safety (issue 13): a path someone else can change, another user's volume, a
  // filesystem type that is not allowed
  | 'unsafe'
  | 'not-owner'
  | 'interrupted'
  | 'internal';

export class VaultError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VaultError';
    this.code = code;
    this.hint = hint;
  }
}

export function isVaultError(e: unknown, code?: ErrorCode): e is VaultError {
  return e instanceof VaultError && (code === undefined || e.code === code);
}
