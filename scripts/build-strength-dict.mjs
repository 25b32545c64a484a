#!/usr/bin/env node
// Writes dist/src/cli/strength-dict.json (part of `npm run build`): the zxcvbn dictionaries,
// keyboard graphs and English feedback texts the passphrase strength check uses
// (src/cli/strength-child.ts), as one JSON document. The child parses it with JSON.parse in ~50 ms
// where importing the two language packages took ~190 ms (V8 compiles their large array literals
// as code), on every `vault create`, `passwd` and `keyslot add`.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as common from '@zxcvbn-ts/language-common';
import * as en from '@zxcvbn-ts/language-en';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Every list but the 89,000 surnames: building a list's index is most of the child's time, and
// surnames are the list a passphrase least often leans on (first names, words and Wikipedia stay).
const { 'lastnames-en': _surnames, ...english } = en.dictionary;
const out = path.join(root, 'dist', 'src', 'cli', 'strength-dict.json');
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ dictionary: { ...common.dictionary, ...english }, graphs: common.adjacencyGraphs, translations: en.translations }));
