import { Signer } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { FST_SESSION_ID_COLLISION, FST_SESSION_STORE_UNAVAILABLE } from './errors.js'
import { hashSecret, newSecret, newSessionId, parseToken, secretMatches } from './ids.js'
import type { NormalizedOptions } from './options.js'
import type { SessionStore, StoredSession } from './stores/store.js'

// What every session of one plugin instance shares: the options, the store, the signer,
// and the few operations that turn records into cookies and back.

const MAX_INSERT_ATTEMPTS = 100 // as Plug's ETS store
const MAX_COOKIE_LENGTH = 4096
const MAX_USER_AGENT_LENGTH = 512

export interface LoadedToken {
  record: StoredSession
  secret: string
  /** The cookie was signed with an older secret: re-sign it with the newest. */
  renew: boolean
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

export class SessionCore {
  readonly options: NormalizedOptions
  readonly store: SessionStore
  readonly ttlMs: number
  readonly absoluteTtlMs: number
  /** The idle deadline is pushed back once it is at least this much later than the stored one. */
  readonly refreshStepMs: number
  readonly #signer: Signer

  constructor (options: NormalizedOptions, store: SessionStore) {
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
    const unsigned = this.#signer.unsign(raw)
    if (!unsigned.valid) return this.#reject(request, 'bad signature')
    const token = parseToken(unsigned.value as string)
    if (token === undefined) return this.#reject(request, 'malformed')
    let record: StoredSession | undefined
    try {
      record = await this.store.get(token.id)
    } catch (err) {
      const error = storeError(err)
      request.log.warn({ err: { message: error.message, code: (error as { code?: string }).code } },
        'session store unavailable while loading a session')
      return { kind: 'unavailable', error }
    }
    if (record === undefined || record.expiresAt <= this.now()) return this.#reject(request, 'unknown or expired')
    if (!secretMatches(record.secretHash, token.secret)) return this.#reject(request, 'secret mismatch')
    return { kind: 'loaded', token: { record, secret: token.secret, renew: unsigned.renew } }
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
    let { record, secret } = created
    let attempts = 1
    while (!await this.store.insert(record)) {
      if (attempts++ === MAX_INSERT_ATTEMPTS) throw new FST_SESSION_ID_COLLISION(MAX_INSERT_ATTEMPTS)
      request.log.warn('session id collision; drawing a new id')
      secret = newSecret()
      record = { ...record, id: newSessionId(record.userId), secretHash: hashSecret(secret) }
    }
    return { record, secret }
  }

  writeCookie (reply: FastifyReply, id: string, secret: string, expiresAt: number): void {
    const maxAge = Math.max(0, Math.ceil((expiresAt - this.now()) / 1000))
    reply.setCookie(this.options.cookieName, this.#signer.sign(id + '.' + secret), { ...this.#cookieAttributes(), maxAge })
    noStore(reply)
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
