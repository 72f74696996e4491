import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { BusSubscriber, Revocation, RevocationBus, Unsubscribe } from './bus.js'
import { encode, fitted, MAX_MESSAGE_BYTES } from './codec.js'
import { retryDelay } from '../util/retry.js'
import { noop, Subscribers } from './subscribers.js'

// The PostgreSQL bus: NOTIFY through the store's pool, LISTEN on one connection taken from the
// pool when the first subscriber comes and held (never handed back) while anyone listens.
// A connection that fails or ends (a server restart, pg_terminate_backend) is destroyed and
// replaced, with a bounded back-off, and subscribers resync once the channel is heard again.

/** The part of a `pg` PoolClient the listener uses. */
export interface PostgresListenClient {
  query: (text: string) => Promise<unknown>
  release: (destroy?: boolean) => void
  on: (event: 'notification' | 'error' | 'end', listener: (arg: any) => void) => unknown
}

export interface PostgresBusOptions {
  /** The store's pool: the listener's connection is taken from it. */
  pool: { connect: () => Promise<unknown> }
  /** Runs one statement, bounded in time: the store's own path to the pool. */
  query: (text: string, values: unknown[]) => Promise<unknown>
  /** The channel, a valid identifier (see `postgresChannel`). */
  channel: string
  log: FastifyBaseLogger
  /** Milliseconds the listener may wait for its connection and its LISTEN. */
  timeout: number
}

/**
 * The channel of a session table: `<table>_revoked`, and for a table of a named schema a short
 * hash of the two names as well, so that tables of one name in two schemas do not share one.
 * At most 63 bytes for a table name of at most 48.
 */
export function postgresChannel (table: string, schema: string | undefined): string {
  if (schema === undefined) return `${table}_revoked`
  return `${table}_revoked_${createHash('sha256').update(`${schema}.${table}`).digest('hex').slice(0, 6)}`
}

export class PostgresBus implements RevocationBus {
  readonly #options: PostgresBusOptions
  readonly #subscribers: Subscribers
  #listener: Listener | undefined
  #closed = false

  constructor (options: PostgresBusOptions) {
    this.#options = options
    this.#subscribers = new Subscribers('postgres revocation bus', options.log, () => {
      if (!this.#closed) this.#listener = new Listener(options, this.#subscribers)
    }, () => { this.#shut() })
  }

  async publish (revocation: Revocation): Promise<void> {
    if (revocation.ids.length === 0 && revocation.userId === undefined) return
    await this.#options.query('SELECT pg_notify($1, $2)', [this.#options.channel, encode(fitted(revocation, MAX_MESSAGE_BYTES))])
  }

  subscribe (subscriber: BusSubscriber): Unsubscribe {
    return this.#subscribers.add(subscriber)
  }

  follow (_id: string): Unsubscribe {
    return noop
  }

  #shut (): void {
    this.#listener?.close()
    this.#listener = undefined
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#subscribers.clear()
    this.#shut()
  }
}

/** The LISTENing connection, replaced whenever it fails, until closed. */
class Listener {
  readonly #options: PostgresBusOptions
  readonly #subscribers: Subscribers
  #client: PostgresListenClient | undefined
  #timer: NodeJS.Timeout | undefined
  #attempt = 0
  #failing = false
  #closed = false

  constructor (options: PostgresBusOptions, subscribers: Subscribers) {
    this.#options = options
    this.#subscribers = subscribers
    this.#connect()
  }

  #connect (): void {
    const { pool, channel, timeout } = this.#options
    let client: PostgresListenClient | undefined
    let settled = false
    /** Ends this attempt, once: listening, or failed (`err`) and retried. */
    const settle = (err: Error | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err === undefined && !this.#closed) {
        this.#listening(client as PostgresListenClient)
        return
      }
      client?.release(true)
      if (err === undefined || this.#closed) return
      this.#fault(err.message)
      this.#retry()
    }
    const timer = setTimeout(() => settle(new Error(`no connection and LISTEN within ${timeout} ms`)), timeout).unref()
    pool.connect().then(async (connected) => {
      const c = connected as PostgresListenClient
      if (settled) {
        c.release(true)
        return
      }
      client = c
      // Until LISTEN answered, a failure rejects it, which ends the attempt; then it loses the connection.
      c.on('error', (err: Error) => this.#lose(c, err.message))
      c.on('end', () => this.#lose(c, 'connection ended'))
      // This connection LISTENs to our channel only.
      c.on('notification', (message: { payload: string }) => this.#subscribers.message(message.payload))
      await c.query(`LISTEN "${channel}"`)
      settle(undefined)
    }).catch(settle)
  }

  #listening (client: PostgresListenClient): void {
    this.#client = client
    this.#attempt = 0
    if (this.#failing) this.#options.log.info('postgres revocation bus: listening again')
    this.#failing = false
    // The first LISTEN, or one after a loss: what was notified before it was not heard.
    this.#subscribers.resync()
  }

  #lose (client: PostgresListenClient, why: string): void {
    if (client !== this.#client) return
    this.#client = undefined
    client.release(true)
    this.#fault(why)
    this.#retry()
  }

  /** One warning per outage; what was published meanwhile is missed, so resync once back. */
  #fault (message: string): void {
    if (this.#failing || this.#closed) return
    this.#failing = true
    this.#options.log.warn({ err: { message } }, 'postgres revocation bus: listener connection error')
  }

  #retry (): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#connect()
    }, retryDelay(this.#attempt++)).unref()
  }

  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
    const client = this.#client
    this.#client = undefined
    client?.release(true)
  }
}
