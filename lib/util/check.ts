import { FST_SESSION_CONFIG_INVALID, FST_SESSION_OPTION_INVALID } from '../errors.js'

// Option checking shared by the plugin and every store: each check names the option in its
// message (`storeOptions.timeout`, `cookie.sameSite`), so a misconfigured app fails at
// register() with a message that says what to fix. Checks run once, never per request.

/** How long a store call may wait for its server before it fails with a 503, unless `timeout` says otherwise. */
export const DEFAULT_TIMEOUT_MS = 2000

export function fail (option: string, message: string): never {
  throw new FST_SESSION_OPTION_INVALID(option, message)
}

/**
 * The problems found in the options at register(), reported together, so that one restart fixes
 * them all: a check that fails is kept, and a fallback stands in for its value in the checks
 * that follow. Only the plugin's typed errors are kept; anything else is a bug, thrown at once.
 */
export class Problems {
  readonly #errors: Error[] = []

  /** What `check` returns, or `fallback` when it throws a typed error (kept). */
  check<T> (fallback: T, check: () => T): T {
    try {
      return check()
    } catch (err) {
      this.add(err)
      return fallback
    }
  }

  /** Keeps the problem of `option`, as `fail` would throw it. */
  fail (option: string, message: string): void {
    this.#errors.push(new FST_SESSION_OPTION_INVALID(option, message))
  }

  add (err: unknown): void {
    if (!String((err as { code?: unknown } | null)?.code).startsWith('FST_SESSION_')) throw err
    this.#errors.push(err as Error)
  }

  get found (): boolean {
    return this.#errors.length > 0
  }

  /**
   * `value` once nothing was found (the value the checks made, then defined); else throws what
   * was found: one problem as its own error, several in FST_SESSION_CONFIG_INVALID, whose
   * `errors` holds each.
   */
  result<T> (value: T | undefined): T {
    const errors = this.#errors
    if (errors.length === 0) return value as T
    if (errors.length === 1) throw errors[0]
    const err = new FST_SESSION_CONFIG_INVALID(errors.length, errors.map((e) => `- ${e.message}`).join('\n'))
    throw Object.assign(err, { errors: [...errors] })
  }
}

/** `value` as an options object; anything else fails naming `option`. */
export function optionsObject (option: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(option, 'must be an object')
  return value as Record<string, unknown>
}

/** Refuses any key of `options` not in `known`; `prefix` ('storeOptions.', 'cookie.') goes in front of the name. */
export function knownKeys (options: object, known: readonly string[], prefix = ''): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) fail(prefix + key, `unknown option; known: ${known.join(', ')}`)
  }
}

export function positiveInteger (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) fail(option, 'must be a positive integer')
  return value
}

export function nonNegativeInteger (option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(option, 'must be a non-negative integer')
  return value
}

export function boolean (option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(option, 'must be a boolean')
  return value
}

export function oneOf<T extends string> (option: string, value: unknown, allowed: readonly T[], fallback: T): T
export function oneOf<T extends string> (option: string, value: unknown, allowed: readonly T[], fallback: undefined): T | undefined
export function oneOf<T extends string> (option: string, value: unknown, allowed: readonly T[], fallback: T | undefined): T | undefined {
  if (value === undefined) return fallback
  if (!allowed.includes(value as T)) fail(option, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`)
  return value as T
}

export function nonEmptyString (option: string, value: unknown): string | undefined {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) fail(option, 'must be a non-empty string')
  return value
}

/** A key prefix for a store whose keys carry a `{hash tag}`: no braces of its own. */
export function keyPrefix (option: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || /[{}]/.test(value)) fail(option, 'must be a string without { or }')
  return value
}
