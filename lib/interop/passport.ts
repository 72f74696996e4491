import type { FastifyRequest } from 'fastify'
import { FST_SESSION_OPTION_INVALID } from '../errors.js'
import { normalizeUserId } from '../crypto/ids.js'
import type { SessionKey } from '../stores/data.js'

// @fastify/passport with this plugin: its session manager (a public property of the
// Authenticator, used by request.logIn, request.logOut and the session strategy) is replaced by
// one that logs in with `request.session.login()`, so the passport user is the session's user,
// and logs out with `destroy()`. Passport's own code is not changed; its serializers, key and
// clearSession options are read from the manager it built.

type SerializeUser = (user: any, request: FastifyRequest) => Promise<unknown>

/** The part of @fastify/passport's `Authenticator` that `passportSessions` uses. */
export interface PassportAuthenticatorLike {
  sessionManager: {
    key: string
    clearSessionOnLogin: boolean
    clearSessionIgnoreFields: string[]
    serializeUser: SerializeUser
    logIn: (request: FastifyRequest, user: any, options?: any) => Promise<void>
    logOut: (request: FastifyRequest) => Promise<void>
    getUserFromSession: (request: FastifyRequest) => unknown
  }
}

export interface PassportSessionsOptions {
  /**
   * The user id a session is bound to, from what passport's serializer stored.
   * @default the serialized value itself, when it is a string or a safe integer
   */
  userId?: UserIdOf
}

type UserIdOf = (serialized: unknown, request: FastifyRequest) => string | number
const asUserId: UserIdOf = (serialized) => serialized as string | number

/** @internal The manager `passportSessions` installs; same fields as passport's SecureSessionManager. */
export class PassportSessionManager {
  key: string
  clearSessionOnLogin: boolean
  clearSessionIgnoreFields: string[]
  serializeUser: SerializeUser
  readonly #userId: UserIdOf

  constructor (original: PassportAuthenticatorLike['sessionManager'], userId = asUserId) {
    this.key = original.key
    this.clearSessionOnLogin = original.clearSessionOnLogin
    this.clearSessionIgnoreFields = [...original.clearSessionIgnoreFields]
    this.serializeUser = original.serializeUser
    this.#userId = userId
  }

  /**
   * `request.logIn(user)`: a new session bound to the user (the old id is deleted), holding only
   * the keys passport keeps (all of them with `keepSessionInfo` or `clearSessionOnLogin: false`).
   */
  async logIn (request: FastifyRequest, user: unknown, options?: { keepSessionInfo?: boolean }): Promise<void> {
    const serialized = await this.serializeUser(user, request)
    const userId = normalizeUserId(this.#userId(serialized, request))
    const keepAll = !this.clearSessionOnLogin || options?.keepSessionInfo === true
    await request.session.login(userId, { keepData: keepAll ? true : this.clearSessionIgnoreFields })
    request.session.set(this.key as SessionKey, serialized as never)
  }

  /** `request.logOut()`: the session is deleted and its cookie expired; with `clearSessionOnLogin: false` the other keys move to a new anonymous session. */
  async logOut (request: FastifyRequest): Promise<void> {
    const session = request.session
    const kept = this.clearSessionOnLogin ? {} : session.toJSON()
    delete kept[this.key]
    await session.destroy()
    for (const [key, value] of Object.entries(kept)) session.set(key as SessionKey, value as never)
  }

  /** The serialized user, only when the session is bound to that very user; none on a `config: { session: false }` route. */
  getUserFromSession (request: FastifyRequest): unknown {
    if (request.routeOptions.config.session === false) return undefined
    const session = request.session
    const bound = session.userId
    if (bound === undefined) return undefined
    const serialized = session.get(this.key as SessionKey)
    try {
      return normalizeUserId(this.#userId(serialized, request)) === bound ? serialized : undefined
    } catch {
      return undefined
    }
  }
}

/**
 * Makes @fastify/passport log users in and out with this plugin's sessions: call it once, after
 * `new Authenticator()`. The passport user becomes the session's user (`request.session.userId`,
 * `app.sessions.getAll`, `deleteAll`, `maxSessionsPerUser`); `request.logOut()` deletes the session.
 */
export function passportSessions<A extends PassportAuthenticatorLike> (authenticator: A, options: PassportSessionsOptions = {}): A {
  const manager = authenticator?.sessionManager
  if (manager === null || typeof manager !== 'object' || typeof manager.serializeUser !== 'function') {
    throw new FST_SESSION_OPTION_INVALID('authenticator', 'must be an @fastify/passport Authenticator')
  }
  if (options === null || typeof options !== 'object') throw new FST_SESSION_OPTION_INVALID('options', 'must be an object')
  if (options.userId !== undefined && typeof options.userId !== 'function') {
    throw new FST_SESSION_OPTION_INVALID('userId', 'must be a function from the serialized user to a user id')
  }
  authenticator.sessionManager = new PassportSessionManager(manager, options.userId)
  return authenticator
}
