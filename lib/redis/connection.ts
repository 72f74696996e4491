import { createRequire } from 'node:module'
import type { FastifyBaseLogger } from 'fastify'
import { FST_SESSION_STORE_UNAVAILABLE } from '../errors.js'
import { CLIENTS, clientKind, type Arg, type ClientKind, type RedisClient } from './client.js'
import { IoredisClient } from './ioredis.js'
import { nodeRedisClient } from './node-redis.js'
import type { Script } from './script.js'

// The Redis store's way to talk to Redis: every call bounded in time, nothing queued behind
// a lost connection, EVALSHA with EVAL as fallback, and the client closed only when we made it.

const noop = (): void => {}

function unavailable (message: string): Error {
  return new FST_SESSION_STORE_UNAVAILABLE(message)
}

function isNoScript (err: unknown): boolean {
  return String((err as Error).message).startsWith('NOSCRIPT')
}

/** The user's client, checked at register() (`clientKind`), as the stores talk to it. */
export function adapt (client: object): RedisClient {
  const kind = clientKind(client) as ClientKind
  return kind === 'ioredis' ? new IoredisClient(client as ConstructorParameters<typeof IoredisClient>[0]) : nodeRedisClient(client, kind)
}

const load = createRequire(import.meta.url)

/** Loads an installed client library, without a static import: an app on another store never needs one. */
function library (name: string): Record<string, unknown> | undefined {
  try {
    return load(name) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/**
 * A client made from `url`: ioredis when it is installed, else node-redis. No offline queue and
 * no resending after a reconnect: a command that could not be sent in time fails, and never
 * runs later behind the caller's back.
 */
export function clientFromUrl (url: string, timeout: number, names = { ioredis: 'ioredis', redis: 'redis' }): RedisClient {
  const ioredis = library(names.ioredis)
  if (ioredis !== undefined) {
    // No auto-pipelining: when Redis goes down while an auto-pipelined batch awaits its reply,
    // ioredis 5 can come back 'ready' and never answer again (hardening/repro/redis-wedge.js);
    // the store batches the commands of one tick itself.
    const Redis = ioredis.Redis as new (url: string, options: object) => object
    return adapt(new Redis(url, {
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      connectTimeout: timeout,
      enableAutoPipelining: false
    }))
  }
  const redis = library(names.redis)
  if (redis === undefined) throw unavailable(`a Redis url needs a client library: npm install ioredis, or redis (${CLIENTS})`)
  const createClient = redis.createClient as (options: object) => { connect: () => Promise<unknown>, on: (e: string, f: () => void) => void }
  const client = createClient({ url, disableOfflineQueue: true, socket: { connectTimeout: timeout } })
  client.on('error', noop)
  client.connect().catch(noop)
  return adapt(client)
}

/** The store's connection: to the user's `client` (never closed by us), or to a client made from `url`. */
export function connection (client: object | undefined, url: string | undefined, timeout: number, log: FastifyBaseLogger): RedisConnection {
  return client === undefined
    ? new RedisConnection(clientFromUrl(url as string, timeout), timeout, log, true)
    : new RedisConnection(adapt(client), timeout, log, false)
}

export class RedisConnection {
  readonly redis: RedisClient
  readonly #own: boolean
  readonly #timeout: number
  readonly #log: FastifyBaseLogger
  #ready: Promise<void> | undefined
  #cancelReady: (() => void) | undefined
  #failing = false
  #closed = false
  /** Warnings wait for ready(), which says in one line what a failed start means. */
  #started = false

  /** Talks through `client`; `own`: made for us (from `url`, or duplicated), closed with the store. */
  constructor (client: RedisClient, timeout: number, log: FastifyBaseLogger, own: boolean) {
    this.#timeout = timeout
    this.#log = log
    this.#own = own
    this.redis = client
    if (own) this.#watch(client)
    if ((client.raw as { options?: { enableAutoPipelining?: unknown } }).options?.enableAutoPipelining === true) {
      log.warn('redis session store: the client has enableAutoPipelining, which can leave ioredis unresponsive after a Redis restart under load')
    }
  }

  /** The client object the store talks through. */
  get client (): object {
    return this.redis.raw
  }

  /** One warning per outage, one info line when it ends; the client reconnects on its own. */
  #watch (client: RedisClient): void {
    client.watch({
      error: (err) => {
        if (this.#failing || !this.#started) return
        this.#failing = true
        this.#log.warn({ err: { message: err.message, code: err.code } }, 'redis session store: connection error')
      },
      lost: () => {
        if (this.#failing || this.#closed || !this.#started) return
        this.#failing = true
        this.#log.warn('redis session store: connection lost')
      },
      ready: () => {
        if (!this.#failing) return
        this.#failing = false
        this.#log.info('redis session store: connection restored')
      }
    })
  }

  /**
   * Once, at the app's ready(): a Redis that does not answer is one warning line, not a
   * failure (it may come up later; until then requests that need it answer 503).
   */
  async ready (what: string): Promise<void> {
    try {
      await this.call(() => this.redis.send(['ping']))
    } catch (err) {
      this.#failing = true
      this.#log.warn({ err: { message: (err as Error).message } },
        `${what}: Redis did not answer at start; requests that need it answer 503 until it does`)
    } finally {
      this.#started = true
    }
  }

  /**
   * A connection of its own to the same Redis or Cluster, closed with the store: for calls that
   * hold their connection, such as WAIT, which would otherwise stall every other call behind it.
   */
  duplicate (): RedisConnection {
    const copy = this.redis.duplicate()
    return new RedisConnection(copy, this.#timeout, this.#log, copy !== this.redis)
  }

  /** Resolves when the client is next ready; one listener, whatever the number of waiting calls. */
  #whenReady (): Promise<void> {
    if (this.#ready === undefined) {
      this.#ready = new Promise((resolve) => {
        this.#cancelReady = this.redis.onceReady(() => {
          this.#ready = undefined
          this.#cancelReady = undefined
          resolve()
        })
      })
      this.redis.connect()
    }
    return this.#ready
  }

  /**
   * Runs one Redis call within the timeout. While the client is connecting, the call waits for
   * it (within the timeout); once a connection was lost, calls fail at once until it is back, so
   * that an outage does not hold every request for the whole timeout.
   */
  call<T> (send: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable('the store is closed'))
    if (this.redis.state() === 'down') return Promise.reject(unavailable('the Redis connection is down'))
    return this.#bounded(send)
  }

  #bounded<T> (send: () => Promise<T>): Promise<T> {
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
          // Client errors can carry the command's arguments (session ids, data): keep the message only.
          reject(unavailable(err.message))
        })
      }
      if (this.redis.state() === 'ready') run()
      else this.#whenReady().then(run, run)
    })
  }

  /** Sends one command (not bounded: within `call`). */
  send (args: Arg[]): Promise<unknown> {
    return this.redis.send(args)
  }

  /** Runs a script, bounded: EVALSHA, falling back to EVAL the first time a server sees it. */
  run (script: Script, keys: string[], args: Arg[]): Promise<unknown> {
    return this.call(async () => {
      try {
        return await this.redis.send(['evalsha', script.sha, keys.length, ...keys, ...args])
      } catch (err) {
        if (!isNoScript(err)) throw err
        return await this.redis.send(['eval', script.lua, keys.length, ...keys, ...args])
      }
    })
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#cancelReady?.()
    if (this.#own) await this.redis.close(this.#timeout)
  }
}
