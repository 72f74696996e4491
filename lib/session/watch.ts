import type { FastifyBaseLogger } from 'fastify'
import type { SessionState } from '../backends/backend.js'
import type { Revocation, RevocationBus, Unsubscribe } from '../bus/bus.js'
import { sessionKey } from '../bus/codec.js'
import type { RevokedReason, SessionEventEmitter } from './events.js'

// Who hears that a session ended (issue 14): the live connections of this instance that follow
// a session (`request.session.onRevoked`), and the 'revoked' listeners of `app.sessions.on`.
// The bus brings what any instance revoked; a timer at each followed session's deadline checks
// the store once (the deadline may have moved), so nothing polls. While nobody follows and
// nobody listens, no subscription is open. Pub/sub is at most once, so the store is asked once
// where a message may have been missed: when a session starts being followed (it may have been
// revoked since its request loaded it), when the subscription (or a sharded channel) is first
// heard, and after it was lost and came back.

/** The current deadline of a session as the store has it, or undefined when it ended. Rejects when the store cannot tell. */
export type AliveCheck = (state: SessionState) => Promise<number | undefined>

type Callback = (reason: RevokedReason) => void

interface Followed {
  state: SessionState
  expiresAt: number
  readonly callbacks: Set<Callback>
  timer: NodeJS.Timeout | undefined
  unfollow: Unsubscribe
}

/** setTimeout's longest delay; a later deadline is reached in steps. */
const MAX_DELAY = 2_147_483_647
/** Store checks run at most this many at once (a resync of thousands of connections). */
const CHECKS_AT_ONCE = 16
/** A check the store could not answer is tried again after this long. */
const RETRY_MS = 1000
/** A session a check found gone waits this long for the message that says why, before it ends as 'unknown'. */
const REASON_GRACE_MS = 200
/** How long the subscription stays open after the last follower or listener left. */
const LINGER_MS = 5000

export class Watcher {
  readonly #bus: RevocationBus
  readonly #alive: AliveCheck
  readonly #clock: () => number
  readonly #log: FastifyBaseLogger
  #events: SessionEventEmitter | undefined
  readonly #followed = new Map<string, Followed>()
  #listening = false
  #unsubscribe: Unsubscribe | undefined
  #linger: NodeJS.Timeout | undefined
  /** Channels to leave once LINGER_MS passed. */
  readonly #unfollows = new Map<NodeJS.Timeout, Unsubscribe>()
  #closed = false

  constructor (bus: RevocationBus, alive: AliveCheck, clock: () => number, log: FastifyBaseLogger) {
    this.#bus = bus
    this.#alive = alive
    this.#clock = clock
    this.#log = log
  }

  /** The emitter whose 'revoked' listeners hear every revocation this instance receives. */
  hear (events: SessionEventEmitter): void {
    this.#events = events
  }

  /** A 'revoked' listener came (true) or the last one went (false). */
  listening (on: boolean): void {
    this.#listening = on
    this.#subscription()
  }

  /** Runs `callback` once, when the session `state` ends anywhere; returns what stops it. */
  follow (state: SessionState, callback: Callback): Unsubscribe {
    let followed = this.#followed.get(state.id)
    if (followed === undefined) {
      followed = { state, expiresAt: state.expiresAt, callbacks: new Set(), timer: undefined, unfollow: this.#bus.follow(state.id) }
      this.#followed.set(state.id, followed)
      this.#arm(followed)
      this.#subscription()
      // What was revoked between the load of the session and now came before anyone here
      // followed it: one look at the store. (Until the subscription is heard, the bus's resync covers the rest.)
      this.#check([followed], 'unknown')
    }
    // A new function per call, so that the same callback followed twice is stopped once each.
    const entry: Callback = (reason) => { callback(reason) }
    followed.callbacks.add(entry)
    const f = followed
    return () => {
      if (!f.callbacks.delete(entry) || f.callbacks.size > 0 || this.#followed.get(f.state.id) !== f) return
      this.#drop(f)
    }
  }

  /**
   * Opens the subscription while anyone follows or listens; closes it once nobody has for
   * LINGER_MS (at once on close), so that connections that come and go (a page reloaded, a
   * socket reconnecting) do not open and close a subscription each.
   */
  #subscription (): void {
    const wanted = !this.#closed && (this.#listening || this.#followed.size > 0)
    if (wanted) {
      clearTimeout(this.#linger)
      this.#linger = undefined
      this.#unsubscribe ??= this.#bus.subscribe({ revoked: (r) => { this.#received(r) }, resync: (keys) => { this.#resync(keys) } })
      return
    }
    if (this.#unsubscribe === undefined) return
    if (this.#closed) this.#leave()
    else this.#linger ??= setTimeout(() => { this.#leave() }, LINGER_MS).unref()
  }

  #leave (): void {
    clearTimeout(this.#linger)
    this.#linger = undefined
    const unsubscribe = this.#unsubscribe
    this.#unsubscribe = undefined
    unsubscribe?.()
  }

  #arm (f: Followed): void {
    clearTimeout(f.timer)
    const delay = Math.min(MAX_DELAY, Math.max(0, f.expiresAt - this.#clock()))
    f.timer = setTimeout(() => { this.#check([f], 'expired') }, delay).unref()
  }

  #drop (f: Followed): void {
    clearTimeout(f.timer)
    this.#followed.delete(f.state.id)
    // A sharded channel is left a little later too, for the same reason as the subscription.
    if (this.#closed) {
      f.unfollow()
    } else {
      const later = setTimeout(() => {
        this.#unfollows.delete(later)
        f.unfollow()
      }, LINGER_MS).unref()
      this.#unfollows.set(later, f.unfollow)
    }
    this.#subscription()
  }

  /** The session (followed now) ended: each callback once, then it is no longer followed. */
  #end (f: Followed, reason: RevokedReason): void {
    this.#drop(f)
    for (const callback of f.callbacks) {
      try {
        callback(reason)
      } catch (err) {
        this.#log.error({ err }, 'an onRevoked callback threw')
      }
    }
  }

  #received (r: Revocation): void {
    const events = this.#events
    for (const id of r.ids) {
      const f = this.#followed.get(id)
      if (f !== undefined) this.#end(f, r.reason)
      if (events?.listening('revoked') === true) events.emit('revoked', { id, userId: r.userId, at: r.at, reason: r.reason })
    }
    // A revocation of a user's sessions beyond the ids listed: check those followed here.
    if (r.userId === undefined) return
    const listed = new Set([...r.ids, ...(r.except ?? [])])
    const suspects: Followed[] = []
    for (const f of this.#followed.values()) {
      if (f.state.userId === r.userId && !listed.has(f.state.id)) suspects.push(f)
    }
    this.#check(suspects, r.reason)
  }

  /**
   * The subscription (or, on a sharded bus, the channels of `keys`) is heard from now on, and
   * what was published before may have been missed: each session it concerns, once against the store.
   */
  #resync (keys: readonly string[] | undefined): void {
    const all = [...this.#followed.values()]
    if (keys === undefined) {
      this.#check(all, 'unknown')
      return
    }
    const wanted = new Set(keys)
    this.#check(all.filter((f) => wanted.has(sessionKey(f.state.id))), 'unknown')
  }

  /** Asks the store about each session; ends those that are gone, re-arms the others' timers. */
  #check (sessions: Followed[], reason: RevokedReason): void {
    let next = 0
    const run = async (): Promise<void> => {
      while (next < sessions.length) {
        const f = sessions[next++] as Followed
        let outcome: { expiresAt: number | undefined } | { error: Error }
        try {
          outcome = { expiresAt: await this.#alive(f.state) }
        } catch (err) {
          outcome = { error: err as Error }
        }
        // Ended, or no longer followed, while the store was asked: nothing more to do.
        if (this.#followed.get(f.state.id) !== f) continue
        clearTimeout(f.timer)
        if ('error' in outcome) {
          this.#log.warn({ err: { message: outcome.error.message } }, 'session store unavailable while checking a live connection; trying again')
          f.timer = setTimeout(() => { this.#check([f], reason) }, RETRY_MS).unref()
          continue
        }
        const now = this.#clock()
        const { expiresAt } = outcome
        if (expiresAt !== undefined && expiresAt > now) {
          f.expiresAt = expiresAt
          this.#arm(f)
          continue
        }
        // Gone before the deadline this instance knew: not expired, and nobody said why (yet).
        const ended = reason === 'expired' && expiresAt === undefined && f.expiresAt > now ? 'unknown' : reason
        // Nobody said why yet: the message that does may be on its way.
        if (ended === 'unknown') f.timer = setTimeout(() => { this.#gone(f, ended) }, REASON_GRACE_MS).unref()
        else this.#gone(f, ended)
      }
    }
    // run() cannot reject: every await in it is caught, and callbacks and listeners are guarded.
    for (let i = 0; i < Math.min(CHECKS_AT_ONCE, sessions.length); i++) run()
  }

  /** A check found the session (followed still: a drop clears the grace timer) ended: its callbacks, and the event for whoever listens. */
  #gone (f: Followed, reason: RevokedReason): void {
    this.#end(f, reason)
    const events = this.#events
    if (events?.listening('revoked') === true) events.emit('revoked', { id: f.state.id, userId: f.state.userId, at: this.#clock(), reason })
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const f of [...this.#followed.values()]) this.#drop(f)
    for (const [timer, unfollow] of this.#unfollows) {
      clearTimeout(timer)
      unfollow()
    }
    this.#unfollows.clear()
    this.#subscription()
  }
}
