/**
 * Checks a value against the JSON Schema keywords spec/doctor.schema.json uses (type, const, enum,
 * required, properties, additionalProperties: false, items, minimum) and returns what differs.
 * A stopgap until the project's schema validator (ajv) is on main; it rejects keywords it does not
 * know, so a schema cannot silently outgrow it.
 */
type Schema = Record<string, unknown>;

const KNOWN = new Set(['$schema', '$id', 'title', 'description', 'type', 'const', 'enum', 'required', 'properties', 'additionalProperties', 'items', 'minimum']);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

export function checkShape(schema: Schema, value: unknown, at = '$'): string[] {
  const unknown = Object.keys(schema).filter((k) => !KNOWN.has(k));
  if (unknown.length > 0) throw new Error(`${at}: schema keywords this check does not know: ${unknown.join(', ')}`);
  const t = typeOf(value);
  if (schema.type !== undefined) {
    const types = ([] as string[]).concat(schema.type as string | string[]);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return [`${at}: ${t}, expected ${types.join(' or ')}`];
  }
  if ('const' in schema && value !== schema.const) return [`${at}: ${JSON.stringify(value)}, expected ${JSON.stringify(schema.const)}`];
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) return [`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`];
  if (typeof schema.minimum === 'number' && typeof value === 'number' && value < schema.minimum) return [`${at}: ${value} < ${schema.minimum}`];
  const errors: string[] = [];
  if (t === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const k of (schema.required ?? []) as string[]) if (!(k in obj)) errors.push(`${at}: no ${k}`);
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) errors.push(...checkShape(props[k], v, `${at}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${at}: unexpected ${k}`);
    }
  }
  if (t === 'array' && schema.items) (value as unknown[]).forEach((v, i) => errors.push(...checkShape(schema.items as Schema, v, `${at}[${i}]`)));
  return errors;
}
