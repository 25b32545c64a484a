/**
 * The passphrase strength estimate, run as a short-lived child of the CLI (strength.ts): zxcvbn needs
 * the passphrase as a JS string, which cannot be wiped, so the string lives only in this process,
 * which exits at once and gives its memory back to the kernel. Hardened like the CLI (no core dump,
 * no ptrace by non-root). Reads the passphrase on stdin; writes only the score and zxcvbn's fixed
 * feedback text, as one line of JSON, on stdout.
 */
import { readFileSync } from 'node:fs';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as en from '@zxcvbn-ts/language-en';
import { hardenProcess } from '../crypto/process-hardening.js';

hardenProcess();
// Every list but the 89,000 surnames: building a list's index is most of this process's time, and
// surnames are the list a passphrase least often leans on (first names, words and Wikipedia stay).
const { 'lastnames-en': _surnames, ...english } = en.dictionary;
const zxcvbn = new ZxcvbnFactory({
  dictionary: { ...common.dictionary, ...english },
  graphs: common.adjacencyGraphs,
  translations: en.translations,
});
const { score, feedback } = zxcvbn.check(readFileSync(0).toString('utf8'));
process.stdout.write(JSON.stringify({ score, warning: feedback.warning, suggestions: feedback.suggestions }) + '\n');
