import sjson from 'secure-json-parse'

const options = { protoAction: 'remove', constructorAction: 'remove' } as const

/**
 * Parses stored session data with prototype-poisoning protection: `__proto__` and
 * `constructor.prototype` keys are dropped, never merged into an object's prototype.
 * Anything but a JSON object is refused.
 */
export function parseData (text: string): Record<string, unknown> {
  const value = parseValue(text)
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError('stored session data is not a JSON object')
  }
  return value as Record<string, unknown>
}

/** Parses one stored JSON value with the same protection. */
export function parseValue (text: string): unknown {
  // Text that cannot spell a poisoning key, even with \u escapes, is parsed as it is: the
  // common case, three times cheaper than the scan.
  if (text.indexOf('__proto__') === -1 && text.indexOf('constructor') === -1 && text.indexOf('\\u') === -1) {
    return JSON.parse(text)
  }
  return sjson.parse(text, null, options)
}
