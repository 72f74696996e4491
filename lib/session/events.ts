import type { FastifyBaseLogger } from 'fastify'
import type { RevocationReason } from '../bus/bus.js'
import { FST_SESSION_OPTION_INVALID } from '../errors.js'

// Session lifecycle events (`app.sessions.on` / `off`), for audit logs and metrics. Never a
// secret, a token or session data. An event object is built only when someone listens to its
// kind in this instance: `listening()` is one property read, checked before anything is made.

/** Why a session ended; `'unknown'`: it was found gone after this instance missed the message. */
export type RevokedReason = RevocationReason | 'unknown'

export interface SessionEvent {
  /** The session's public id (as on a devices page). */
  id: string
  userId: string | undefined
  /** Milliseconds since the epoch. */
  at: number
  /** Where the request came from, when known (`trackClient`). */
  ip?: string | undefined
  userAgent?: string | undefined
}

export interface LoginEvent extends SessionEvent {
  /** The id of the session the login replaced, if it was stored. */
  previousId: string | undefined
}

export interface RevokedEvent extends SessionEvent {
  reason: RevokedReason
}

export interface SessionEvents {
  /** An anonymous session was first stored. Where it happens. */
  created: SessionEvent
  /** `login()` bound a new session to a user. Where it happens. */
  login: LoginEvent
  /** `regenerate()` gave the session a new id. Where it happens. */
  regenerated: LoginEvent
  /** `destroy()` ended the session. Where it happens. */
  destroyed: SessionEvent
  /** The browser bound the session to a key it keeps on the device (DBSC registration). Where it happens. */
  bound: SessionEvent
  /** A session ended: heard on every instance that shares the store (and listens). */
  revoked: RevokedEvent
}

export type SessionEventName = keyof SessionEvents
export type SessionEventListener<E extends SessionEventName> = (event: SessionEvents[E]) => void

const NAMES: readonly SessionEventName[] = ['created', 'login', 'regenerated', 'destroyed', 'bound', 'revoked']

export class SessionEventEmitter {
  /** A set for each event name, from the start: a name that has none is not an event. */
  readonly #listeners = new Map(NAMES.map((name) => [name, new Set<SessionEventListener<SessionEventName>>()]))
  readonly #log: FastifyBaseLogger
  /** Called when the first 'revoked' listener comes or the last one goes. */
  readonly #onRevokedListeners: (listening: boolean) => void

  constructor (log: FastifyBaseLogger, onRevokedListeners: (listening: boolean) => void) {
    this.#log = log
    this.#onRevokedListeners = onRevokedListeners
  }

  on<E extends SessionEventName> (event: E, listener: SessionEventListener<E>): void {
    const set = this.#set(event, listener)
    const before = set.size
    set.add(listener as SessionEventListener<SessionEventName>)
    if (event === 'revoked' && before === 0 && set.size === 1) this.#onRevokedListeners(true)
  }

  off<E extends SessionEventName> (event: E, listener: SessionEventListener<E>): void {
    const set = this.#set(event, listener)
    if (set.delete(listener as SessionEventListener<SessionEventName>) && event === 'revoked' && set.size === 0) this.#onRevokedListeners(false)
  }

  #set (event: unknown, listener: unknown): Set<SessionEventListener<SessionEventName>> {
    if (typeof listener !== 'function') throw new FST_SESSION_OPTION_INVALID('listener', 'must be a function')
    const set = this.#listeners.get(event as SessionEventName)
    if (set === undefined) throw new FST_SESSION_OPTION_INVALID('event', `must be one of ${NAMES.map((n) => `'${n}'`).join(', ')}`)
    return set
  }

  /** Whether anyone listens to `event`: check it before building the event. */
  listening (event: SessionEventName): boolean {
    return (this.#listeners.get(event) as Set<unknown>).size > 0
  }

  /** Calls each listener; one that throws is logged and never reaches the caller. */
  emit<E extends SessionEventName> (event: E, payload: SessionEvents[E]): void {
    for (const listener of [...this.#listeners.get(event) as Set<SessionEventListener<E>>]) {
      try {
        listener(payload)
      } catch (err) {
        this.#log.error({ err, event }, 'a session event listener threw')
      }
    }
  }
}
