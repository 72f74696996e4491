import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { FST_SESSION_USER_ID_INVALID } from '../errors.js'

// A session id is a public handle: 128 random bits, base64url. A session bound to a user
// carries the user's tag in front of it, `<tag>.<random>`, so that a store can find the user's
// slot (a Redis Cluster hash tag, an index) and check an owner from the id alone. The tag is a
// keyed hash of the user id (HMAC-SHA-256, truncated to 128 bits) under the store's owner key,
// 32 random bytes the store creates once and keeps: nobody without the key can tell whose id it
// is, nor link two users' ids. The cookie carries the id and a 256-bit secret; stores keep only
// the secret's hash.

const ID_BYTES = 16
const SECRET_BYTES = 32
export const SECRET_LENGTH = 43 // base64url of 32 bytes, no padding
const RANDOM_LENGTH = 22 // base64url of 16 bytes, no padding
const TAG_BYTES = 16
/** The length of a user tag: base64url of 16 bytes, no padding. */
export const TAG_LENGTH = 22
const OWNER_KEY_BYTES = 32
const MAX_USER_ID_BYTES = 256
const BASE64URL = /^[A-Za-z0-9_-]+$/
const LONE_SURROGATE = /\p{Cs}/u

/** A new owner key: 32 random bytes, which a store creates once and keeps (see `SessionStore.ownerKey`). */
export function newOwnerKey (): Buffer {
  return randomBytes(OWNER_KEY_BYTES)
}

/**
 * The user's tag under a store's owner key: base64url of HMAC-SHA-256(ownerKey, userId)
 * truncated to 128 bits, 22 characters. Holds none of `{ } * ? [ ] : .`; decodes to nothing.
 */
export function userTag (ownerKey: Uint8Array, userId: string): string {
  return createHmac('sha256', ownerKey).update(userId, 'utf8').digest().subarray(0, TAG_BYTES).toString('base64url')
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

/** A new session id: `<tag>.<random>` for a user's session (`tag` from `userTag`), `<random>` otherwise. */
export function newSessionId (tag: string | undefined): string {
  const random = randomBytes(ID_BYTES).toString('base64url')
  return tag === undefined ? random : tag + '.' + random
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

/** The user tag a session id carries, or `undefined` for an anonymous id (or no tag at all). */
export function tagOf (id: string): string | undefined {
  const dot = id.indexOf('.')
  return dot === -1 ? undefined : id.slice(0, dot)
}

/**
 * Whether `id` is a session of `userId` in the format before 0.2, `<base64url(userId)>.<random>`,
 * that a store may still hold: such a session is refused as unknown, never trusted.
 */
export function isLegacyId (id: string, userId: string): boolean {
  return tagOf(id) === Buffer.from(userId, 'utf8').toString('base64url')
}

/** True when `id` has the shape of an id this plugin issues; anything else is never looked up. */
export function isSessionId (id: string): boolean {
  const dot = id.indexOf('.')
  const random = dot === -1 ? id : id.slice(dot + 1)
  if (random.length !== RANDOM_LENGTH || !BASE64URL.test(random)) return false
  if (dot === -1) return true
  // Exactly a tag: an id of the format before 0.2 (`<base64url of the user id>.<random>`) has
  // another length but by chance, and is then refused as unknown by its store.
  return dot === TAG_LENGTH && BASE64URL.test(id.slice(0, dot))
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
