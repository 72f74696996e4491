import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { SessionCore } from './core.js'
import type { RevocationBus } from '../bus/bus.js'
import type { Policy, SessionTransport } from './policy.js'
import type { SessionData } from '../stores/data.js'
import type { DeviceBinding } from './dbsc.js'

// The one internal interface behind `request.session` and `app.sessions`. Which kind of
// store the app uses (server-side, or sealed into the cookie) is decided once, at register(),
// by the backend the plugin builds (see index.ts in this folder); the request path and the
// per-user API only ever call these methods.

/** What every session has, whatever keeps it. Times in milliseconds since the epoch. */
export interface SessionState {
  readonly id: string
  readonly userId: string | undefined
  /** The data as loaded or created; the live copy is the Session's. */
  readonly data: Record<string, unknown>
  readonly createdAt: number
  readonly lastSeenAt: number
  /** The effective deadline: the earlier of the idle and the absolute one. */
  readonly expiresAt: number
  readonly authenticatedAt: number | undefined
  /** Its own settings from `login()`, encoded (lib/backends/policy.ts); undefined: the app's. */
  readonly policy?: string | undefined
}

/** A session about to be created by `login()`, `regenerate()` or the first write of an anonymous one. */
export interface NewSession {
  /** The id an anonymous session already showed (`request.session.id` before it was stored), if any. */
  readonly id: string | undefined
  readonly userId: string | undefined
  readonly data: Record<string, unknown>
  readonly createdAt: number
  readonly authenticatedAt: number | undefined
  readonly policy: Policy
}

/** What the session cookie (or bearer token) of a request gave. */
export type LoadResult<S extends SessionState = SessionState> =
  | { readonly kind: 'none' } // no credential
  | { readonly kind: 'rejected' } // a credential that does not authenticate; a cookie is to be expired
  | { readonly kind: 'loaded', readonly state: S, readonly secret: string, readonly renew: boolean, readonly policy: Policy }
  | { readonly kind: 'unavailable', readonly error: Error }

/** Data changes since the session was loaded. `set` is a null-prototype object. */
export interface DataChange {
  readonly clear: boolean
  readonly set: Record<string, unknown>
  readonly unset: string[]
}

/** A session the backend just created: its state and the secret its credential carries. */
export interface Issued<S extends SessionState = SessionState> {
  readonly state: S
  readonly secret: string
  /** A `Secure-Session-Registration` header to send with the new cookie: the session is offered device binding (DBSC). */
  readonly registration?: string | undefined
}

export interface Persisted<S extends SessionState = SessionState> {
  readonly state: S
  /** The cookie must be sent again (its value or its Max-Age changed). */
  readonly resend: boolean
}

export interface Backend<S extends SessionState = SessionState> {
  readonly core: SessionCore
  /** The longest absolute timeout `login()` may give a session, in seconds. */
  readonly maxAbsoluteTtl: number
  /** How the instances sharing the store hear of revocations: the store's, or one of this process. */
  readonly bus: RevocationBus
  /** Device-bound sessions (DBSC), when the `dbsc` option turned them on. */
  readonly binding: DeviceBinding | undefined
  /**
   * Reads a credential; never throws. `bearer`: it came as a bearer token (true) or a cookie
   * (false), and must match how the session travels; undefined: either (`app.sessions.authenticate`).
   */
  load (log: FastifyBaseLogger, raw: string, bearer: boolean | undefined): Promise<LoadResult<S>>
  /** Stores (or seals) a new session. */
  create (request: FastifyRequest, init: NewSession): Promise<Issued<S>>
  /**
   * Applies `change` (undefined: nothing but the clock moved) and, when given, the new deadline
   * `expiresAt`; `data` is the session's data after the change. Resolves undefined when the
   * session is gone: a revoked session is never brought back.
   */
  persist (state: S, change: DataChange | undefined, data: Record<string, unknown>, now: number,
    expiresAt: number | undefined): Promise<Persisted<S> | undefined>
  /** Ends the session for every holder of its credential, and says so on the bus; resolves whether it was live. */
  drop (state: S, reason: 'destroy' | 'replaced'): Promise<boolean>
  /** The session's current deadline as the store has it, or undefined when it ended (for live connections). */
  alive (state: S): Promise<number | undefined>
  /** The cookie value for the session; throws `FST_SESSION_COOKIE_TOO_LARGE` rather than send what a browser drops. */
  cookieValue (request: FastifyRequest, state: S, secret: string, data: Record<string, unknown>): string

  /** What `app.sessions` shows of a loaded session. */
  record (state: S, policy: Policy): SessionRecord

  // The per-user model, arguments checked by UserSessions.
  get (sessionId: string, userId: string | undefined): Promise<SessionRecord | undefined>
  upsert (sessionId: string, userId: string | undefined, data: Record<string, unknown>, ttlMs: number): Promise<SessionRecord>
  delete (sessionId: string, userId: string | undefined): Promise<boolean>
  getAll (userId: string | undefined): Promise<SessionRecord[]>
  deleteAll (userId: string | undefined, except: readonly string[]): Promise<number>
  close (): Promise<void>
}

/** A session as `app.sessions` shows it: everything but the secret's hash. Times in ms since the epoch. */
export interface SessionRecord {
  id: string
  userId: string | undefined
  data: Partial<SessionData> & Record<string, unknown>
  createdAt: number
  lastSeenAt: number
  expiresAt: number
  authenticatedAt: number | undefined
  ip: string | undefined
  userAgent: string | undefined
  /** How the session travels: in the session cookie, or as a bearer token (`login(id, { transport: 'bearer' })`). */
  transport: SessionTransport
  /** False: its cookie carries no Max-Age and dies with the browser (`login(id, { persistent: false })`). */
  persistent: boolean
  /** Its idle timeout in seconds: its own from `login()`, else the app's. */
  ttl: number
  /** Its absolute timeout in seconds: its own from `login()`, else the app's. */
  absoluteTtl: number
  /** The browser bound the session to a key it keeps on the device (DBSC): a copy of its cookie dies within `dbsc.cookieTtl`. */
  deviceBound: boolean
}
