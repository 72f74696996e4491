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
export type SessionValue<K extends string> = K extends keyof SessionData ? SessionData[K] : unknown

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

/** Throws unless `value` is storable; returns its JSON (what `set` compares to tell a change). */
export function checkValue (key: string, value: unknown): string {
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (err) {
    throw new FST_SESSION_VALUE_INVALID(key, (err as Error).message)
  }
  if (json === undefined) throw new FST_SESSION_VALUE_INVALID(key, `a ${typeof value} is not JSON`)
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
