/** A value that can be written as a Lua literal. */
export type LuaValue = string | number | boolean | LuaValue[] | { [key: string]: LuaValue | undefined };

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Writes a value as a Lua literal (for the config table in nginx.conf). Strings must be
 * printable ASCII: everything we put there is a validated URL, path, name or email, and
 * refusing the rest keeps quoting trivially correct.
 */
export function toLua(value: LuaValue, indent = ''): string {
  if (typeof value === 'string') {
    if (!/^[\x20-\x7e]*$/.test(value)) throw new Error(`toLua: only printable ASCII strings are allowed, got ${JSON.stringify(value)}`);
    return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`toLua: numbers must be finite, got ${value}`);
    return String(value);
  }
  if (typeof value === 'boolean') return String(value);
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '{}';
    return `{\n${value.map((v) => `${inner}${toLua(v, inner)},`).join('\n')}\n${indent}}`;
  }
  const entries = Object.entries(value).filter(([, v]) => v !== undefined) as [string, LuaValue][];
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => {
    const key = IDENTIFIER.test(k) ? k : `[${toLua(k)}]`;
    return `${inner}${key} = ${toLua(v, inner)},`;
  }).join('\n')}\n${indent}}`;
}
