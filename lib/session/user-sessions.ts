import type { FastifyBaseLogger } from 'fastify'
import type { Backend, SessionRecord } from '../backends/backend.js'
import { MAX_COOKIE_LENGTH } from '../backends/core.js'
import { FST_SESSION_OPTION_INVALID } from '../errors.js'
import { normalizeUserId } from '../crypto/ids.js'
import type { SessionEventEmitter, SessionEventListener, SessionEventName } from './events.js'
import { checkData } from '../stores/data.js'

export interface SessionUpdate {
  id: string
  /** When given, the session must belong to this user. */
  userId?: string | number
  data: Record<string, unknown>
}

export interface DeleteAllOptions {
  /** Session id(s) to keep, e.g. the current one for "log out other devices". */
  except?: string | readonly string[]
}

function exceptions (options: DeleteAllOptions): string[] {
  const except = options.except
  return except === undefined ? [] : typeof except === 'string' ? [except] : [...except]
}

function optionalUser (userId: string | number | undefined): string | undefined {
  return userId === undefined ? undefined : normalizeUserId(userId)
}

/**
 * `app.sessions`: the per-user model (after YipyipExAuth's SessionStore). Every call costs
 * O(that user's sessions) in the built-in stores, whatever the number of sessions stored.
 */
export class UserSessions {
  readonly #backend: Backend
  readonly #log: FastifyBaseLogger
  readonly #events: SessionEventEmitter

  /** @internal */
  constructor (backend: Backend, log: FastifyBaseLogger, events: SessionEventEmitter) {
    this.#backend = backend
    this.#log = log
    this.#events = events
  }

  /**
   * Listens to a lifecycle event: `'created'`, `'login'`, `'regenerated'`, `'destroyed'`, `'bound'`
   * (where they happen) and `'revoked'` (a session ended, on any instance sharing the store). Events
   * carry the session's public id, its user, the time and, where known, the client's address and
   * user agent; never a secret, a token or data. A listener that throws is logged, not rethrown.
   */
  on<E extends SessionEventName> (event: E, listener: SessionEventListener<E>): this {
    this.#events.on(event, listener)
    return this
  }

  /** Stops a listener added with `on`. */
  off<E extends SessionEventName> (event: E, listener: SessionEventListener<E>): this {
    this.#events.off(event, listener)
    return this
  }

  /**
   * The live session a credential stands for, outside a request (a WebSocket upgrade, a job):
   * a session cookie's value or a bearer token. Undefined when it does not authenticate
   * (tampered, unknown, expired, revoked). Writes nothing: no deadline moves. The record holds
   * no secret and no hash.
   */
  async authenticate (credential: string): Promise<SessionRecord | undefined> {
    if (typeof credential !== 'string') throw new FST_SESSION_OPTION_INVALID('credential', 'must be a string: a session cookie value or a bearer token')
    if (credential === '' || credential.length > MAX_COOKIE_LENGTH) return undefined
    const backend = this.#backend
    const loaded = await backend.load(this.#log, credential, undefined)
    switch (loaded.kind) {
      case 'loaded':
        return backend.record(loaded.state, loaded.policy)
      case 'unavailable':
        throw loaded.error
      default:
        return undefined
    }
  }

  /** One live session, or undefined; with `userId`, only if it belongs to that user. */
  async get (sessionId: string, userId?: string | number): Promise<SessionRecord | undefined> {
    return await this.#backend.get(sessionId, optionalUser(userId))
  }

  /**
   * Replaces the data of a live session and pushes its idle deadline to `ttl` seconds from now
   * (never past its absolute deadline). The data pass the checks of `session.set`, key by key.
   * Throws `FST_SESSION_NOT_FOUND` when it does not exist.
   */
  async upsert (session: SessionUpdate, ttl: number = this.#backend.core.options.ttl): Promise<SessionRecord> {
    if (session === null || typeof session !== 'object' || session.data === null || typeof session.data !== 'object') {
      throw new FST_SESSION_OPTION_INVALID('session', 'must be an object with an id and a data object')
    }
    if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new FST_SESSION_OPTION_INVALID('ttl', 'must be a positive integer')
    const data = checkData(session.data)
    return await this.#backend.upsert(session.id, optionalUser(session.userId), data, ttl * 1000)
  }

  /** Deletes one session; with `userId`, only if it belongs to that user. Resolves whether it existed. */
  async delete (sessionId: string, userId?: string | number): Promise<boolean> {
    return await this.#backend.delete(sessionId, optionalUser(userId))
  }

  /** Every live session of the user, oldest first; none for `undefined` (an anonymous visitor). */
  async getAll (userId: string | number | undefined): Promise<SessionRecord[]> {
    return await this.#backend.getAll(optionalUser(userId))
  }

  /**
   * Deletes every session of the user but `except`, in one atomic step; resolves how many it
   * deleted (0 for `undefined`). A stateless store cannot count the cookies it revoked: it resolves 0.
   */
  async deleteAll (userId: string | number | undefined, options: DeleteAllOptions = {}): Promise<number> {
    return await this.#backend.deleteAll(optionalUser(userId), exceptions(options))
  }
}
