import { randomBytes, timingSafeEqual } from 'node:crypto'
import { dbscKey, type DbscKey } from '../crypto/dbsc-proof.js'

// What a device-bound session (DBSC) keeps with the stored session, in the one opaque field
// `StoredSession.dbsc` (stores keep and compare-and-set the string; only this file reads it):
// the browser's public key once it registered one, the hash and issue time of its current
// cookie secret and of the previous one, and the challenges it was given and has not used.
// A session that was never offered binding has no field at all and pays nothing.
//
//   {"v":1,"p":[["<challenge>",<until>]]}                                  offered at login
//   {"v":1,"k":{<jwk>},"c":[["<hash>",<at>],["<hash>",<at>]],"p":[...]}    bound
//
// Times are milliseconds since the epoch on the plugin's clock. Only the canonical form is
// read: anything else (another version, a malformed or oversized value) is refused, and the
// session with it does not authenticate, as a session whose settings cannot be read.

export interface Credential {
  /** SHA-256 of the cookie secret, base64url (as `StoredSession.secretHash`). */
  readonly hash: string
  /** When it was issued. */
  readonly at: number
}

export interface Challenge {
  readonly value: string
  /** Refused from then on. */
  readonly until: number
}

export interface DbscState {
  /** The browser's public key; undefined while the session is offered binding and not bound yet. */
  readonly key: DbscKey | undefined
  /** Newest first, at most two: the current cookie's and the previous one's. None until bound. */
  readonly credentials: readonly Credential[]
  /** Oldest first, at most MAX_CHALLENGES. */
  readonly challenges: readonly Challenge[]
}

/** Pending challenges kept per session; a new one beyond this drops the oldest. */
export const MAX_CHALLENGES = 4
const MAX_ENCODED_LENGTH = 4096
const CHALLENGE_BYTES = 16
const CHALLENGE = /^[A-Za-z0-9_-]{22}$/
const HASH = /^[A-Za-z0-9_-]{43}$/

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** A fresh challenge: 128 random bits, base64url, safe inside a structured header's string. */
export function newChallenge (): string {
  return randomBytes(CHALLENGE_BYTES).toString('base64url')
}

export function encodeDbsc (state: DbscState): string {
  const challenges = state.challenges.map((c) => [c.value, c.until])
  if (state.key === undefined) return JSON.stringify({ v: 1, p: challenges })
  return JSON.stringify({ v: 1, k: state.key, c: state.credentials.map((c) => [c.hash, c.at]), p: challenges })
}

function pairs<T> (value: unknown, max: number, first: RegExp, make: (text: string, time: number) => T): T[] | undefined {
  if (!Array.isArray(value) || value.length > max) return undefined
  const out: T[] = []
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || !first.test(pair[0]) || !isTime(pair[1])) return undefined
    out.push(make(pair[0], pair[1]))
  }
  return out
}

/** The state a store kept, or undefined when it is not what `encodeDbsc` writes. */
export function decodeDbsc (encoded: string): DbscState | undefined {
  if (encoded.length > MAX_ENCODED_LENGTH) return undefined
  let raw: { v?: unknown, k?: unknown, c?: unknown, p?: unknown }
  try {
    raw = JSON.parse(encoded)
  } catch {
    return undefined
  }
  if (raw === null || typeof raw !== 'object' || raw.v !== 1) return undefined
  const challenges = pairs(raw.p, MAX_CHALLENGES, CHALLENGE, (value, until) => ({ value, until }))
  if (challenges === undefined) return undefined
  let state: DbscState
  if (raw.k === undefined && raw.c === undefined) {
    state = { key: undefined, credentials: [], challenges }
  } else {
    const key = dbscKey(raw.k)
    const credentials = pairs(raw.c, 2, HASH, (hash, at) => ({ hash, at }))
    if (key === undefined || credentials === undefined || credentials.length === 0) return undefined
    state = { key, credentials, challenges }
  }
  // One spelling per state: no extra members, no reordering.
  return encodeDbsc(state) === encoded ? state : undefined
}

/** Whether a stored field says the session is bound to a key (what records show as `deviceBound`). */
export function isBound (encoded: string | undefined): boolean {
  return encoded !== undefined && decodeDbsc(encoded)?.key !== undefined
}

/** Constant-time equality of two challenges. */
function same (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** The pending challenges without those past their time and without `used`. */
export function pending (state: DbscState, now: number, used?: string): Challenge[] {
  return state.challenges.filter((c) => c.until > now && (used === undefined || !same(c.value, used)))
}

/** Whether `value` is a challenge the session was given, has not used, and that is still in time. */
export function isPending (state: DbscState, value: string, now: number): boolean {
  return state.challenges.some((c) => c.until > now && same(c.value, value))
}

/** `challenges` with `added` at the end, the oldest dropped beyond MAX_CHALLENGES. */
export function withChallenge (challenges: readonly Challenge[], added: Challenge): Challenge[] {
  return [...challenges, added].slice(-MAX_CHALLENGES)
}
