import type { FastifyBaseLogger } from 'fastify'
import { Redis, type Cluster } from 'ioredis'
import { FST_SESSION_STORE_UNAVAILABLE } from '../errors.js'
import type { Script } from './script.js'

// The Redis store's way to talk to Redis: every call bounded in time, nothing queued behind
// a lost connection, EVALSHA with EVAL as fallback, and the client closed only when we made it.

/** Client states in which a connection is on its way: calls wait for it. */
const CONNECTING = new Set(['wait', 'connecting', 'connect'])
const noop = (): void => {}

function unavailable (message: string): Error {
  return new FST_SESSION_STORE_UNAVAILABLE(message)
}

function isNoScript (err: unknown): boolean {
  return String((err as Error).message).startsWith('NOSCRIPT')
}

interface Queued {
  command: string
  args: Array<string | number>
  /** ioredis's callback: (error) or (null, reply). */
  done: (err: Error | null | undefined, value?: unknown) => void
}

export class RedisConnection {
  readonly client: Redis | Cluster
  readonly #own: boolean
  readonly #timeout: number
  readonly #log: FastifyBaseLogger
  #ready: Promise<void> | undefined
  #onReady: (() => void) | undefined
  #failing = false
  #closed = false
  /** Commands issued during this turn of the event loop; sent together, in one write. */
  #queue: Queued[] = []
  readonly #batching: boolean

  /** Uses `client`, or makes (and will close) one from `url`; `own`: close `client` too. */
  constructor (client: Redis | Cluster | undefined, url: string | undefined, timeout: number, log: FastifyBaseLogger,
    own = client === undefined) {
    this.#timeout = timeout
    this.#log = log
    this.#own = own
    this.client = client ?? this.#connect(url as string)
    if (own && client !== undefined) this.#watch(client)
    // A Cluster routes each command to its own node: only a single server's client batches.
    this.#batching = this.client instanceof Redis
    if ((client as { options?: { enableAutoPipelining?: unknown } } | undefined)?.options?.enableAutoPipelining === true) {
      log.warn('redis session store: the client has enableAutoPipelining, which can leave ioredis unresponsive after a Redis restart under load')
    }
  }

  #connect (url: string): Redis {
    // No offline queue and no resending after a reconnect: a command that could not be sent
    // in time fails, and never runs later behind the caller's back. No auto-pipelining: when
    // Redis goes down while an auto-pipelined batch awaits its reply, ioredis 5 can come back
    // 'ready' and never answer again (hardening/repro/redis-wedge.js); it costs some throughput.
    const client = new Redis(url, {
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      connectTimeout: this.#timeout,
      enableAutoPipelining: false
    })
    this.#watch(client)
    return client
  }

  /** One warning per outage, one info line when it ends; ioredis reconnects on its own. */
  #watch (client: Redis | Cluster): void {
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
  }

  /**
   * A connection of its own to the same Redis or Cluster, closed with the store: for calls that
   * hold their connection, such as WAIT, which would otherwise stall every other call behind it.
   */
  duplicate (): RedisConnection {
    const client = this.client
    // A Cluster's copy starts from the nodes known now: its startup nodes may have died since.
    const copy = client instanceof Redis
      ? client.duplicate()
      : client.duplicate(client.nodes().map(({ options }) => ({ host: options.host, port: options.port })))
    return new RedisConnection(copy, undefined, this.#timeout, this.#log, true)
  }

  /** Resolves when the client is next ready; one listener, whatever the number of waiting calls. */
  #whenReady (): Promise<void> {
    if (this.#ready === undefined) {
      const client = this.client
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
  call<T> (send: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(unavailable('the store is closed'))
    const status = this.client.status
    if (status !== 'ready' && !CONNECTING.has(status)) return Promise.reject(unavailable(`the Redis connection is down (${status})`))
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
          // ioredis errors carry the command's arguments (session ids, data): keep the message only.
          // Our own typed errors (a revocation not replicated) go through as they are.
          reject(String((err as { code?: unknown }).code).startsWith('FST_SESSION_') ? err : unavailable(err.message))
        })
      }
      if (this.client.status === 'ready') run()
      else this.#whenReady().then(run, run)
    })
  }

  /**
   * Sends one command. On a single server's client, the commands of one turn of the event
   * loop go out together as one pipeline (one socket write, one read on Redis's side), each
   * still answered on its own: under load, the commands of many requests cost one socket
   * write instead of one each.
   * Nothing waits on an earlier batch, so a batch lost with a connection holds nothing up.
   */
  send (command: string, args: Array<string | number>): Promise<unknown> {
    if (!this.#batching) return this.client.call(command, ...args)
    return new Promise((resolve, reject) => {
      const done = (err: Error | null | undefined, value?: unknown): void => {
        if (err) reject(err)
        else resolve(value)
      }
      if (this.#queue.push({ command, args, done }) === 1) setImmediate(this.#flush)
    })
  }

  readonly #flush = (): void => {
    const queue = this.#queue
    this.#queue = []
    const client = this.client
    if (client.status !== 'ready') {
      // Lost since the commands were queued: never into ioredis's offline queue, where they
      // would run later, behind the caller's back.
      const err = unavailable(`the Redis connection is down (${client.status})`)
      for (const queued of queue) queued.done(err)
      return
    }
    const target = queue.length === 1 ? client : client.pipeline()
    for (const { command, args, done } of queue) {
      (target.call as (command: string, ...args: unknown[]) => unknown)(command, ...args, done)
    }
    // Each command's callback settles its caller. A single server's pipeline rejects only
    // for Cluster slot rules, which do not apply here.
    if (target !== client) (target as ReturnType<Redis['pipeline']>).exec().catch(noop)
  }

  /** Runs a script, bounded: EVALSHA, falling back to EVAL the first time a server sees it. */
  run (script: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    return this.call(async () => {
      try {
        return await this.send('evalsha', [script.sha, keys.length, ...keys, ...args])
      } catch (err) {
        if (!isNoScript(err)) throw err
        return await this.send('eval', [script.lua, keys.length, ...keys, ...args])
      }
    })
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const client = this.client
    if (this.#onReady !== undefined) client.off('ready', this.#onReady)
    if (!this.#own) return
    if (client.status === 'ready') await this.#bounded(() => client.quit()).catch(noop)
    client.disconnect()
  }
}
