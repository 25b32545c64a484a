/**
 * The JSON Schemas of the CLI's JSON output (spec/<command>.schema.json, CLI_ABI.md), compiled by a
 * real validator (ajv, JSON Schema 2020-12, strict mode: a schema with a typo or an unknown keyword
 * fails to compile rather than accepting everything).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';

const SPEC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../spec');

export type JsonCommand = 'list' | 'info' | 'benchmark' | 'doctor';

const ajv = new Ajv2020({ strict: true, allErrors: true });

/** Whether `data` is valid for the command's schema, with ajv's errors when it is not. */
export function check(command: JsonCommand, data: unknown): { valid: boolean; errors: string } {
  const id = `https://vault.invalid/spec/${command}.schema.json`;
  const validate = ajv.getSchema(id) ?? ajv.compile(JSON.parse(readFileSync(path.join(SPEC, `${command}.schema.json`), 'utf8')) as object);
  const valid = validate(data) as boolean;
  return { valid, errors: ajv.errorsText(validate.errors, { separator: '\n' }) };
}

/** ajv's complaints about `data` (one per line), none when it is valid. */
export function schemaErrors(command: JsonCommand, data: unknown): string[] {
  const r = check(command, data);
  return r.valid ? [] : r.errors.split('\n');
}

/** Asserts that `stdout` (a command's --json output) parses and is valid; returns the parsed value. */
export function expectValid(command: JsonCommand, stdout: string): unknown {
  const data: unknown = JSON.parse(stdout);
  const r = check(command, data);
  expect(r.errors, `vault ${command} --json does not match spec/${command}.schema.json:\n${stdout}`).toBe('No errors');
  expect(r.valid).toBe(true);
  return data;
}
