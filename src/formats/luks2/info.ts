/**
 * `vault info` for LUKS2: what `cryptsetup luksDump` shows, minus salts and digests (which are not
 * secret but are noise here). Readable without the passphrase.
 */
import { printable } from '../luks/quote.js';
import type { FormatInfo } from '../types.js';
import type { Luks2Kdf, Luks2Keyslot } from './metadata.js';
import type { KdfJson, Luks2InfoJson } from '../info-json.js';
import type { Luks2Header } from './read.js';

const PRIORITY = ['ignore', 'normal', 'prefer'] as const;

/** A LUKS2 KDF in the shape every format's JSON uses (info-json.ts): argon2's time is its iterations, cpus its parallelism. */
function kdfJson(f: Luks2Kdf): KdfJson {
  if (f.type === 'pbkdf2') return { type: 'pbkdf2', hash: f.hash!, iterations: Number(f.iterations) };
  if (f.type === 'argon2i' || f.type === 'argon2id') return { type: f.type, memoryKiB: Number(f.memory), iterations: Number(f.time), parallelism: Number(f.cpus) };
  return { type: f.type };
}

function kdfText(k: Luks2Keyslot): string {
  const f = k.kdf;
  if (!f) return '-';
  if (f.type === 'pbkdf2') return `pbkdf2 ${f.hash}, ${f.iterations} iterations`;
  if (f.type === 'argon2i' || f.type === 'argon2id') return `${f.type}, time ${f.time}, memory ${f.memory} KiB, ${f.cpus} threads`;
  return f.type;
}

export function luks2Info(h: Luks2Header): FormatInfo {
  const { bin, metadata: m } = h;
  const fields: Array<[string, string]> = [
    ['format', 'LUKS2'],
    ['uuid', bin.uuid],
    ['label', bin.label || '(none)'],
    ['subsystem', bin.subsystem || '(none)'],
    ['header', `${bin.copy} copy, seqid ${bin.seqid}, metadata ${bin.hdrSize} bytes, keyslots area ${m.config.keyslotsSize} bytes`],
  ];
  for (const s of m.segments) {
    const c = s.crypt;
    const geometry = `offset ${s.offset}, size ${s.size === null ? 'dynamic' : s.size}`;
    fields.push([`segment ${s.id}`, c ? `${s.type} ${c.encryption}, sector ${c.sectorSize}, ${geometry}, iv_tweak ${c.ivTweak}` : `${s.type}, ${geometry}`]);
  }
  for (const k of m.keyslots)
    fields.push([`keyslot ${k.id}`, `${k.type}, ${k.keySize * 8}-bit key, priority ${PRIORITY[k.priority]}, ${kdfText(k)}, area ${k.area.encryption ?? k.area.type}`]);
  if (m.tokenCount) fields.push(['tokens', `${m.tokenCount} (not used by vault)`]);
  if (m.config.requirements.length) fields.push(['requirements', m.config.requirements.join(', ')]);
  const json: Luks2InfoJson = {
    format: 'luks2',
    uuid: bin.uuid,
    label: bin.label,
    subsystem: bin.subsystem,
    header: { copy: bin.copy, sequence: bin.seqid.toString(), metadataSize: bin.hdrSize, keyslotsSize: m.config.keyslotsSize.toString() },
    segments: m.segments.map((s) => ({
      id: s.id,
      type: s.type,
      offset: s.offset.toString(),
      size: s.size === null ? 'dynamic' : s.size.toString(),
      ...(s.crypt ? { encryption: s.crypt.encryption, sectorSize: s.crypt.sectorSize, ivTweak: s.crypt.ivTweak.toString() } : {}),
    })),
    keyslots: m.keyslots.map((k) => ({
      slot: k.id,
      type: k.type,
      keyBits: k.keySize * 8,
      priority: PRIORITY[k.priority]!,
      ...(k.kdf ? { kdf: kdfJson(k.kdf) } : {}),
      areaEncryption: k.area.encryption,
    })),
    tokens: m.tokenCount,
    requirements: m.config.requirements,
  };
  // Labels, UUIDs and type names are header text: no control characters reach the terminal.
  return { format: 'luks2', fields: fields.map(([k, v]) => [k, printable(v)]), json, warnings: h.warnings };
}
