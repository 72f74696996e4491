import type { FastifyReply, FastifyRequest } from 'fastify'
import { storeError, withStoreErrors, type LoadedToken, type SessionCore } from './core.js'
import { FST_SESSION_NOT_FRESH, FST_SESSION_OPTION_INVALID, FST_SESSION_REVOKED } from './errors.js'
import { newSecret, newSessionId, normalizeUserId } from './ids.js'
import { checkKey, checkValue, emptyData, type LoginOptions, type SessionKey, type SessionValue } from './session-data.js'
import { isStateless, type SessionPatch, type StoredSession } from './stores/store.js'

interface Changes {
  clear: boolean
  set: Record<string, unknown>
  unset: Set<string>
}

/**
 * `request.session`. Lazy: nothing is stored and no cookie is sent until something is written.
 * Changes are kept as a patch and applied atomically by the store when the response is sent
 * (or on `save()`), so concurrent requests that change different keys both keep their change.
 */
export class Session {
  readonly #core: SessionCore
  readonly #request: FastifyRequest
  /** The stored session this object stands for; undefined until it is first stored. */
  #record: StoredSession | undefined
  #id: string | undefined
  #secret: string | undefined
  #data: Record<string, unknown>
  #changes: Changes | undefined
  #sendCookie = false
  #expireCookie = false
  #touched = false
  #error: Error | undefined
  #committed = false

  /** @internal Built by the plugin; use `request.session`. */
  constructor (core: SessionCore, request: FastifyRequest, token?: LoadedToken, expireCookie = false, error?: Error) {
    this.#core = core
    this.#request = request
    this.#error = error
    this.#expireCookie = expireCookie
    if (token === undefined) {
      this.#data = emptyData()
      return
    }
    this.#record = token.record
    this.#id = token.record.id
    this.#secret = token.secret
    this.#data = Object.assign(emptyData(), token.record.data)
    this.#sendCookie = token.renew
  }

  #available (): void {
    if (this.#error !== undefined) throw this.#error
  }

  /** The public handle of this session: safe to show on a devices page and to pass to `app.sessions.delete`. */
  get id (): string {
    this.#available()
    if (this.#id === undefined) {
      this.#id = newSessionId(undefined)
      this.#secret = newSecret()
    }
    return this.#id
  }

  /** The user this session is bound to by `login()`; undefined for an anonymous session. */
  get userId (): string | undefined {
    this.#available()
    return this.#record?.userId
  }

  /** Milliseconds since the epoch; undefined until the session is stored. */
  get createdAt (): number | undefined {
    this.#available()
    return this.#record?.createdAt
  }

  /** When the store last saw the session written (or, for the memory store, read); ms since the epoch. */
  get lastSeenAt (): number | undefined {
    this.#available()
    return this.#record?.lastSeenAt
  }

  /** The effective deadline (idle or absolute, the earlier), in milliseconds since the epoch. */
  get expiresAt (): number | undefined {
    this.#available()
    return this.#record?.expiresAt
  }

  /** When `login()` bound this session to its user, in milliseconds since the epoch. */
  get authenticatedAt (): number | undefined {
    this.#available()
    return this.#record?.authenticatedAt
  }

  /** True until the session is stored. */
  get isNew (): boolean {
    this.#available()
    return this.#record === undefined
  }

  get<K extends SessionKey> (key: K): SessionValue<K> | undefined {
    this.#available()
    return (Object.hasOwn(this.#data, key) ? this.#data[key] : undefined) as SessionValue<K> | undefined
  }

  has (key: SessionKey): boolean {
    this.#available()
    return Object.hasOwn(this.#data, key)
  }

  /** Sets a JSON-compatible value; `undefined` deletes the key. Call it again after mutating a value in place. */
  set<K extends SessionKey> (key: K, value: SessionValue<K>): this {
    this.#available()
    checkKey(key)
    if (value === undefined) return this.delete(key)
    checkValue(key, value)
    this.#data[key] = value
    const changes = this.#pending()
    changes.set[key] = value
    changes.unset.delete(key)
    return this
  }

  delete (key: SessionKey): this {
    this.#available()
    checkKey(key)
    delete this.#data[key]
    const changes = this.#pending()
    delete changes.set[key]
    changes.unset.add(key)
    return this
  }

  /** Removes every key. */
  clear (): this {
    this.#available()
    this.#data = emptyData()
    this.#changes = { clear: true, set: emptyData(), unset: new Set() }
    return this
  }

  /** A copy of the session data. */
  toJSON (): Record<string, unknown> {
    this.#available()
    return { ...this.#data }
  }

  /** Pushes the idle deadline back on this response, whatever `refreshFraction` says. */
  touch (): this {
    this.#available()
    this.#touched = true
    return this
  }

  /** True when the user logged in within the last `seconds`; for routes that want a recent login. */
  isFresh (seconds: number): boolean {
    this.#available()
    if (!(typeof seconds === 'number' && seconds > 0)) {
      throw new FST_SESSION_OPTION_INVALID('seconds', 'must be a positive number')
    }
    const at = this.#record?.authenticatedAt
    return at !== undefined && this.#core.now() - at <= seconds * 1000
  }

  /** Throws `FST_SESSION_NOT_FRESH` (401) unless the user logged in within the last `seconds`. */
  requireFresh (seconds: number): void {
    if (!this.isFresh(seconds)) throw new FST_SESSION_NOT_FRESH()
  }

  #pending (): Changes {
    this.#changes ??= { clear: false, set: emptyData(), unset: new Set() }
    return this.#changes
  }

  /** Replaces the stored session with a new one holding `data`; the old id stops working at once. */
  async #replace (userId: string | undefined, data: Record<string, unknown>, createdAt: number,
    authenticatedAt: number | undefined): Promise<void> {
    const core = this.#core
    const old = this.#record
    const { record, secret } = await core.insert(this.#request,
      core.newRecord(this.#request, userId, { ...data }, createdAt, authenticatedAt))
    if (old !== undefined) {
      try {
        await core.drop(old)
      } catch (err) {
        // The new session exists; the old one must not outlive the switch. Undo and report.
        await core.drop(record).catch(() => {})
        throw storeError(err)
      }
    }
    this.#record = record
    this.#id = record.id
    this.#secret = secret
    this.#data = Object.assign(emptyData(), data)
    this.#changes = undefined
    this.#sendCookie = true
    this.#expireCookie = false
  }

  /** A new id and secret for the same data (Plug's renew): call it on any privilege change. */
  async regenerate (): Promise<void> {
    this.#available()
    const record = this.#record
    if (record === undefined) {
      this.#id = undefined
      this.#secret = undefined
      return
    }
    await withStoreErrors(this.#replace(record.userId, this.#data, record.createdAt, record.authenticatedAt))
  }

  /**
   * Binds the session to a user: a new id and secret (the old id is deleted from the store),
   * indexed under the user, with `authenticatedAt` set. Data is not carried over unless
   * `keepData` says so, so that nothing planted before login (a CSRF secret, say) survives it.
   */
  async login (userId: string | number, options: LoginOptions = {}): Promise<void> {
    this.#available()
    const id = normalizeUserId(userId)
    const keep = options.keepData ?? false
    let data = emptyData()
    if (keep === true) data = this.#data
    else if (Array.isArray(keep)) {
      for (const key of keep) if (Object.hasOwn(this.#data, key)) data[key] = this.#data[key]
    }
    const now = this.#core.now()
    await withStoreErrors(this.#replace(id, data, now, now))
  }

  /** Deletes the session from the store and expires its cookie (Plug's drop). The object becomes a fresh anonymous session. */
  async destroy (): Promise<void> {
    this.#available()
    const record = this.#record
    if (record !== undefined) await withStoreErrors(this.#core.drop(record))
    this.#expireCookie ||= record !== undefined || this.#sendCookie
    this.#forget()
  }

  /** Back to a fresh anonymous session, nothing stored, nothing pending. */
  #forget (): void {
    this.#record = undefined
    this.#id = undefined
    this.#secret = undefined
    this.#data = emptyData()
    this.#changes = undefined
    this.#sendCookie = false
    this.#touched = false
  }

  /**
   * Writes pending changes now; the plugin calls it when the response is sent. Throws
   * `FST_SESSION_REVOKED` when the session was deleted (by `deleteAll`, say) meanwhile:
   * a revoked session is never brought back.
   */
  async save (): Promise<void> {
    this.#available()
    await withStoreErrors(this.#save())
    // A stateless store writes nothing until the response: check now that the cookie will fit.
    const store = this.#core.store
    if (isStateless(store) && this.#sendCookie) {
      this.#core.seal(this.#request, store, this.#record as StoredSession, this.#data)
    }
  }

  async #save (): Promise<void> {
    const core = this.#core
    const record = this.#record
    if (record === undefined) {
      if (this.#changes === undefined && !this.#touched) return
      const now = core.now()
      const { record: stored, secret } = await core.insert(this.#request,
        core.newRecord(this.#request, undefined, { ...this.#data }, now, undefined, this.#id, this.#secret))
      this.#record = stored
      this.#id = stored.id
      this.#secret = secret
      this.#changes = undefined
      this.#touched = false
      this.#sendCookie = true
      this.#expireCookie = false
      return
    }
    const now = core.now()
    const deadline = core.deadline(record.createdAt, now)
    const refresh = deadline > record.expiresAt && (this.#touched || this.#rollingDue(record, deadline))
    const changes = this.#changes
    if (changes === undefined && !refresh) return
    const store = core.store
    if (isStateless(store)) {
      // The data travel in the cookie: any change, or a refresh, seals it again.
      this.#changes = undefined
      this.#touched = false
      this.#record = { ...record, lastSeenAt: now, expiresAt: refresh ? deadline : record.expiresAt }
      this.#sendCookie = true
      return
    }
    const patch: SessionPatch = {
      clear: changes?.clear ?? false,
      set: changes?.set ?? emptyData(),
      unset: changes === undefined ? [] : [...changes.unset],
      lastSeenAt: now,
      expiresAt: refresh ? deadline : undefined
    }
    if (!await store.patch(record.id, patch)) {
      this.#forget()
      this.#expireCookie = true
      throw new FST_SESSION_REVOKED()
    }
    this.#changes = undefined
    this.#touched = false
    this.#record = { ...record, lastSeenAt: now, expiresAt: patch.expiresAt ?? record.expiresAt }
    if (refresh) this.#sendCookie = true
  }

  /** Rolling expiry: the deadline `deadline` is far enough past the stored one to be written. */
  #rollingDue (record: StoredSession, deadline: number): boolean {
    const core = this.#core
    return core.options.rolling && deadline - record.expiresAt >= core.refreshStepMs
  }

  /** True when `#save` would write to the store (or, for a stateless store, seal again). */
  #mustSave (): boolean {
    if (this.#changes !== undefined || this.#touched) return true
    const record = this.#record
    return record !== undefined && this.#rollingDue(record, this.#core.deadline(record.createdAt, this.#core.now()))
  }

  /**
   * @internal Saves and sets or expires the cookie; run once, from the plugin's onSend hook.
   * Returns undefined when there was nothing to save (the common read): the response goes
   * on without a round through the microtask queue.
   */
  commit (reply: FastifyReply): Promise<void> | undefined {
    // A 5xx reply saves nothing: the client was told the request failed (and after a failed
    // save(), a second try during an outage would fail again and reach Fastify's own handler).
    if (this.#committed || this.#error !== undefined || reply.statusCode >= 500) return undefined
    this.#committed = true
    if (this.#mustSave()) return this.#saveAndCommit(reply)
    this.#writeCookie(reply)
    return undefined
  }

  async #saveAndCommit (reply: FastifyReply): Promise<void> {
    try {
      await this.#save()
    } catch (err) {
      if ((err as { code?: string }).code !== 'FST_SESSION_REVOKED') throw storeError(err)
      this.#request.log.info('session revoked while the request was in flight; its changes were discarded')
    }
    this.#writeCookie(reply)
  }

  #writeCookie (reply: FastifyReply): void {
    const record = this.#record
    if (record !== undefined && this.#sendCookie) {
      this.#core.writeCookie(reply, record, this.#secret as string, this.#data)
    } else if (record === undefined && this.#expireCookie) {
      this.#core.clearCookie(reply)
    }
  }
}
