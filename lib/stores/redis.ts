import type { FastifyBaseLogger } from 'fastify'
import { Redis, type Cluster } from 'ioredis'
import { FST_SESSION_OPTION_INVALID, FST_SESSION_STORE_UNAVAILABLE, FST_SESSION_USER_ID_INVALID } from '../errors.js'
import { isSessionId, ownerKeyOf, userKey } from '../ids.js'
import { parseValue } from '../json.js'
import { DELETE, DELETE_ALL, GET_ALL, INSERT, PATCH, type Script } from './redis-scripts.js'
import type { SessionPatch, SessionStore, StoreContext, StoredSession } from './store.js'

// The Redis store. Every key of one user carries the hash tag `{<userKey>}`, so all of a
// user's sessions and their index live on one slot and change together in one Lua script,
// on a single Redis as on a Cluster. A read is one HGETALL; a write is one EVALSHA. See
// redis-scripts.ts for the layout.

export interface RedisSerializer {
  stringify: (value: unknown) => string
  parse: (text: string) => unknown
}

export interface RedisStoreOptions {
  /**
   * An ioredis client or Cluster. The store never closes it. Every call is bounded by
   * `timeout` whatever the client's options, and nothing is sent while it is not ready,
   * so its offline queue stays empty. @default undefined
   */
  client?: Redis | Cluster
  /** A Redis URL; the store makes its own client from it and closes it with the app. @default undefined */
  url?: string
  /** Prepended to every key; must not hold `{` or `}`. @default 'sess:' */
  prefix?: string
  /** Milliseconds a store call may wait for Redis (or for the connection) before it fails with a 503. @default 2000 */
  timeout?: number
  /** Turns each session data value into a string and back. @default JSON, read back with prototype-poisoning protection */
  serializer?: RedisSerializer
}

interface Keys {
  /** The session hash. */
  key: string
  /** The user's index, for a bound session. */
  index: string | undefined
  /** The session's entry in the index: its random part. */
  member: string
}

const OPTION_KEYS = new Set(['client', 'url', 'prefix', 'timeout', 'serializer'])
/** Client states in which a connection is on its way: calls wait for it. */
const CONNECTING = new Set(['wait', 'connecting', 'connect'])
const JSON_SERIALIZER: RedisSerializer = { stringify: JSON.stringify, parse: parseValue }

const noop = (): void => {}

function invalid (option: string, message: string): never {
  throw new FST_SESSION_OPTION_INVALID(option === '' ? 'storeOptions' : `storeOptions.${option}`, message)
}

function unavailable (message: string): Error {
  return new FST_SESSION_STORE_UNAVAILABLE(message)
}

/** ioredis errors carry the command's arguments (session ids, data); keep only the message. */
function bare (err: Error): Error {
  return unavailable(err.message)
}

function checkOptions (options: RedisStoreOptions): void {
  if (options === null || typeof options !== 'object') invalid('', 'must be an object')
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) invalid(key, `unknown option; known: ${[...OPTION_KEYS].join(', ')}`)
  }
  const { client, url, prefix, timeout, serializer } = options
  if ((client === undefined) === (url === undefined)) invalid('client', 'give either a client or a url')
  if (client !== undefined && (client === null || typeof client !== 'object' ||
    typeof client.evalsha !== 'function' || typeof client.hgetall !== 'function')) {
    invalid('client', 'must be an ioredis Redis or Cluster client')
  }
  if (url !== undefined && (typeof url !== 'string' || url.length === 0)) invalid('url', 'must be a non-empty string')
  if (prefix !== undefined && (typeof prefix !== 'string' || /[{}]/.test(prefix))) {
    invalid('prefix', 'must be a string without { or }')
  }
  if (timeout !== undefined && (!Number.isSafeInteger(timeout) || timeout <= 0)) invalid('timeout', 'must be a positive integer')
  if (serializer !== undefined && (serializer === null || typeof serializer !== 'object' ||
    typeof serializer.stringify !== 'function' || typeof serializer.parse !== 'function')) {
    invalid('serializer', 'must be an object with stringify and parse functions')
  }
}

function isNoScript (err: unknown): boolean {
  return String((err as Error).message).startsWith('NOSCRIPT')
}

export class RedisStore implements SessionStore {
  readonly #client: Redis | Cluster
  readonly #own: boolean
  /** The store's prefix; `#base` adds the client's own keyPrefix, for keys built inside scripts. */
  readonly #prefix: string
  readonly #base: string
  readonly #timeout: number
  readonly #serializer: RedisSerializer
  readonly #clock: () => number
  readonly #log: FastifyBaseLogger
  readonly #maxPerUser: number
  #ready: Promise<void> | undefined
  #onReady: (() => void) | undefined
  #failing = false
  #closed = false

  constructor (options: RedisStoreOptions, context: StoreContext) {
    checkOptions(options)
    this.#prefix = options.prefix ?? 'sess:'
    this.#timeout = options.timeout ?? 2000
    this.#serializer = options.serializer ?? JSON_SERIALIZER
    this.#clock = context.clock
    this.#log = context.log
    this.#maxPerUser = context.maxSessionsPerUser
    if (options.client !== undefined) {
      this.#client = options.client
      this.#own = false
    } else {
      this.#client = this.#connect(options.url as string)
      this.#own = true
    }
    const clientPrefix = (this.#client as { options?: { keyPrefix?: unknown } }).options?.keyPrefix
    if (typeof clientPrefix === 'string' && /[{}]/.test(clientPrefix)) {
      invalid('client', 'the client\'s keyPrefix must not hold { or }')
    }
    this.#base = (typeof clientPrefix === 'string' ? clientPrefix : '') + this.#prefix
  }

  #connect (url: string): Redis {
    // No offline queue and no resending after a reconnect: a command that could not be sent
    // in time fails, and never runs later behind the caller's back.
    const client = new Redis(url, {
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      connectTimeout: this.#timeout
    })
    // One warning per outage, one info line when it ends; ioredis reconnects on its own.
    client.on('error', (err: Error & { code?: string }) => {
      if (this.#failing) return
      this.#failing = true
      this.#log.warn({ err: { message: err.message, code: err.code } }, 'redis session store: connection error')
    })
    client.on('close', () => {
      if (this.#failing || this.#closed) return
      this.#failing = true
      this.#log.warn('redis session store: connection lost')
    })
    client.on('ready', () => {
      if (!this.#failing) return
      this.#failing = false
      this.#log.info('redis session store: connection restored')
    })
    return client
  }

  /** Resolves when the client is next ready; one listener, whatever the number of waiting calls. */
  #whenReady (): Promise<void> {
    if (this.#ready === undefined) {
      const client = this.#client
      this.#ready = new Promise((resolve) => {
        this.#onReady = () => {
          this.#ready = undefined
          this.#onReady = undefined
          resolve()
        }
        client.once('ready', this.#onReady)
      })
      if (client.status === 'wait') client.connect().catch(noop)
    }
    return this.#ready
  }

  /**
   * Runs one Redis call within the timeout. While the client is connecting, the call waits for
   * it (within the timeout); once a connection was lost, calls fail at once until it is back, so
   * that an outage does not hold every request for the whole timeout.
   */
  #call<T> (send: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable('the store is closed'))
    const status = this.#client.status
    if (status !== 'ready' && !CONNECTING.has(status)) return Promise.reject(unavailable(`the Redis connection is down (${status})`))
    return this.#bounded(send)
  }

  #bounded<T> (send: () => Promise<T>): Promise<T> {
    const client = this.#client
    return new Promise<T>((resolve, reject) => {
      let expired = false
      const timer = setTimeout(() => {
        expired = true
        reject(unavailable(`no answer from Redis within ${this.#timeout} ms`))
      }, this.#timeout).unref()
      const run = (): void => {
        if (expired) return
        send().then((value) => {
          clearTimeout(timer)
          resolve(value)
        }, (err: Error) => {
          clearTimeout(timer)
          reject(bare(err))
        })
      }
      if (client.status === 'ready') run()
      else this.#whenReady().then(run, run)
    })
  }

  /** EVALSHA, falling back to EVAL the first time a server sees the script. */
  async #script (script: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    const client = this.#client
    try {
      return await client.evalsha(script.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!isNoScript(err)) throw err
      return await client.eval(script.lua, keys.length, ...keys, ...args)
    }
  }

  #run (script: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    return this.#call(() => this.#script(script, keys, args))
  }

  #keys (id: string): Keys {
    const dot = id.indexOf('.')
    if (dot === -1) return { key: `${this.#prefix}s:{${id}}`, index: undefined, member: id }
    const owner = id.slice(0, dot)
    return { key: `${this.#prefix}s:{${owner}}${id.slice(dot)}`, index: `${this.#prefix}u:{${owner}}`, member: id.slice(dot + 1) }
  }

  /** The prefix of the session keys of one user, as seen by scripts (with the client's keyPrefix). */
  #userBase (owner: string): string {
    return `${this.#base}s:{${owner}}.`
  }

  #keyList (keys: Keys): string[] {
    return keys.index === undefined ? [keys.key] : [keys.key, keys.index]
  }

  #toStored (id: string, userId: string | undefined, fields: Record<string, string>, now: number): StoredSession | undefined {
    if (fields.e === undefined) return undefined
    const expiresAt = Number(fields.e)
    if (!(expiresAt > now)) return undefined
    const data: Record<string, unknown> = {}
    for (const field of Object.keys(fields)) {
      if (!field.startsWith('d:')) continue
      const key = field.slice(2)
      if (key !== '__proto__') data[key] = this.#serializer.parse(fields[field] as string)
    }
    return {
      id,
      secretHash: fields.h as string,
      userId,
      data,
      createdAt: Number(fields.c),
      lastSeenAt: Number(fields.l),
      expiresAt,
      authenticatedAt: fields.a === undefined ? undefined : Number(fields.a),
      ip: fields.i,
      userAgent: fields.g
    }
  }

  async get (id: string): Promise<StoredSession | undefined> {
    if (!isSessionId(id)) return undefined
    const fields = await this.#call(() => this.#client.hgetall(this.#keys(id).key))
    const owner = ownerKeyOf(id)
    const userId = owner === undefined ? undefined : Buffer.from(owner, 'base64url').toString('utf8')
    return this.#toStored(id, userId, fields, this.#clock())
  }

  async insert (session: StoredSession): Promise<boolean> {
    const { id, userId } = session
    if (!isSessionId(id) || ownerKeyOf(id) !== (userId === undefined ? undefined : userKey(userId))) {
      throw new FST_SESSION_USER_ID_INVALID('the session id does not carry the key of its user')
    }
    const keys = this.#keys(id)
    const fields: Array<string | number> = ['h', session.secretHash, 'c', session.createdAt,
      'l', session.lastSeenAt, 'e', session.expiresAt]
    if (session.authenticatedAt !== undefined) fields.push('a', session.authenticatedAt)
    if (session.ip !== undefined) fields.push('i', session.ip)
    if (session.userAgent !== undefined) fields.push('g', session.userAgent)
    for (const key of Object.keys(session.data)) fields.push('d:' + key, this.#serializer.stringify(session.data[key]))
    const base = keys.index === undefined ? '' : this.#userBase(ownerKeyOf(id) as string)
    const evicted = await this.#run(INSERT, this.#keyList(keys),
      [this.#clock(), keys.member, this.#maxPerUser, base, session.expiresAt, ...fields]) as number
    if (evicted > 0) this.#log.debug({ evicted }, 'redis session store: a user at the cap lost their least recently used sessions')
    return evicted >= 0
  }

  async patch (id: string, patch: SessionPatch): Promise<boolean> {
    if (!isSessionId(id)) return false
    const keys = this.#keys(id)
    const args: Array<string | number> = [this.#clock(), keys.member, patch.lastSeenAt, patch.expiresAt ?? '',
      patch.clear ? 1 : 0, patch.unset.length]
    for (const key of patch.unset) args.push('d:' + key)
    for (const key of Object.keys(patch.set)) args.push('d:' + key, this.#serializer.stringify(patch.set[key]))
    return await this.#run(PATCH, this.#keyList(keys), args) === 1
  }

  async delete (id: string): Promise<boolean> {
    if (!isSessionId(id)) return false
    const keys = this.#keys(id)
    return await this.#run(DELETE, this.#keyList(keys), [this.#clock(), keys.member]) === 1
  }

  async getAll (userId: string): Promise<StoredSession[]> {
    const owner = userKey(userId)
    const now = this.#clock()
    const reply = await this.#run(GET_ALL, [`${this.#prefix}u:{${owner}}`], [now, this.#userBase(owner)]) as Array<string | string[]>
    const sessions: StoredSession[] = []
    for (let i = 0; i < reply.length; i += 2) {
      const pairs = reply[i + 1] as string[]
      const fields: Record<string, string> = Object.create(null)
      for (let j = 0; j < pairs.length; j += 2) fields[pairs[j] as string] = pairs[j + 1] as string
      // The script returns live sessions only: their hash and index entry are written together.
      sessions.push(this.#toStored(`${owner}.${reply[i] as string}`, userId, fields, now) as StoredSession)
    }
    return sessions
  }

  async deleteAll (userId: string, except: readonly string[]): Promise<number> {
    const owner = userKey(userId)
    const keep: string[] = []
    for (const id of except) {
      if (ownerKeyOf(id) === owner) keep.push(id.slice(owner.length + 1))
    }
    return await this.#run(DELETE_ALL, [`${this.#prefix}u:{${owner}}`], [this.#clock(), this.#userBase(owner), ...keep]) as number
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const client = this.#client
    if (this.#onReady !== undefined) client.off('ready', this.#onReady)
    if (!this.#own) return
    if (client.status === 'ready') await this.#bounded(() => client.quit()).catch(noop)
    client.disconnect()
  }
}

export function redisStore (options: RedisStoreOptions, context: StoreContext): RedisStore {
  return new RedisStore(options, context)
}
