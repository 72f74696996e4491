import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { SessionCore } from './core.js'
import { hashSecret, isSessionId, newSecret, secretMatches } from '../crypto/ids.js'
import { verifyRefresh, verifyRegistration, type DbscKey } from '../crypto/dbsc-proof.js'
import {
  decodeDbsc, encodeDbsc, isPending, newChallenge, pending, withChallenge, type Challenge, type DbscState
} from './dbsc-state.js'
import type { NormalizedDbscOptions } from '../options.js'
import type { Policy } from './policy.js'
import { emptyData } from '../stores/data.js'
import { fail } from '../util/check.js'
import type { SessionStore, StoredSession } from '../stores/store.js'

// Device Bound Session Credentials on a server-side store (docs/device-bound-sessions.md).
//
// - A login over https, for a browser (a persistent cookie), stores one registration challenge
//   with the new session (no write of its own) and offers it in `Secure-Session-Registration`.
// - Registration: the browser proves it holds a new key by signing that challenge; the key is
//   kept with the session and the cookie gets a NEW secret. From then on the session's cookie
//   authenticates only with the secret of its current or previous credential, issued less than
//   `cookieTtl` ago, whatever the cookie's Max-Age: a copy taken out of the browser dies by then.
// - Refresh: the browser signs a challenge with its key and gets a new secret. Every change is a
//   compare-and-set of the session's dbsc field, so a challenge is used once, by one instance,
//   and a refresh never undoes another. A session that ended ends the browser's DBSC session.

/** How long a challenge given at login or with a 403 stays usable. */
export const CHALLENGE_TTL_MS = 120_000
/** Compare-and-set attempts before a change racing others gives up. */
const MAX_ATTEMPTS = 3
/** A route prefix that goes into a structured header's string as it is. */
const PREFIX = /^[A-Za-z0-9/._~-]*$/

/** True when a request to `path` carries a cookie of path `cookiePath` (RFC 6265 path-match). */
function pathMatches (cookiePath: string, path: string): boolean {
  return path === cookiePath || (path.startsWith(cookiePath) && (cookiePath.endsWith('/') || path[cookiePath.length] === '/'))
}

/** What the registration or a refresh gives the browser: a new cookie secret, and a challenge for the next refresh. */
export interface Rebound {
  readonly state: StoredSession
  readonly secret: string
  /** When the new cookie stops authenticating (or the session ends, if sooner): its Max-Age. */
  readonly cookieExpiresAt: number
  readonly challenge: string
}

export type RegisterOutcome =
  | { readonly kind: 'bound', readonly bound: Rebound }
  | { readonly kind: 'refused', readonly status: 400 | 401 | 403, readonly reason: string }
  | { readonly kind: 'unavailable', readonly error: Error }

export type RefreshOutcome =
  | { readonly kind: 'refreshed', readonly bound: Rebound }
  /** 403: sign this challenge (the request had no proof, or one of a challenge not pending). */
  | { readonly kind: 'challenge', readonly id: string, readonly challenge: string }
  /** The session ended (revoked, expired, deleted) or was never bound: the browser's DBSC session ends. */
  | { readonly kind: 'end', readonly reason: string }
  | { readonly kind: 'refused', readonly status: 400, readonly reason: string }
  | { readonly kind: 'unavailable', readonly error: Error }

/** What the server backend's `load` gives (a LoadResult), as far as registration looks at it. */
type Load = (log: FastifyBaseLogger, raw: string) => Promise<
  | { readonly kind: 'loaded', readonly state: StoredSession }
  | { readonly kind: 'none' | 'rejected' }
  | { readonly kind: 'unavailable', readonly error: Error }>

function refused<S extends 400 | 401 | 403> (status: S, reason: string): { kind: 'refused', status: S, reason: string } {
  return { kind: 'refused', status, reason }
}

export class DeviceBinding {
  readonly options: NormalizedDbscOptions
  /** The routes' paths as the browser asks for them: the options' under the prefix the plugin was registered with. */
  readonly registrationUrl: string
  readonly refreshUrl: string
  readonly #core: SessionCore
  readonly #store: SessionStore
  readonly #load: Load
  readonly #cookieTtlMs: number
  /** The registration header up to its challenge. */
  readonly #offered: string

  /** `load`: how the server backend reads a session cookie. */
  constructor (core: SessionCore, options: NormalizedDbscOptions, store: SessionStore, load: Load, prefix: string) {
    if (!PREFIX.test(prefix)) fail('dbsc', `the plugin's route prefix (${prefix}) must hold letters, digits and / . _ ~ - only`)
    this.#core = core
    this.options = options
    this.registrationUrl = prefix + options.registrationPath
    this.refreshUrl = prefix + options.refreshPath
    // The registration request must carry the session cookie it binds.
    const cookiePath = core.options.cookie.path
    if (!pathMatches(cookiePath, this.registrationUrl)) fail('dbsc.registrationPath', `must be within the cookie's path (${cookiePath}), under the plugin's prefix`)
    this.#store = store
    this.#load = load
    this.#cookieTtlMs = options.cookieTtl * 1000
    // A structured-field list item: an inner list of tokens with string parameters (RFC 9651);
    // the path and the challenge hold no character that needs escaping there.
    this.#offered = `(${options.algorithms.join(' ')});path="${this.registrationUrl}";challenge=`
  }

  /**
   * The encoded field of a session `login()` creates with a registration challenge, when the
   * request came over https and the session travels in a cookie that outlives the browser
   * (the browser keeps its DBSC sessions across restarts, so one that dies with it is not
   * bound); else undefined. Costs no write: the field goes into the session's insert.
   */
  offer (request: FastifyRequest, policy: Policy, now: number): { field: string, registration: string } | undefined {
    if (policy.transport !== 'cookie' || !policy.persistent || request.protocol !== 'https') return undefined
    const challenge = newChallenge()
    return {
      field: encodeDbsc({ key: undefined, credentials: [], challenges: [{ value: challenge, until: now + CHALLENGE_TTL_MS }] }),
      registration: `${this.#offered}"${challenge}"`
    }
  }

  /**
   * Whether `secret` authenticates a session that carries a dbsc field: by its hash while it is
   * only offered binding; once bound, only by its current or previous credential, issued less
   * than `cookieTtl` ago.
   */
  authenticates (record: StoredSession, secret: string, now: number): boolean {
    const state = decodeDbsc(record.dbsc as string)
    if (state === undefined) return false
    if (state.key === undefined) return secretMatches(record.secretHash, secret)
    for (const c of state.credentials) {
      if (now - c.at < this.#cookieTtlMs && secretMatches(c.hash, secret)) return true
    }
    return false
  }

  #rebound (record: StoredSession, key: DbscKey, previous: { hash: string, at: number }, challenges: Challenge[],
    now: number): { next: DbscState, secret: string, challenge: string } {
    const secret = newSecret()
    const challenge = newChallenge()
    // The next refresh signs this one at once, without a 403 round trip; it stays usable past the cookie's life.
    const ahead = { value: challenge, until: now + this.#cookieTtlMs + CHALLENGE_TTL_MS }
    const next = { key, credentials: [{ hash: hashSecret(secret), at: now }, previous], challenges: withChallenge(challenges, ahead) }
    return { next, secret, challenge }
  }

  /** Sets the session's field from `from` to `to`; resolves whether it still held `from` (and exists). */
  async #swap (record: StoredSession, to: string, now: number): Promise<boolean> {
    return await this.#store.patch(record.id, {
      clear: false, set: emptyData(), unset: [], lastSeenAt: now, dbsc: { from: record.dbsc, to }
    })
  }

  #bound (record: StoredSession, to: string, secret: string, challenge: string, now: number): Rebound {
    return {
      state: { ...record, dbsc: to, lastSeenAt: now },
      secret,
      cookieExpiresAt: Math.min(record.expiresAt, now + this.#cookieTtlMs),
      challenge
    }
  }

  /** The registration route: binds the session of the cookie `raw` to the key that signed `proof`. */
  async register (log: FastifyBaseLogger, raw: string | undefined, proof: string): Promise<RegisterOutcome> {
    if (raw === undefined || raw === '') return refused(401, 'no session cookie')
    const loaded = await this.#load(log, raw)
    if (loaded.kind === 'unavailable') return loaded
    if (loaded.kind !== 'loaded') return refused(401, 'the session cookie does not authenticate')
    const record = loaded.state
    const state = record.dbsc === undefined ? undefined : decodeDbsc(record.dbsc)
    if (state === undefined) return refused(403, 'no registration was offered to this session')
    if (state.key !== undefined) return refused(403, 'the session is bound already')
    const checked = await verifyRegistration(proof, this.options.algorithms)
    if (!checked.ok) return refused(400, `registration proof refused: ${checked.reason}`)
    const now = this.#core.now()
    if (!isPending(state, checked.value.jti, now)) return refused(403, 'not a pending registration challenge of this session')
    // The login cookie becomes the previous credential: requests in flight keep working, for cookieTtl after the login at most.
    const { next, secret, challenge } = this.#rebound(record, checked.value.key, { hash: record.secretHash, at: record.createdAt }, [], now)
    const to = encodeDbsc(next)
    try {
      // A registration racing another, or the session's end, changes nothing.
      if (!await this.#swap(record, to, now)) return refused(403, 'the session changed meanwhile')
    } catch (err) {
      return this.#core.unavailable(log, err)
    }
    return { kind: 'bound', bound: this.#bound(record, to, secret, challenge, now) }
  }

  /**
   * The refresh route, for the session `id` of `Sec-Secure-Session-Id`: without a proof, a
   * challenge to sign; with one signed by the session's key over a pending challenge, a new
   * cookie secret. A session that ended, or is not bound, ends the browser's DBSC session.
   */
  async refresh (log: FastifyBaseLogger, id: string, proof: string | undefined): Promise<RefreshOutcome> {
    if (!isSessionId(id)) return refused(400, 'not a session id')
    try {
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const outcome = await this.#refreshOnce(id, proof)
        if (outcome !== undefined) return outcome
        // Another instance changed the session's field between the read and the write: read it again.
      }
      return { kind: 'unavailable', error: this.#core.unavailable(log, new Error('the session\'s binding kept changing')).error }
    } catch (err) {
      return this.#core.unavailable(log, err)
    }
  }

  /** One read and at most one compare-and-set; undefined when the write lost a race. */
  async #refreshOnce (id: string, proof: string | undefined): Promise<RefreshOutcome | undefined> {
    const core = this.#core
    const record = await this.#store.get(id)
    const now = core.now()
    if (record === undefined || record.expiresAt <= now) return { kind: 'end', reason: 'the session ended' }
    const state = record.dbsc === undefined ? undefined : decodeDbsc(record.dbsc)
    const key = state?.key
    if (state === undefined || key === undefined || core.policyFor(record.policy, false) === undefined) {
      return { kind: 'end', reason: 'the session is not bound' }
    }
    let jti: string | undefined
    if (proof !== undefined) {
      const checked = await verifyRefresh(proof, key, this.options.algorithms)
      if (!checked.ok) return refused(400, `refresh proof refused: ${checked.reason}`)
      if (isPending(state, checked.value, now)) jti = checked.value
    }
    if (jti === undefined) {
      // No proof yet, or one of a challenge that is not pending (stale, used, another session's): ask for a fresh one.
      const challenge = newChallenge()
      const challenges = withChallenge(pending(state, now), { value: challenge, until: now + CHALLENGE_TTL_MS })
      const ok = await this.#swap(record, encodeDbsc({ ...state, challenges }), now)
      return ok ? { kind: 'challenge', id, challenge } : undefined
    }
    const current = state.credentials[0] as { hash: string, at: number }
    const { next, secret, challenge } = this.#rebound(record, key, current, pending(state, now, jti), now)
    const to = encodeDbsc(next)
    return await this.#swap(record, to, now) ? { kind: 'refreshed', bound: this.#bound(record, to, secret, challenge, now) } : undefined
  }
}
