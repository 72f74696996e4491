import sjson from 'secure-json-parse'
import { FST_SESSION_KEY_INVALID, FST_SESSION_VALUE_INVALID } from '../errors.js'

// What a session may hold: the augmentable SessionData type, and the checks that keep every
// stored key and value storable as JSON by every store.

/**
 * The shape of the data kept in a session. Augment it to type `get` and `set`:
 *
 * ```ts
 * declare module 'fastify-user-sessions' {
 *   interface SessionData { name: string, cart: string[] }
 * }
 * ```
 * Until it is augmented, any string key is accepted and values are `unknown`.
 */
export interface SessionData {}

export type SessionKey = [keyof SessionData] extends [never] ? string : Extract<keyof SessionData, string>
/** The type of a key's value: `SessionData[K]`, less what `set()` refuses (a `Date` field is `never`, so setting one fails to compile). */
export type SessionValue<K extends string> = K extends keyof SessionData ? Storable<SessionData[K]> : unknown

/** Values that do not come back equal after a store round trip: `set()` refuses them at any depth. */
type Unstorable = Date | RegExp | Map<unknown, unknown> | Set<unknown> | WeakMap<object, unknown> | WeakSet<object> |
  Promise<unknown> | ArrayBufferView | ArrayBuffer | bigint | symbol | ((...args: never[]) => unknown)

/**
 * `T` with what cannot be stored taken out, at any depth: JSON values (plain objects, arrays,
 * strings, finite numbers, booleans, null) stay, anything in `Unstorable` becomes `never`.
 */
export type Storable<T> = 0 extends (1 & T) ? T // any stays any
  : T extends string | number | boolean | null | undefined ? T
    : T extends Unstorable ? never
      : T extends ReadonlyArray<infer U> ? (T extends unknown[] ? Array<Storable<U>> : ReadonlyArray<Storable<U>>)
        : T extends object ? { [P in keyof T]: Storable<T[P]> }
          : never

/** `request.session`'s data as properties: the keys of `SessionData` that are not members of the session, or any string key until it is augmented. */
export type SessionProperties<Members> = [keyof SessionData] extends [never]
  ? { [key: string]: unknown }
  : { -readonly [K in Exclude<keyof SessionData, keyof Members>]?: Storable<SessionData[K]> }

const MAX_KEY_LENGTH = 256
const LONE_SURROGATE = /\p{Cs}/u
const REFUSE_POISON = { protoAction: 'error', constructorAction: 'error' } as const

export function emptyData (): Record<string, unknown> {
  return Object.create(null) as Record<string, unknown>
}

export function checkKey (key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new FST_SESSION_KEY_INVALID(`expected a string of 1 to ${MAX_KEY_LENGTH} characters`)
  }
  if (key === '__proto__') throw new FST_SESSION_KEY_INVALID('"__proto__" is reserved')
  // Stores encode keys as UTF-8, where a lone surrogate becomes U+FFFD: two keys would collide.
  if (LONE_SURROGATE.test(key)) throw new FST_SESSION_KEY_INVALID('not well-formed UTF-16 (a lone surrogate)')
}

/**
 * Throws unless `value` comes back equal (type and JSON) when read on a later request; returns its
 * JSON (what `set` compares to tell a change). Refused at any depth, naming the path
 * (`when`, `cart.items[2].at`): Date, Map, Set, RegExp and other class instances, NaN, ±Infinity,
 * functions, symbols, BigInt, undefined or a hole in an array, a circular reference.
 */
export function checkValue (key: string, value: unknown): string {
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (err) {
    let found: string | undefined
    try {
      found = problemAt(value, key, [])
    } catch {} // a getter that throws: JSON.stringify's error says why
    throw invalid(found ?? `${key}\0${(err as Error).message}`)
  }
  if (json === undefined) throw new FST_SESSION_VALUE_INVALID(key, problemOf(value) as string)
  // JSON.stringify succeeded: no cycle, so the walk ends. A primitive needs no walk.
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new FST_SESSION_VALUE_INVALID(key, problemOf(value) as string)
  } else if (typeof value === 'object' && value !== null) {
    const problem = problemAt(value, key, [])
    if (problem !== undefined) throw invalid(problem)
  }
  // Stored data are read back with prototype-poisoning protection, which drops `__proto__` and
  // `constructor.prototype` keys: refuse them now rather than lose them silently on the next read.
  if (key === 'constructor' || json.includes('"__proto__"') || json.includes('"constructor"')) {
    try {
      sjson.parse(`{${JSON.stringify(key)}:${json}}`, null, REFUSE_POISON)
    } catch {
      throw new FST_SESSION_VALUE_INVALID(key, 'a __proto__ or constructor.prototype key cannot be stored')
    }
  }
  return json
}

function invalid (found: string): Error {
  const at = found.indexOf('\0')
  return new FST_SESSION_VALUE_INVALID(found.slice(0, at), found.slice(at + 1))
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

/** Why a value that is no plain object or array would not come back equal; undefined when it would. */
function problemOf (value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined
    case 'number':
      return Number.isFinite(value) ? undefined : `${value} would come back as null`
    case 'bigint':
      return 'a BigInt is not JSON; store it as a string'
    case 'function':
      return 'a function is not JSON'
    case 'symbol':
    case 'undefined':
      return `a ${typeof value} is not JSON`
    default:
  }
  if (value === null) return undefined
  if (value instanceof Date) return 'a Date would come back as a string; store date.getTime() or date.toISOString()'
  if (value instanceof Map) return 'a Map would come back as {}; store Object.fromEntries(map) or [...map]'
  if (value instanceof Set) return 'a Set would come back as {}; store [...set]'
  if (value instanceof RegExp) return 'a RegExp would come back as {}; store its source'
  const proto = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null || (proto === Array.prototype && Array.isArray(value))) return undefined
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name
  return `an instance of ${typeof name === 'string' && name !== '' ? name : 'a class'} would come back as a plain object; store plain objects and arrays only`
}

/**
 * The first value under `value` (at `path`) that would not come back equal, as `path\0reason`;
 * `ancestors` catches a cycle (only reached when JSON.stringify threw).
 */
function problemAt (value: unknown, path: string, ancestors: unknown[]): string | undefined {
  const problem = problemOf(value)
  if (problem !== undefined) return path + '\0' + problem
  if (typeof value !== 'object' || value === null) return undefined
  if (ancestors.includes(value)) return path + '\0a circular reference is not JSON'
  ancestors.push(value)
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) return `${path}[${i}]\0a hole in an array would come back as null`
        const item: unknown = value[i]
        if (item === undefined) return `${path}[${i}]\0undefined in an array would come back as null`
        const found = problemAt(item, `${path}[${i}]`, ancestors)
        if (found !== undefined) return found
      }
      return undefined
    }
    for (const k in value) {
      const item = (value as Record<string, unknown>)[k]
      // An undefined property is left out, as JSON leaves it out: reading it gives undefined again.
      if (item === undefined) continue
      const found = problemAt(item, IDENTIFIER.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`, ancestors)
      if (found !== undefined) return found
    }
    return undefined
  } finally {
    ancestors.pop()
  }
}

/**
 * A copy of `data` as a null-prototype object, each key and value passing the checks of
 * `session.set` (an `undefined` value is no key, as `set(key, undefined)` deletes). Values are
 * copied through JSON, so that what is returned is what a store reads back.
 */
export function checkData (data: object): Record<string, unknown> {
  const copy = emptyData()
  for (const [key, value] of Object.entries(data)) {
    checkKey(key)
    if (value === undefined) continue
    checkValue(key, value)
    copy[key] = JSON.parse(JSON.stringify(value))
  }
  return copy
}
