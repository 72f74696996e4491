import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Backend, Issued, LoadResult, SessionState } from '../backends/backend.js'
import { cookieOverrides, type CookieAttributeOverrides, type SessionCookieOverrides } from '../backends/cookie-overrides.js'
import type { SessionCore } from '../backends/core.js'
import { FST_SESSION_NOT_FRESH, FST_SESSION_OPTION_INVALID, FST_SESSION_REVOKED } from '../errors.js'
import { newSessionId, normalizeUserId } from '../crypto/ids.js'
import type { RevokedReason, SessionEventEmitter } from './events.js'
import type { Watcher } from './watch.js'
import { DEFAULT_POLICY, type Policy } from '../backends/policy.js'
import { loginPolicy, type LoginOptions } from './login.js'
import { checkKey, checkValue, emptyData, type SessionKey, type SessionValue } from '../stores/data.js'
import { storeError, withStoreErrors } from '../backends/store-errors.js'
import { kKeys, kMethod, properties } from './properties.js'

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
/**
 * What a response does to the session, after Plug.Session's `before_send`: write pending
 * changes (then send or expire the cookie as the write leaves it), send the cookie again
 * without a write (a new credential, a rotated key), expire it, or nothing (the common read).
 */
type Outcome = 'write' | 'renew' | 'drop' | 'none'

/** A session created by the first write of an anonymous session on a bearer request travels as a token too. */
const BEARER: Policy = Object.freeze({ ...DEFAULT_POLICY, transport: 'bearer' as const })

/** What every session of one plugin instance works with, made once at register(). */
/** @internal What `request.session` is: the Session seen through the Proxy that gives its data as properties. */
export const kView = Symbol('fastify-user-sessions.view')
/** @internal Writes what the response leaves to write; run by the plugin's onSend hook. */
export const kCommit = Symbol('fastify-user-sessions.commit')

/** The session cookie as `request.session.cookie` shows it, read-only (express-session's and @fastify/session's `cookie`). */
export interface SessionCookie {
  readonly path: string
  readonly domain: string | undefined
  readonly secure: boolean | 'auto'
  readonly httpOnly: boolean
  readonly sameSite: 'lax' | 'strict' | 'none'
  readonly partitioned: boolean
  /** When the cookie expires; null for a cookie that dies with the browser, or a session not stored yet. */
  readonly expires: Date | null
  /** Milliseconds until `expires`; null when it is. */
  readonly maxAge: number | null
  /** The session's idle timeout in milliseconds (what `maxAge` starts from); null for a cookie that dies with the browser. */
  readonly originalMaxAge: number | null
}

/** A callback in the style of express-session's and @fastify/session's methods. */
export type SessionCallback = (err?: Error | null) => void

export interface SessionContext {
  readonly backend: Backend
  /** The lifecycle events (`app.sessions.on`). */
  readonly events: SessionEventEmitter
  /** Follows the sessions of live connections (`onRevoked`). */
  readonly watcher: Watcher
}

export class Session {
  readonly #context: SessionContext
  readonly #backend: Backend
  readonly #core: SessionCore
  readonly #request: FastifyRequest
  /** The session as stored (or sealed) when it was loaded or last written; undefined until it is first stored. */
  #state: SessionState | undefined
  /** The id shown by `id` before the session is first stored. */
  #id: string | undefined
  #secret = ''
  /** Its own settings (login()'s lifetimes, its transport); the app's until then. */
  #policy: Policy = DEFAULT_POLICY
  /** The request came with a bearer token: its response never sets the session cookie. */
  readonly #bearerRequest: boolean
  /** The request came with a session cookie (live or not). */
  readonly #hadCookie: boolean
  /** The credential was issued by this request (login, regenerate, first write): `token` shows it. */
  #issued = false
  #data: Record<string, unknown>
  #changes: Changes | undefined
  /** The cookie goes out on this response. */
  #resend = false
  /** The cookie the request carried is to be expired. */
  #expire = false
  #touched = false
  #error: Error | undefined
  #committed = false
  /** The cookie value for the current state and data, once made. */
  #cookie: string | undefined
  /** The JSON of values as the app last saw them (objects it got, values it set), so that `set` tells a change even after a value was mutated in place. */
  #seen: Map<string, string> | undefined
  #cookieOverrides: CookieAttributeOverrides | undefined
  /** The `Secure-Session-Registration` header that goes out with the cookie of a session just created (DBSC). */
  #registration: string | undefined
  /** `request.session`: this session behind the Proxy that gives its data as properties; made on first read. */
  #view: Session | undefined
  /** Its methods bound to it, as the Proxy hands them out. */
  #bound: Record<string, unknown> | undefined

  /** @internal Built by the plugin from what the request's cookie gave; use `request.session`. */
  constructor (context: SessionContext, request: FastifyRequest, start: LoadResult, bearer = false) {
    this.#context = context
    this.#backend = context.backend
    this.#core = context.backend.core
    this.#request = request
    this.#bearerRequest = bearer
    this.#hadCookie = !bearer && start.kind !== 'none'
    this.#data = emptyData()
    switch (start.kind) {
      case 'rejected':
        this.#expire = !bearer
        break
      case 'unavailable':
        this.#error = start.error
        break
      case 'loaded':
        this.#state = start.state
        this.#secret = start.secret
        this.#policy = start.policy
        this.#data = Object.assign(this.#data, start.state.data)
        this.#resend = start.renew
        break
      default:
        nothing(start.kind)
    }
  }

  #available (): void {
    if (this.#error !== undefined) throw this.#error
  }

  /** What methods that chain return: `request.session` as the app holds it. */
  #self (): this {
    return this[kView]() as this
  }

  /** @internal `request.session`: this session behind the Proxy that gives its data as properties. */
  [kView] (): Session {
    this.#view ??= new Proxy(this, properties as ProxyHandler<Session>)
    return this.#view
  }

  /** @internal The method `name` bound to this session, as the Proxy hands it out. */
  [kMethod] (name: string): unknown {
    const bound = this.#bound ??= Object.create(null) as Record<string, unknown>
    bound[name] ??= ((this as unknown as Record<string, () => unknown>)[name] as () => unknown).bind(this)
    return bound[name]
  }

  /** @internal The data keys, for the Proxy's `Object.keys`. */
  [kKeys] (): string[] {
    this.#available()
    return Object.keys(this.#data)
  }

  /** `id`, by the name @fastify/session gives it. */
  get sessionId (): string {
    return this.id
  }

  /**
   * The session cookie's attributes and deadline, read-only: express-session's and
   * @fastify/session's `cookie`. A session's lifetime is set by `login()` (`persistent`, `ttl`,
   * `absoluteTtl`) and pushed back by `touch()`, not by writing here.
   */
  get cookie (): SessionCookie {
    this.#available()
    const c = this.#core.options.cookie
    const settings = this.#core.settingsOf(this.#policy)
    const expiresAt = settings.persistent ? this.#state?.expiresAt : undefined
    const o = this.#cookieOverrides
    return Object.freeze({
      path: c.path,
      domain: c.domain,
      secure: o?.secure ?? c.secure,
      httpOnly: o?.httpOnly ?? c.httpOnly,
      sameSite: o?.sameSite ?? c.sameSite,
      partitioned: c.partitioned,
      expires: expiresAt === undefined ? null : new Date(expiresAt),
      maxAge: expiresAt === undefined ? null : Math.max(0, expiresAt - this.#core.now()),
      originalMaxAge: settings.persistent ? settings.ttl * 1000 : null
    })
  }

  /** The public handle of this session: safe to show on a devices page and to pass to `app.sessions.delete`. */
  get id (): string {
    this.#available()
    return this.#state?.id ?? (this.#id ??= newSessionId(undefined))
  }

  /** The user this session is bound to by `login()`; undefined for an anonymous session. */
  get userId (): string | undefined {
    this.#available()
    return this.#state?.userId
  }

  /** Milliseconds since the epoch; undefined until the session is stored. */
  get createdAt (): number | undefined {
    this.#available()
    return this.#state?.createdAt
  }

  /** When the store last saw the session written (or, for the memory store, read); ms since the epoch. */
  get lastSeenAt (): number | undefined {
    this.#available()
    return this.#state?.lastSeenAt
  }

  /** The effective deadline (idle or absolute, the earlier), in milliseconds since the epoch. */
  get expiresAt (): number | undefined {
    this.#available()
    return this.#state?.expiresAt
  }

  /** When `login()` bound this session to its user, in milliseconds since the epoch. */
  get authenticatedAt (): number | undefined {
    this.#available()
    return this.#state?.authenticatedAt
  }

  /**
   * The bearer token of a session that travels as one (`login(id, { transport: 'bearer' })`),
   * on the response that issued it only: hand it to the client once. Never stored, never logged;
   * undefined otherwise. A session first stored when the response is sent shows it after `save()`.
   */
  get token (): string | undefined {
    this.#available()
    const state = this.#state
    if (state === undefined || !this.#issued || this.#policy.transport !== 'bearer') return undefined
    return this.#backend.cookieValue(this.#request, state, this.#secret, this.#data)
  }

  /** True until the session is stored. */
  get isNew (): boolean {
    this.#available()
    return this.#state === undefined
  }

  get<K extends SessionKey> (key: K): SessionValue<K> | undefined {
    this.#available()
    if (!Object.hasOwn(this.#data, key)) return undefined
    const value = this.#data[key]
    this.#see(key, value)
    return value as SessionValue<K>
  }

  /** Before an object is handed out (and may be mutated in place), remember its JSON. */
  #see (key: string, value: unknown): void {
    if (typeof value !== 'object' || value === null) return
    this.#seen ??= new Map()
    if (!this.#seen.has(key)) this.#seen.set(key, JSON.stringify(value))
  }

  has (key: SessionKey): boolean {
    this.#available()
    return Object.hasOwn(this.#data, key)
  }

  /**
   * Sets a JSON-compatible value; `undefined` deletes the key. Call it again after mutating a value in place.
   * A value equal as JSON to the current one is no change: nothing is written, no cookie is sent.
   */
  set<K extends SessionKey> (key: K, value: SessionValue<K>): this {
    this.#available()
    checkKey(key)
    if (value === undefined) return this.delete(key)
    const json = checkValue(key, value)
    const unchanged = Object.hasOwn(this.#data, key) && (this.#seen?.get(key) ?? JSON.stringify(this.#data[key])) === json
    this.#data[key] = value
    // Only an object can change in place behind the session's back; a primitive is its own JSON.
    if (typeof value === 'object' && value !== null) {
      this.#seen ??= new Map()
      this.#seen.set(key, json)
    } else {
      this.#seen?.delete(key)
    }
    if (unchanged) return this.#self()
    this.#cookie = undefined
    const changes = this.#pending()
    changes.set[key] = value
    changes.unset.delete(key)
    return this.#self()
  }

  /** Deleting a key the session does not hold is no change. */
  delete (key: SessionKey): this {
    this.#available()
    checkKey(key)
    if (!Object.hasOwn(this.#data, key)) return this.#self()
    delete this.#data[key]
    this.#seen?.delete(key)
    this.#cookie = undefined
    const changes = this.#pending()
    delete changes.set[key]
    changes.unset.add(key)
    return this.#self()
  }

  /** Removes every key. */
  clear (): this {
    this.#available()
    this.#data = emptyData()
    this.#seen = undefined
    this.#cookie = undefined
    this.#changes = { clear: true, set: emptyData(), unset: new Set() }
    return this.#self()
  }

  /** A copy of the session data. */
  toJSON (): Record<string, unknown> {
    this.#available()
    for (const key in this.#data) this.#see(key, this.#data[key])
    return { ...this.#data }
  }

  /**
   * Overrides attributes of the session cookie on this response, as `@fastify/secure-session`'s
   * `options()` does (`@fastify/csrf-protection` calls it from `reply.generateCsrf(opts)`). Only
   * overrides that make the cookie stricter are accepted (`secure: true`, `httpOnly: true`, a
   * stricter `sameSite`, `priority`); `userInfo` is ignored; anything else throws
   * `FST_SESSION_OPTION_INVALID`. Each call replaces the previous one; `undefined` resets.
   * It sends no cookie by itself, and is not stored with the session.
   */
  options (opts: SessionCookieOverrides | undefined): this {
    this.#available()
    this.#cookieOverrides = cookieOverrides(opts, this.#core.options.cookie)
    return this.#self()
  }

  /** Pushes the idle deadline back on this response, whatever `refreshFraction` says. */
  touch (): this {
    this.#available()
    this.#touched = true
    return this.#self()
  }

  /** True when the user logged in within the last `seconds`; for routes that want a recent login. */
  isFresh (seconds: number): boolean {
    this.#available()
    if (!(typeof seconds === 'number' && seconds > 0)) {
      throw new FST_SESSION_OPTION_INVALID('seconds', 'must be a positive number')
    }
    const at = this.#state?.authenticatedAt
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
    authenticatedAt: number | undefined, policy: Policy): Promise<void> {
    const backend = this.#backend
    const old = this.#state
    const issued = await backend.create(this.#request, { id: undefined, userId, data: { ...data }, createdAt, authenticatedAt, policy })
    if (old !== undefined) {
      try {
        await backend.drop(old, 'replaced')
      } catch (err) {
        // The new session exists; the old one must not outlive the switch. Undo and report.
        await backend.drop(issued.state, 'replaced').catch(() => {})
        throw storeError(err)
      }
    }
    this.#adopt(issued, policy)
    this.#data = Object.assign(emptyData(), data)
    // What the new session was created with is what later in-place changes are measured against.
    const seen = this.#seen
    if (seen !== undefined) {
      for (const key of seen.keys()) {
        if (Object.hasOwn(data, key)) seen.set(key, JSON.stringify(data[key]))
        else seen.delete(key)
      }
    }
  }

  /** The session just created becomes this one: nothing pending, its cookie (or token) to be sent. */
  #adopt (issued: Issued, policy: Policy): void {
    this.#state = issued.state
    this.#secret = issued.secret
    this.#policy = policy
    this.#issued = true
    this.#changes = undefined
    this.#touched = false
    this.#cookie = undefined
    this.#resend = true
    this.#expire = false
    this.#registration = issued.registration
  }

  /** The data of the keys in `keys` that the session holds. */
  #pick (keys: readonly unknown[]): Record<string, unknown> {
    const data = emptyData()
    for (const key of keys) if (typeof key === 'string' && Object.hasOwn(this.#data, key)) data[key] = this.#data[key]
    return data
  }

  /**
   * A new id and secret (Plug's renew): call it on any privilege change. The old id stops working
   * at once; the user binding stays. Without `keys`, all data is kept; with a list, only those keys
   * (as `@fastify/session`'s `regenerate(ignoreFields)`, which @fastify/passport calls at login).
   */
  regenerate (keys?: readonly string[]): Promise<void>
  regenerate (callback: SessionCallback): void
  regenerate (keys: readonly string[] | undefined, callback: SessionCallback): void
  regenerate (keys?: readonly string[] | SessionCallback, callback?: SessionCallback): Promise<void> | undefined {
    if (typeof keys === 'function') return settle(() => this.#regenerate(undefined), keys)
    return settle(() => this.#regenerate(keys), callback)
  }

  async #regenerate (keys: readonly string[] | undefined): Promise<void> {
    this.#available()
    if (keys !== undefined && !Array.isArray(keys)) throw new FST_SESSION_OPTION_INVALID('keys', 'must be a list of session keys')
    const data = keys === undefined ? this.#data : this.#pick(keys)
    const state = this.#state
    if (state === undefined) {
      this.#id = undefined
      if (keys !== undefined) {
        this.#data = data
        if (this.#changes !== undefined) this.#changes = { clear: true, set: Object.assign(emptyData(), data), unset: new Set() }
      }
      return
    }
    await withStoreErrors(this.#replace(state.userId, data, state.createdAt, state.authenticatedAt, this.#policy))
    this.#emit('regenerated', this.#state as SessionState, state.id)
  }

  /**
   * Binds the session to a user: a new id and secret (the old id is deleted from the store),
   * indexed under the user, with `authenticatedAt` set. Data is not carried over unless
   * `keepData` says so, so that nothing planted before login (a CSRF secret, say) survives it.
   * `persistent`, `ttl`, `absoluteTtl` and `transport` give this session settings of its own,
   * kept with it (and by `regenerate()`); anything invalid throws `FST_SESSION_OPTION_INVALID`.
   */
  async login (userId: string | number, options: LoginOptions = {}): Promise<void> {
    this.#available()
    const id = normalizeUserId(userId)
    const policy = loginPolicy(options, this.#core, this.#backend.maxAbsoluteTtl, this.#bearerRequest)
    const keep = options.keepData ?? false
    const data = keep === true ? this.#data : Array.isArray(keep) ? this.#pick(keep) : emptyData()
    const now = this.#core.now()
    const previous = this.#state?.id
    await withStoreErrors(this.#replace(id, data, now, now, policy))
    this.#emit('login', this.#state as SessionState, previous)
  }

  /** A lifecycle event, built only when this instance listens to it. */
  #emit (event: 'created' | 'login' | 'regenerated' | 'destroyed', state: SessionState, previousId?: string): void {
    const core = this.#core
    const events = this.#context.events
    if (!events.listening(event)) return
    const { ip, userAgent } = core.client(this.#request)
    const payload = { id: state.id, userId: state.userId, at: core.now(), ip, userAgent }
    events.emit(event, event === 'login' || event === 'regenerated' ? { ...payload, previousId } : payload)
  }

  /**
   * Runs `callback` once, when this session ends anywhere: deleted by `app.sessions.delete` or
   * `deleteAll` (on any instance sharing the store), `destroy()`, replaced by `login()` or
   * `regenerate()`, evicted, or past its deadline. For a live connection (WebSocket, SSE) opened
   * with this session: close it there. Returns the function that stops it (call it when the
   * connection closes). The session must be stored (after `login()` or `save()`).
   */
  onRevoked (callback: (reason: RevokedReason) => void): () => void {
    this.#available()
    if (typeof callback !== 'function') throw new FST_SESSION_OPTION_INVALID('callback', 'must be a function')
    const state = this.#state
    if (state === undefined) throw new FST_SESSION_OPTION_INVALID('onRevoked', 'the session is not stored yet: call it after login() or save()')
    return this.#context.watcher.follow(state, callback)
  }

  /**
   * Deletes the session from the store and expires its cookie (Plug's drop). The object becomes
   * a fresh anonymous session. With a callback (express-session's style), returns nothing and calls it.
   */
  destroy (): Promise<void>
  destroy (callback: SessionCallback): void
  destroy (callback?: SessionCallback): Promise<void> | undefined {
    return settle(() => this.#destroy(), callback)
  }

  async #destroy (): Promise<void> {
    this.#available()
    const state = this.#state
    if (state !== undefined) await withStoreErrors(this.#backend.drop(state, 'destroy'))
    this.#expire ||= !this.#bearerRequest && (state !== undefined || this.#resend)
    this.#forget()
    if (state !== undefined) this.#emit('destroyed', state)
  }

  /** Back to a fresh anonymous session, nothing stored, nothing pending. */
  #forget (): void {
    this.#state = undefined
    this.#id = undefined
    this.#secret = ''
    this.#policy = DEFAULT_POLICY
    this.#issued = false
    this.#data = emptyData()
    this.#seen = undefined
    this.#changes = undefined
    this.#cookie = undefined
    this.#resend = false
    this.#touched = false
    this.#registration = undefined
  }

  /**
   * Writes pending changes now; the plugin calls it when the response is sent. Throws
   * `FST_SESSION_REVOKED` when the session was deleted (by `deleteAll`, say) meanwhile:
   * a revoked session is never brought back.
   */
  save (): Promise<void>
  save (callback: SessionCallback): void
  save (callback?: SessionCallback): Promise<void> | undefined {
    return settle(() => this.#saveNow(), callback)
  }

  async #saveNow (): Promise<void> {
    this.#available()
    this.#collect()
    await withStoreErrors(this.#save())
    // The cookie value is made now, so that one a browser would drop (a sealed session too large) fails here.
    const state = this.#state
    if (state !== undefined && this.#resend) this.#cookie ??= this.#backend.cookieValue(this.#request, state, this.#secret, this.#data)
  }

  async #save (): Promise<void> {
    const core = this.#core
    const state = this.#state
    const now = core.now()
    if (state === undefined) {
      if (this.#changes === undefined && !this.#touched) return
      const policy = this.#bearerRequest ? BEARER : DEFAULT_POLICY
      this.#adopt(await this.#backend.create(this.#request,
        { id: this.#id, userId: undefined, data: { ...this.#data }, createdAt: now, authenticatedAt: undefined, policy }), policy)
      this.#emit('created', this.#state as SessionState)
      return
    }
    const deadline = core.deadline(state.createdAt, now, this.#policy)
    const refresh = deadline > state.expiresAt && (this.#touched || this.#rollingDue(state, deadline))
    const changes = this.#changes
    if (changes === undefined && !refresh) return
    const persisted = await this.#backend.persist(state,
      changes === undefined ? undefined : { clear: changes.clear, set: changes.set, unset: [...changes.unset] },
      this.#data, now, refresh ? deadline : undefined)
    if (persisted === undefined) {
      this.#forget()
      this.#expire = true
      throw new FST_SESSION_REVOKED()
    }
    this.#state = persisted.state
    this.#changes = undefined
    this.#touched = false
    if (persisted.resend) {
      this.#resend = true
      this.#cookie = undefined
    }
  }

  /** Rolling expiry: the deadline `deadline` is far enough past the stored one to be written. */
  #rollingDue (state: SessionState, deadline: number): boolean {
    const core = this.#core
    return core.options.rolling && deadline - state.expiresAt >= core.refreshStepOf(this.#policy)
  }

  /** True when `#save` would write to the store (or, for a stateless store, seal again). */
  #mustSave (): boolean {
    if (this.#changes !== undefined || this.#touched) return true
    const state = this.#state
    return state !== undefined && this.#rollingDue(state, this.#core.deadline(state.createdAt, this.#core.now(), this.#policy))
  }

  #outcome (): Outcome {
    if (this.#mustSave()) return 'write'
    if (this.#state !== undefined) return this.#resend ? 'renew' : 'none'
    return this.#expire ? 'drop' : 'none'
  }

  /**
   * Drops the changes not saved yet and reads the session again from the store (on the cookie
   * store: as it was loaded or last written in this request). Throws `FST_SESSION_REVOKED` when
   * the session ended meanwhile; the object is then a fresh anonymous session.
   */
  reload (): Promise<void>
  reload (callback: SessionCallback): void
  reload (callback?: SessionCallback): Promise<void> | undefined {
    return settle(() => this.#reload(), callback)
  }

  async #reload (): Promise<void> {
    this.#available()
    const state = this.#state
    this.#changes = undefined
    this.#touched = false
    this.#seen = undefined
    this.#cookie = undefined
    if (state === undefined) {
      this.#data = emptyData()
      return
    }
    const raw = this.#backend.cookieValue(this.#request, state, this.#secret, state.data)
    const loaded = await this.#backend.load(this.#request.log, raw, this.#policy.transport === 'bearer')
    if (loaded.kind === 'unavailable') throw loaded.error
    if (loaded.kind !== 'loaded') {
      this.#forget()
      this.#expire = !this.#bearerRequest
      throw new FST_SESSION_REVOKED()
    }
    this.#state = loaded.state
    this.#data = Object.assign(emptyData(), loaded.state.data)
  }

  /**
   * Objects the app read (or set) and changed in place since, without a `set()`: their new
   * value is a change, checked as `set()` checks it. Only the keys whose object values were
   * handed out are compared, once, when the session is saved.
   */
  #collect (): void {
    const seen = this.#seen
    if (seen === undefined) return
    const data = this.#data
    for (const [key, before] of seen) {
      if (!Object.hasOwn(data, key)) {
        seen.delete(key)
        continue
      }
      const value = data[key]
      let now: string | undefined
      try {
        now = JSON.stringify(value)
      } catch {}
      if (now === before) continue
      seen.set(key, checkValue(key, value))
      this.#cookie = undefined
      const changes = this.#pending()
      changes.set[key] = value
      changes.unset.delete(key)
    }
  }

  /**
   * @internal Run once, from the plugin's onSend hook. Returns undefined unless there is
   * something to write (the common read): the response goes on without a round through the
   * microtask queue. Throws `FST_SESSION_VALUE_INVALID` when an object changed in place holds
   * what cannot be stored.
   */
  [kCommit] (reply: FastifyReply): Promise<void> | undefined {
    // A 5xx reply saves nothing: the client was told the request failed (and after a failed
    // save(), a second try during an outage would fail again and reach Fastify's own handler).
    if (this.#committed || this.#error !== undefined || reply.statusCode >= 500) return undefined
    this.#committed = true
    this.#collect()
    const outcome = this.#outcome()
    switch (outcome) {
      case 'write':
        return this.#write(reply)
      case 'renew':
        this.#renew(reply, this.#state as SessionState)
        return undefined
      case 'drop':
        this.#core.clearCookie(reply)
        return undefined
      default:
        return nothing(outcome)
    }
  }

  async #write (reply: FastifyReply): Promise<void> {
    try {
      await this.#save()
    } catch (err) {
      if ((err as { code?: string }).code !== 'FST_SESSION_REVOKED') throw storeError(err)
      this.#request.log.info('session revoked while the request was in flight; its changes were discarded')
    }
    // What the write left: a cookie to send (new or refreshed), one to expire (revoked meanwhile), or neither.
    const state = this.#state
    if (state !== undefined) {
      if (this.#resend) this.#renew(reply, state)
    } else if (this.#expire) {
      this.#core.clearCookie(reply)
    }
  }

  #renew (reply: FastifyReply, state: SessionState): void {
    const policy = this.#policy
    if (policy.transport === 'bearer') {
      // A token goes out in the app's response body, never in Set-Cookie; a cookie this request
      // came with stood for the session the token replaced, and is expired.
      if (this.#hadCookie) this.#core.clearCookie(reply)
      return
    }
    this.#cookie ??= this.#backend.cookieValue(this.#request, state, this.#secret, this.#data)
    this.#core.writeCookie(reply, this.#cookie, state.expiresAt, this.#cookieOverrides, policy.persistent)
    if (this.#registration !== undefined) reply.header('secure-session-registration', this.#registration)
  }
}

/** With a callback, runs `run` and calls it (returning nothing), in express-session's style; else returns its promise. */
function settle (run: () => Promise<void>, callback: SessionCallback | undefined): Promise<void> | undefined {
  if (callback === undefined) return run()
  if (typeof callback !== 'function') throw new FST_SESSION_OPTION_INVALID('callback', 'must be a function')
  run().then(() => { callback() }, (err: Error) => { callback(err) })
  return undefined
}

/** The case left when every other is handled: typed so that a new kind of outcome or load result fails to compile until handled. */
function nothing (_kind: 'none'): undefined {
  return undefined
}
