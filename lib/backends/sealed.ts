import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { SessionCore } from './core.js'
import { FST_SESSION_STORE_UNSUPPORTED } from '../errors.js'
import { announce } from '../bus/announce.js'
import type { Revocation, RevocationBus } from '../bus/bus.js'
import { localBus } from '../bus/local.js'
import { isSessionId, tagOf } from '../crypto/ids.js'
import { encodePolicy, type Policy } from './policy.js'
import { withStoreErrors } from './store-errors.js'
import type { RevocationStore, StatelessStore } from '../stores/store.js'
import type { Backend, DataChange, Issued, LoadResult, NewSession, Persisted, SessionRecord, SessionState } from './backend.js'
import { SessionIds } from './owned.js'

// A stateless store (the cookie store): the whole session travels in the cookie, sealed.
// Nothing is stored; the deadlines are checked here on the plugin's clock, and the revocation
// store (which the plugin requires) is asked once per request and is what makes a logout stop
// copies of the cookie too.

/** A sealed session: what the cookie carries, no secret (the seal is the credential). */
export interface SealedState extends SessionState {
  /** The absolute deadline sealed into the cookie. */
  readonly absoluteAt: number
  /** The user's revocation generation when the session was issued; 0 for none. */
  readonly generation: number
}

/** What a stateless store cannot do: it keeps no session on the server to read or change. */
function unlisted (what: string): Error {
  return new FST_SESSION_STORE_UNSUPPORTED(what, 'a stateless store keeps no session on the server; use a server-side store such as "memory" or "redis"')
}

export class SealedBackend implements Backend<SealedState> {
  readonly core: SessionCore
  /** Revocations are kept for the app's absoluteTtl, so no session may be given a longer one. */
  readonly maxAbsoluteTtl: number
  readonly bus: RevocationBus
  readonly binding = undefined
  readonly #store: StatelessStore
  readonly #revocation: RevocationStore
  /** The ids are tagged with the owner key the revocation store keeps. */
  readonly #ids: SessionIds
  readonly #log: FastifyBaseLogger

  constructor (core: SessionCore, store: StatelessStore, revocation: RevocationStore, log: FastifyBaseLogger) {
    this.core = core
    this.maxAbsoluteTtl = core.options.absoluteTtl
    this.#store = store
    this.#revocation = revocation
    this.#ids = new SessionIds(revocation)
    this.#log = log
    this.bus = revocation.bus ?? localBus(store, log)
  }

  #announce (revocation: Revocation): void {
    announce(this.bus, this.#log, revocation)
  }

  /** Opens the seal, checks the deadlines here, then asks revocation (one round trip). */
  async load (log: FastifyBaseLogger, raw: string, bearer: boolean | undefined): Promise<LoadResult<SealedState>> {
    const core = this.core
    const opened = this.#store.open(raw)
    if (opened === undefined) return core.reject(log, 'bad seal')
    const s = opened.session
    // A sealing store carries no bearer tokens (the plugin refuses `bearer: true` with one).
    const policy = core.policyFor(s.policy, bearer)
    if (policy === undefined) return core.reject(log, 'unreadable settings')
    const now = core.now()
    // Revocations are kept for the app's absoluteTtl: no sealed session may outlive it.
    const absoluteAt = Math.min(s.absoluteAt, s.createdAt + Math.min(core.absoluteTtlOf(policy), core.absoluteTtlMs))
    const expiresAt = Math.min(s.expiresAt, absoluteAt)
    if (expiresAt <= now) return core.reject(log, 'expired')
    let revoked: boolean
    try {
      // A user's id without the tag of that user under the revocation store's key: not one this store issued.
      if (s.userId !== undefined && this.#ids.tagged && tagOf(s.id) !== await this.#ids.tag(s.userId)) return core.reject(log, 'unknown')
      revoked = await this.#revocation.isRevoked(s.id, s.userId, s.generation)
    } catch (err) {
      return core.unavailable(log, err)
    }
    if (revoked) return core.reject(log, 'revoked')
    const state: SealedState = {
      id: s.id,
      userId: s.userId,
      data: s.data,
      createdAt: s.createdAt,
      lastSeenAt: now,
      expiresAt,
      absoluteAt,
      authenticatedAt: s.authenticatedAt,
      generation: s.generation,
      policy: s.policy
    }
    return { kind: 'loaded', state, secret: '', renew: opened.renew, policy }
  }

  /** What the cookie says; a sealed session keeps no client address. */
  record (state: SealedState, policy: Policy): SessionRecord {
    return {
      id: state.id,
      userId: state.userId,
      data: state.data,
      createdAt: state.createdAt,
      lastSeenAt: state.lastSeenAt,
      expiresAt: state.expiresAt,
      authenticatedAt: state.authenticatedAt,
      ip: undefined,
      userAgent: undefined,
      ...this.core.settingsOf(policy),
      deviceBound: false
    }
  }

  /** Nothing is stored: a session of a user is sealed under the user's current revocation generation. */
  async create (_request: FastifyRequest, init: NewSession): Promise<Issued<SealedState>> {
    const core = this.core
    const generation = init.userId === undefined ? 0 : await this.#revocation.generation(init.userId)
    const now = core.now()
    const absoluteAt = init.createdAt + core.absoluteTtlOf(init.policy)
    return {
      secret: '',
      state: {
        id: init.id ?? await this.#ids.newId(init.userId),
        userId: init.userId,
        data: init.data,
        createdAt: init.createdAt,
        lastSeenAt: now,
        expiresAt: core.deadline(init.createdAt, now, init.policy),
        absoluteAt,
        authenticatedAt: init.authenticatedAt,
        generation,
        policy: encodePolicy(init.policy)
      }
    }
  }

  /** The data travel in the cookie: any change, or a refresh, seals it again. */
  async persist (state: SealedState, _change: DataChange | undefined, _data: Record<string, unknown>, now: number,
    expiresAt: number | undefined): Promise<Persisted<SealedState>> {
    return { state: { ...state, lastSeenAt: now, expiresAt: expiresAt ?? state.expiresAt }, resend: true }
  }

  /** Deny-listed until its absolute deadline by the revocation store. */
  async drop (state: SealedState, reason: 'destroy' | 'replaced'): Promise<boolean> {
    const revoked = await this.#revocation.revoke(state.id, state.absoluteAt)
    if (revoked) this.#announce({ ids: [state.id], userId: state.userId, reason, at: this.core.now() })
    return revoked
  }

  /** Nothing is stored: the deadline is the one sealed into the cookie, unless the session was revoked. */
  async alive (state: SealedState): Promise<number | undefined> {
    return await this.#revocation.isRevoked(state.id, state.userId, state.generation) ? undefined : state.expiresAt
  }

  cookieValue (request: FastifyRequest, state: SealedState, _secret: string, data: Record<string, unknown>): string {
    const value = this.#store.seal({
      id: state.id,
      userId: state.userId,
      data,
      createdAt: state.createdAt,
      expiresAt: state.expiresAt,
      absoluteAt: state.absoluteAt,
      authenticatedAt: state.authenticatedAt,
      generation: state.generation,
      policy: state.policy
    })
    this.core.checkCookieSize(request, value, state.expiresAt)
    return value
  }

  async get (): Promise<never> {
    throw unlisted('get')
  }

  async upsert (): Promise<never> {
    throw unlisted('upsert')
  }

  async getAll (): Promise<never> {
    throw unlisted('getAll')
  }

  /** Its absolute deadline is in the cookie, not here: deny-list the id as long as any session can live. */
  async delete (sessionId: string, userId: string | undefined): Promise<boolean> {
    // Without an owner key nothing on the server says whose an id is: such a store revokes by id alone (no userId).
    if (await withStoreErrors(this.#ids.owned(sessionId, userId)) !== true) return false
    const core = this.core
    const revoked = await withStoreErrors(this.#revocation.revoke(sessionId, core.now() + core.absoluteTtlMs))
    if (revoked) this.#announce({ ids: [sessionId], userId, reason: 'delete', at: core.now() })
    return revoked
  }

  /** A stateless store cannot count the cookies it revoked: it resolves 0. */
  async deleteAll (userId: string | undefined, except: readonly string[]): Promise<number> {
    if (userId === undefined) return 0
    const tag = await withStoreErrors(this.#ids.tag(userId))
    const kept = except.filter((s) => typeof s === 'string' && isSessionId(s) && tagOf(s) === tag)
    const core = this.core
    await withStoreErrors(this.#revocation.revokeAll(userId, kept, core.now() + core.absoluteTtlMs))
    // Which cookies are out there nobody knows: the message names the user; each instance checks those it follows.
    this.#announce({ ids: [], userId, except: kept, reason: 'deleteAll', at: core.now() })
    return 0
  }

  async close (): Promise<void> {
    await this.#store.close?.()
  }
}
