/**
 * The software FIDO2 authenticator the system tests use (test/support/fido2-authenticator) against the
 * CTAP specification's example messages: its CBOR reads and re-encodes them byte for byte, and its
 * makeCredential / getAssertion / hmac-secret answers have their layout (test_spec_vectors.py).
 */
import { expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'support', 'fido2-authenticator');

it('the software authenticator passes its CTAP spec-example checks', () => {
  const r = spawnSync('python3', ['-m', 'unittest', '-v', 'test_spec_vectors'], {
    cwd: DIR,
    encoding: 'utf8',
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  expect(r.stderr).toMatch(/Ran 5 tests/);
  expect(r.stderr).toMatch(/\nOK\n/);
  expect(r.status).toBe(0);
});
