// A record's fields as maps without a prototype: a field may be named
// "toString" or "__proto__", and must read and write like any other name.

/** A copy of `from` (or an empty map) that no field name can turn into
 * something else. */
export function fieldMap<T>(from?: Record<string, T>): Record<string, T> {
  const map: Record<string, T> = Object.create(null);
  if (from) for (const [name, value] of Object.entries(from)) map[name] = value;
  return map;
}

/** The value of field `name` in `fields`, if it has one of its own. */
export function fieldOf<T>(fields: Record<string, T>, name: string): T | undefined {
  return Object.hasOwn(fields, name) ? fields[name] : undefined;
}
