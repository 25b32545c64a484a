/**
 * The passphrase strength estimate, run as a short-lived child of the CLI (strength.ts): zxcvbn needs
 * the passphrase as a JS string, which cannot be wiped, so the string lives only in this process,
 * which exits at once and gives its memory back to the kernel. Hardened like the CLI (no core dump,
 * no ptrace by non-root). Reads the passphrase on stdin; writes only the score and zxcvbn's fixed
 * feedback text, as one line of JSON, on stdout.
 */
import { readFileSync } from 'node:fs';
import { ZxcvbnFactory, type OptionsType } from '@zxcvbn-ts/core';
import { hardenProcess } from '../crypto/process-hardening.js';

hardenProcess();
// The dictionaries, graphs and texts of @zxcvbn-ts/language-common and -en (surnames left out),
// made into one JSON file by `npm run build` (scripts/build-strength-dict.mjs): JSON.parse of it
// takes ~50 ms where importing the packages took ~190.
const zxcvbn = new ZxcvbnFactory(JSON.parse(readFileSync(new URL('./strength-dict.json', import.meta.url), 'utf8')) as OptionsType);
const { score, feedback } = zxcvbn.check(readFileSync(0).toString('utf8'));
process.stdout.write(JSON.stringify({ score, warning: feedback.warning, suggestions: feedback.suggestions }) + '\n');
