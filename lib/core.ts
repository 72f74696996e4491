import { Signer } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { FST_SESSION_COOKIE_TOO_LARGE, FST_SESSION_ID_COLLISION, FST_SESSION_STORE_UNAVAILABLE } from './errors.js'
import type { CookieAttributeOverrides } from './cookie-overrides.js'
import { hashSecret, newSecret, newSessionId, parseToken, secretMatches } from './ids.js'
import type { NormalizedOptions } from './options.js'
import { isStateless, type SessionStore, type StatelessStore, type StoredSession } from './stores/store.js'

// What every session of one plugin instance shares: the options, the store, the signer,
// and the few operations that turn records into cookies and back.

const MAX_INSERT_ATTEMPTS = 100 // as Plug's ETS store
const MAX_COOKIE_LENGTH = 4096
const UNAVAILABLE_LOG_INTERVAL = 10_000
/** Name, value and attributes of a Set-Cookie (ASVS V3.3; browsers drop larger cookies silently). */
const MAX_SET_COOKIE_BYTES = 4096
/** A value that goes into Set-Cookie as it is (no percent-encoding): its length is its size. */
const COOKIE_SAFE = /^[\w.~-]*$/
const MAX_USER_AGENT_LENGTH = 512

export interface LoadedToken {
  record: StoredSession
  secret: string
  /** The cookie was signed with an older secret: re-sign it with the newest. */
  renew: boolean
}

/** A session of a stateless store: the user generation it was issued under rides along. */
export interface SealedRecord extends StoredSession {
  generation: number
}

export type LoadResult =
  | { kind: 'none' } // no cookie
  | { kind: 'rejected' } // a cookie that does not authenticate; to be expired
  | { kind: 'loaded', token: LoadedToken }
  | { kind: 'unavailable', error: Error }

const NONE: LoadResult = { kind: 'none' }
const REJECTED: LoadResult = { kind: 'rejected' }

/** Wraps what a store threw as a typed 503, keeping typed errors (an unsupported operation, say) as they are. */
export function storeError (err: unknown): Error {
  if (err instanceof Error && typeof (err as { statusCode?: unknown }).statusCode === 'number' &&
    typeof (err as { code?: unknown }).code === 'string') {
    return err
  }
  const wrapped = new FST_SESSION_STORE_UNAVAILABLE(err instanceof Error ? err.message : String(err))
  wrapped.cause = err
  return wrapped
}

/** Awaits a store call, turning what it rejects with into the typed error `storeError` makes. */
export async function withStoreErrors<T> (promise: Promise<T>): Promise<T> {
  try {
    return await promise
  } catch (err) {
    throw storeError(err)
  }
}

export class SessionCore {
  readonly options: NormalizedOptions
  readonly store: SessionStore | StatelessStore
  readonly ttlMs: number
  readonly absoluteTtlMs: number
  /** The idle deadline is pushed back once it is at least this much later than the stored one. */
  readonly refreshStepMs: number
  readonly #signer: Signer
  #lastUnavailableWarning = -Infinity
  #attributesBound: number | undefined

  constructor (options: NormalizedOptions, store: SessionStore | StatelessStore) {
    this.options = options
    this.store = store
    this.ttlMs = options.ttl * 1000
    this.absoluteTtlMs = options.absoluteTtl * 1000
    this.refreshStepMs = Math.max(1, Math.floor(this.ttlMs * options.refreshFraction))
    this.#signer = new Signer(options.secrets as string[])
  }

  now (): number {
    return this.options.clock()
  }

  /** The effective deadline of a session created at `createdAt`, active at `now`. */
  deadline (createdAt: number, now: number, ttlMs = this.ttlMs): number {
    return Math.min(now + ttlMs, createdAt + this.absoluteTtlMs)
  }

  /** Reads the session cookie; never throws. Debug lines say why a cookie was refused, never what it held. */
  async load (request: FastifyRequest): Promise<LoadResult> {
    const raw = request.cookies[this.options.cookieName]
    if (raw === undefined || raw === '') return NONE
    if (raw.length > MAX_COOKIE_LENGTH) return this.#reject(request, 'oversized')
    const store = this.store
    if (isStateless(store)) return await this.#open(request, store, raw)
    const unsigned = this.#signer.unsign(raw)
    if (!unsigned.valid) return this.#reject(request, 'bad signature')
    const token = parseToken(unsigned.value as string)
    if (token === undefined) return this.#reject(request, 'malformed')
    let record: StoredSession | undefined
    try {
      record = await store.get(token.id)
    } catch (err) {
      return this.#unavailable(request, err)
    }
    if (record === undefined || record.expiresAt <= this.now()) return this.#reject(request, 'unknown or expired')
    if (!secretMatches(record.secretHash, token.secret)) return this.#reject(request, 'secret mismatch')
    return { kind: 'loaded', token: { record, secret: token.secret, renew: unsigned.renew } }
  }

  /** The stateless path of `load`: open the seal, check the deadlines here, then ask revocation (one round trip). */
  async #open (request: FastifyRequest, store: StatelessStore, raw: string): Promise<LoadResult> {
    const opened = store.open(raw)
    if (opened === undefined) return this.#reject(request, 'bad seal')
    const s = opened.session
    const now = this.now()
    const expiresAt = Math.min(s.expiresAt, s.absoluteAt, s.createdAt + this.absoluteTtlMs)
    if (expiresAt <= now) return this.#reject(request, 'expired')
    const revocation = store.revocation
    if (revocation !== undefined) {
      let revoked: boolean
      try {
        revoked = await revocation.isRevoked(s.id, s.userId, s.generation)
      } catch (err) {
        return this.#unavailable(request, err)
      }
      if (revoked) return this.#reject(request, 'revoked')
    }
    const record: SealedRecord = {
      id: s.id,
      secretHash: '',
      userId: s.userId,
      data: s.data,
      createdAt: s.createdAt,
      lastSeenAt: now,
      expiresAt,
      authenticatedAt: s.authenticatedAt,
      ip: undefined,
      userAgent: undefined,
      generation: s.generation
    }
    return { kind: 'loaded', token: { record, secret: '', renew: opened.renew } }
  }

  /** A warning at most every UNAVAILABLE_LOG_INTERVAL ms (real time), debug lines between: an outage must not flood the log. */
  #unavailable (request: FastifyRequest, err: unknown): LoadResult {
    const error = storeError(err)
    const now = Date.now()
    const details = { err: { message: error.message, code: (error as { code?: string }).code } }
    if (now - this.#lastUnavailableWarning >= UNAVAILABLE_LOG_INTERVAL) {
      this.#lastUnavailableWarning = now
      request.log.warn(details, 'session store unavailable while loading a session')
    } else {
      request.log.debug(details, 'session store unavailable while loading a session')
    }
    return { kind: 'unavailable', error }
  }

  #reject (request: FastifyRequest, reason: string): LoadResult {
    request.log.debug({ reason }, 'session cookie refused; starting a fresh session')
    return REJECTED
  }

  /** A new record (not yet stored) and the secret its cookie will carry. */
  newRecord (request: FastifyRequest, userId: string | undefined, data: Record<string, unknown>,
    createdAt: number, authenticatedAt: number | undefined,
    id = newSessionId(userId), secret = newSecret()): { record: StoredSession, secret: string } {
    const now = this.now()
    const track = this.options.trackClient
    const userAgent = request.headers['user-agent']
    return {
      secret,
      record: {
        id,
        secretHash: hashSecret(secret),
        userId,
        data,
        createdAt,
        lastSeenAt: now,
        expiresAt: this.deadline(createdAt, now),
        authenticatedAt,
        ip: track ? request.ip : undefined,
        userAgent: track && typeof userAgent === 'string' ? userAgent.slice(0, MAX_USER_AGENT_LENGTH) : undefined
      }
    }
  }

  /** Inserts with insert-new semantics; on the (astronomically rare) collision, draws a new id and secret. */
  async insert (request: FastifyRequest, created: { record: StoredSession, secret: string }): Promise<{ record: StoredSession, secret: string }> {
    const store = this.store
    if (isStateless(store)) return await this.#issue(store, created)
    let { record, secret } = created
    let attempts = 1
    while (!await store.insert(record)) {
      if (attempts++ === MAX_INSERT_ATTEMPTS) throw new FST_SESSION_ID_COLLISION(MAX_INSERT_ATTEMPTS)
      request.log.warn('session id collision; drawing a new id')
      secret = newSecret()
      record = { ...record, id: newSessionId(record.userId), secretHash: hashSecret(secret) }
    }
    return { record, secret }
  }

  /** Stateless: nothing is stored; a session of a user is sealed under the user's current revocation generation. */
  async #issue (store: StatelessStore, created: { record: StoredSession, secret: string }): Promise<{ record: StoredSession, secret: string }> {
    const { record } = created
    const revocation = store.revocation
    const generation = revocation === undefined || record.userId === undefined ? 0 : await revocation.generation(record.userId)
    return { record: { ...record, generation } as SealedRecord, secret: created.secret }
  }

  /**
   * Ends a session: deleted from a server store; deny-listed until its absolute deadline by
   * a stateless store's revocation, or, without one, nothing (only the cookie is expired).
   */
  drop (record: StoredSession): Promise<boolean> {
    const store = this.store
    if (!isStateless(store)) return store.delete(record.id)
    const revocation = store.revocation
    if (revocation === undefined) return Promise.resolve(false)
    return revocation.revoke(record.id, record.createdAt + this.absoluteTtlMs)
  }

  /** `overrides`: what `request.session.options()` accepted for this response (already checked). */
  writeCookie (reply: FastifyReply, record: StoredSession, secret: string, data: Record<string, unknown>,
    overrides?: CookieAttributeOverrides): void {
    const store = this.store
    const maxAge = Math.max(0, Math.ceil((record.expiresAt - this.now()) / 1000))
    const value = isStateless(store) ? this.seal(reply.request, store, record, data, maxAge, overrides) : this.#signer.sign(record.id + '.' + secret)
    reply.setCookie(this.options.cookieName, value, { ...this.#cookieAttributes(), ...overrides, maxAge })
    noStore(reply)
  }

  /** The sealed cookie value; throws `FST_SESSION_COOKIE_TOO_LARGE` rather than send what a browser would drop. */
  seal (request: FastifyRequest, store: StatelessStore, record: StoredSession, data: Record<string, unknown>,
    maxAge = Math.max(0, Math.ceil((record.expiresAt - this.now()) / 1000)), overrides?: CookieAttributeOverrides): string {
    const value = store.seal({
      id: record.id,
      userId: record.userId,
      data,
      createdAt: record.createdAt,
      expiresAt: record.expiresAt,
      absoluteAt: record.createdAt + this.absoluteTtlMs,
      authenticatedAt: record.authenticatedAt,
      generation: (record as SealedRecord).generation
    })
    // Exact size only near the limit: below it, name + value + the longest the attributes can be is enough.
    const name = this.options.cookieName
    this.#attributesBound ??= Buffer.byteLength(request.server.serializeCookie(name, '',
      { ...this.#cookieAttributes(), secure: true, maxAge: this.options.absoluteTtl })) - name.length - 1
    if (overrides !== undefined || !COOKIE_SAFE.test(value) || name.length + 1 + value.length + this.#attributesBound > MAX_SET_COOKIE_BYTES) {
      const attributes: Record<string, unknown> = { ...this.#cookieAttributes(), ...overrides }
      if (attributes.secure === 'auto') attributes.secure = request.protocol === 'https'
      const size = Buffer.byteLength(request.server.serializeCookie(name, value, { ...attributes, maxAge }))
      if (size > MAX_SET_COOKIE_BYTES) throw new FST_SESSION_COOKIE_TOO_LARGE(size, MAX_SET_COOKIE_BYTES)
    }
    return value
  }

  clearCookie (reply: FastifyReply): void {
    reply.clearCookie(this.options.cookieName, this.#cookieAttributes())
    noStore(reply)
  }

  #cookieAttributes (): Record<string, unknown> {
    const c = this.options.cookie
    return {
      path: c.path,
      domain: c.domain,
      httpOnly: c.httpOnly,
      secure: c.secure,
      sameSite: c.sameSite,
      partitioned: c.partitioned || undefined,
      priority: c.priority
    }
  }
}

/** A response that sets the session cookie must not be stored by a shared cache (CVE-2025-48947). */
function noStore (reply: FastifyReply): void {
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
}
