import { hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { FST_SESSION_USER_ID_INVALID } from '../errors.js'

// A session id is a public handle: 128 random bits, base64url. A session bound to a user
// carries the user's key in front of it, `<userKey>.<random>`, so that a store can find
// the user's slot (a Redis Cluster hash tag, an index) from the id alone, in one round trip.
// The cookie carries the id and a 256-bit secret; stores keep only the secret's hash.

const ID_BYTES = 16
const SECRET_BYTES = 32
export const SECRET_LENGTH = 43 // base64url of 32 bytes, no padding
const RANDOM_LENGTH = 22 // base64url of 16 bytes, no padding
const MAX_USER_ID_BYTES = 256
const BASE64URL = /^[A-Za-z0-9_-]+$/
const LONE_SURROGATE = /\p{Cs}/u

/** The user key: base64url of the UTF-8 user id. Holds none of `{ } * ? [ ] : .`. */
export function userKey (userId: string): string {
  return Buffer.from(userId, 'utf8').toString('base64url')
}

export function normalizeUserId (userId: unknown): string {
  if (typeof userId === 'number' && Number.isSafeInteger(userId)) userId = String(userId)
  if (typeof userId !== 'string' || userId.length === 0) {
    throw new FST_SESSION_USER_ID_INVALID('expected a non-empty string or a safe integer')
  }
  // A lone surrogate would be encoded as U+FFFD, so two user ids would share one key.
  if (LONE_SURROGATE.test(userId)) throw new FST_SESSION_USER_ID_INVALID('not well-formed UTF-16 (a lone surrogate)')
  if (Buffer.byteLength(userId, 'utf8') > MAX_USER_ID_BYTES) {
    throw new FST_SESSION_USER_ID_INVALID(`longer than ${MAX_USER_ID_BYTES} bytes`)
  }
  return userId
}

export function newSessionId (userId: string | undefined): string {
  const random = randomBytes(ID_BYTES).toString('base64url')
  return userId === undefined ? random : userKey(userId) + '.' + random
}

export function newSecret (): string {
  return randomBytes(SECRET_BYTES).toString('base64url')
}

export function hashSecret (secret: string): string {
  // The one-shot crypto.hash costs a third of createHash().update().digest() on a short input.
  return hash('sha256', secret, 'base64url')
}

/** Constant-time comparison of two secret hashes. */
export function secretMatches (expectedHash: string, secret: string): boolean {
  const actual = Buffer.from(hashSecret(secret))
  const expected = Buffer.from(expectedHash)
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

/** The user key a session id carries, or `undefined` for an anonymous id. */
export function ownerKeyOf (id: string): string | undefined {
  const dot = id.indexOf('.')
  return dot === -1 ? undefined : id.slice(0, dot)
}

/** The user a session id names (decoded from its key), or `undefined` for an anonymous id. */
export function userIdOf (id: string): string | undefined {
  const owner = ownerKeyOf(id)
  return owner === undefined ? undefined : Buffer.from(owner, 'base64url').toString('utf8')
}

/** True when `id` has the shape of an id this plugin issues; anything else is never looked up. */
export function isSessionId (id: string): boolean {
  const dot = id.indexOf('.')
  const random = dot === -1 ? id : id.slice(dot + 1)
  if (random.length !== RANDOM_LENGTH || !BASE64URL.test(random)) return false
  if (dot === -1) return true
  const key = id.slice(0, dot)
  return key.length > 0 && key.length <= 344 && BASE64URL.test(key)
}

/** Splits a cookie token `<id>.<secret>`; `undefined` when it has not that shape. */
export function parseToken (token: string): { id: string, secret: string } | undefined {
  const dot = token.lastIndexOf('.')
  if (dot === -1 || token.length - dot - 1 !== SECRET_LENGTH) return undefined
  const id = token.slice(0, dot)
  const secret = token.slice(dot + 1)
  if (!BASE64URL.test(secret) || !isSessionId(id)) return undefined
  return { id, secret }
}
