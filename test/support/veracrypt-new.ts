/**
 * Making VeraCrypt volumes in-process the way `vault create --type veracrypt --fs none` does, and
 * reopening them with vault's own reader: for the unit tests of issue 18.
 */
import { closeSync } from 'node:fs';
import path from 'node:path';
import { AES_XTS, type CipherChain } from '../../src/crypto/cipher-chain.js';
import { writeNewVeraCrypt } from '../../src/formats/veracrypt/create.js';
import { creationKdf } from '../../src/formats/veracrypt/create-kdf.js';
import { veracryptAdapter } from '../../src/formats/veracrypt/adapter.js';
import { unlockVolume } from '../../src/formats/index.js';
import type { Prf } from '../../src/formats/veracrypt/prf.js';
import { finishContainer, openTarget } from '../../src/volume/create.js';
import { closeContainer, openContainer } from '../../src/volume/container-file.js';

export interface MakeOptions {
  size: number;
  hash: string;
  pim: number;
  password: Buffer;
  hidden?: { size: number; password: Buffer };
  quick: boolean;
  /** AES when absent. */
  chain?: CipherChain;
}

/** Makes `dir/name`; returns its path. */
export async function makeVeraCrypt(dir: string, name: string, o: MakeOptions): Promise<string> {
  const t = openTarget(path.join(dir, name));
  try {
    const made = await writeNewVeraCrypt(t, {
      size: o.size, kdf: creationKdf(o.hash, o.pim), chain: o.chain ?? AES_XTS, password: o.password, quick: o.quick,
      ...(o.hidden ? { hidden: o.hidden } : {}),
    });
    made.outer.key.dispose();
    made.hidden?.key.dispose();
    finishContainer(t, made, false);
    closeSync(made.fd);
  } finally {
    closeSync(t.dir.fd);
  }
  return path.join(dir, name);
}

/** Opens `file` read-only with vault's VeraCrypt adapter (only `hash`'s PRF, if given); the key is disposed, the rest returned. */
export async function vaultOpens(file: string, password: string, o: { pim: number; hidden?: boolean; keyfiles?: Buffer[]; hash?: Prf }) {
  const c = openContainer(file, true);
  try {
    const opts = { readOnly: true, pim: o.pim, hidden: !!o.hidden, ...(o.hash ? { hash: o.hash } : {}) };
    const v = await unlockVolume(veracryptAdapter, c, { passphrase: Buffer.from(password), keyfiles: o.keyfiles ?? [] }, opts);
    v.key.dispose();
    return v;
  } finally {
    closeContainer(c);
  }
}
