import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import type { FastifyBaseLogger } from 'fastify'
import { announce } from '../../bus/announce.js'
import { PostgresBus, postgresChannel } from '../../bus/postgres.js'
import { DEFAULT_TIMEOUT_MS, fail, knownKeys, nonNegativeInteger, nonEmptyString, optionsObject, positiveInteger } from '../../util/check.js'
import { FST_SESSION_STORE_TABLE_INVALID, FST_SESSION_STORE_UNAVAILABLE, FST_SESSION_USER_ID_INVALID } from '../../errors.js'
import { isLegacyId, isSessionId, newOwnerKey, tagOf, userTag } from '../../crypto/ids.js'
import { OwnerKey } from '../../crypto/owner-key.js'
import { statements, TABLE_COLUMNS, tableNames, toJson, toStored, UNSTORABLE_TEXT, type Row, type Statements } from './sql.js'
import type { SessionPatch, SessionStore, StoreContext, StoredSession } from '../store.js'

// The PostgreSQL store: one row per session, keyed by its public id, the data one jsonb
// object. Every operation is one statement, but an insert for a user, which is one short
// transaction serialized per user by an advisory lock, so that concurrent logins cannot
// exceed the per-user cap. See sql.ts for the table and the statements.

export { createPostgresTable, postgresTableSql, type PostgresTableOptions, type PostgresQueryable } from './sql.js'

export interface PostgresQueryResult {
  rows: any[]
  rowCount: number | null
}

/** The part of a `pg` PoolClient the store uses. */
export interface PostgresClient {
  query: (config: { text: string, values?: unknown[] }) => Promise<PostgresQueryResult>
  release: (destroy?: boolean) => void
  on: (event: 'error', listener: (err: Error) => void) => unknown
  off: (event: 'error', listener: (err: Error) => void) => unknown
}

/** The part of a `pg` Pool the store uses: a `pg.Pool` fits. */
export interface PostgresPool {
  connect: () => Promise<PostgresClient>
}

export interface PostgresStoreOptions {
  /** A `pg` Pool. The store never closes it. @default undefined */
  pool?: PostgresPool
  /** A PostgreSQL URL; the store makes its own pool from it (`pg` is loaded then) and closes it with the app. @default undefined */
  connectionString?: string
  /** The session table, as created by `createPostgresTable`. @default 'fastify_sessions' */
  table?: string
  /** The table's schema. @default the connection's search_path */
  schema?: string
  /** Milliseconds between deletions of expired rows; 0 turns them off (run `cleanup()` yourself). @default 60000 */
  cleanupInterval?: number
  /** Most rows one cleanup statement deletes; a cleanup runs such statements until none is full. @default 1000 */
  cleanupBatch?: number
  /**
   * Milliseconds a store call may wait, for a connection and its statements, before it fails
   * with a 503. On a pool the store makes, also the server's `statement_timeout`. @default 2000
   */
  timeout?: number
}

interface OwnPool extends PostgresPool {
  end: () => Promise<void>
  on: (event: 'error', listener: (err: Error) => void) => unknown
}

const OPTION_KEYS = ['pool', 'connectionString', 'table', 'schema', 'cleanupInterval', 'cleanupBatch', 'timeout']

function invalid (option: string, message: string): never {
  return fail(`storeOptions.${option}`, message)
}

/** pg errors can carry a row's values in `detail`; keep only the message. */
function bare (err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err)
  const missing = (err as { code?: unknown }).code === '42P01' ? '; create the table with createPostgresTable()' : ''
  return new FST_SESSION_STORE_UNAVAILABLE(message + missing)
}

function loadPg (): { Pool: new (config: object) => OwnPool } {
  try {
    return createRequire(import.meta.url)('pg')
  } catch {
    return invalid('connectionString', 'needs the "pg" package: npm install pg')
  }
}

export class PostgresStore implements SessionStore {
  readonly #pool: PostgresPool
  readonly #own: OwnPool | undefined
  readonly #sql: Statements
  /** The table's quoted, schema-qualified name. */
  readonly #table: string
  /** Prefix of the per-user advisory lock keys: the table's name, so that two tables never share a lock. */
  readonly #lockSeed: string
  readonly #timeout: number
  readonly #batch: number
  readonly #clock: () => number
  readonly #log: FastifyBaseLogger
  readonly #maxPerUser: number
  readonly #timer: NodeJS.Timeout | undefined
  readonly #channel: string
  readonly #ownerKey = new OwnerKey(async () => await this.#readOwnerKey())
  #bus: PostgresBus | undefined
  #cleaning = false
  #closed = false

  constructor (options: PostgresStoreOptions, context: StoreContext) {
    optionsObject('storeOptions', options)
    knownKeys(options, OPTION_KEYS, 'storeOptions.')
    const { pool, connectionString } = options
    if ((pool === undefined) === (connectionString === undefined)) invalid('pool', 'give either a pool or a connectionString')
    if (pool !== undefined && (pool === null || typeof pool.connect !== 'function')) invalid('pool', 'must be a pg Pool')
    nonEmptyString('storeOptions.connectionString', connectionString)
    const { qualified, table } = tableNames(options, 'storeOptions.')
    this.#sql = statements(qualified)
    this.#table = qualified
    this.#channel = postgresChannel(table, options.schema)
    this.#lockSeed = qualified + '\0'
    this.#timeout = positiveInteger('storeOptions.timeout', options.timeout, DEFAULT_TIMEOUT_MS)
    this.#batch = positiveInteger('storeOptions.cleanupBatch', options.cleanupBatch, 1000)
    const interval = nonNegativeInteger('storeOptions.cleanupInterval', options.cleanupInterval, 60_000)
    this.#clock = context.clock
    this.#log = context.log
    this.#maxPerUser = context.maxSessionsPerUser
    if (pool === undefined) {
      const { Pool } = loadPg()
      this.#own = new Pool({
        connectionString,
        application_name: 'fastify-user-sessions',
        connectionTimeoutMillis: this.#timeout,
        statement_timeout: this.#timeout
      })
      this.#own.on('error', this.#onError)
    }
    this.#pool = pool ?? this.#own as OwnPool
    if (interval > 0) this.#timer = setInterval(() => this.#sweep(), interval).unref()
  }

  /** A connection that fails while idle in the pool, or between two statements of a call. */
  readonly #onError = (err: Error): void => {
    this.#log.warn({ err: { message: err.message } }, 'postgres session store: connection error')
  }

  /**
   * Runs `work` on a pooled connection within the timeout: the wait for a connection included.
   * A connection that failed or ran late is destroyed, never handed back mid-statement.
   */
  #run<T> (work: (client: PostgresClient) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new FST_SESSION_STORE_UNAVAILABLE('the store is closed'))
    return new Promise<T>((resolve, reject) => {
      let client: PostgresClient | undefined
      let expired = false
      const timer = setTimeout(() => {
        expired = true
        if (client !== undefined) {
          client.off('error', this.#onError)
          client.release(true)
        }
        reject(new FST_SESSION_STORE_UNAVAILABLE(`no answer from PostgreSQL within ${this.#timeout} ms`))
      }, this.#timeout)
      this.#pool.connect().then(async (c) => {
        if (expired) {
          c.release()
          return
        }
        client = c
        c.on('error', this.#onError)
        let outcome: { ok: true, value: T } | { ok: false, err: unknown }
        try {
          outcome = { ok: true, value: await work(c) }
        } catch (err) {
          outcome = { ok: false, err }
        }
        if (expired) return
        clearTimeout(timer)
        c.off('error', this.#onError)
        c.release(!outcome.ok)
        if (outcome.ok) resolve(outcome.value)
        else reject(bare(outcome.err))
      }, (err: unknown) => {
        if (expired) return
        clearTimeout(timer)
        reject(bare(err))
      })
    })
  }

  #query (text: string, values: unknown[]): Promise<PostgresQueryResult> {
    return this.#run((client) => client.query({ text, values }))
  }

  /** LISTEN / NOTIFY on a channel named after the table; made on first use. */
  get bus (): PostgresBus {
    this.#bus ??= new PostgresBus({
      pool: this.#pool,
      query: (text, values) => this.#query(text, values),
      channel: this.#channel,
      log: this.#log,
      timeout: this.#timeout
    })
    return this.#bus
  }

  /**
   * Checks the table once, at the app's ready(): missing, or without a column this version uses,
   * the app does not start (FST_SESSION_STORE_TABLE_INVALID, naming what to run), since that
   * mistake never heals. A server that cannot be reached only gets a warning: it may come up
   * later, and requests that need the store answer 503 until then.
   */
  async ready (): Promise<void> {
    let table: { found: boolean, columns: string[] }
    try {
      table = (await this.#query(this.#sql.columns, [this.#table])).rows[0]
    } catch (err) {
      this.#log.warn({ err: { message: (err as Error).message } },
        'postgres session store: could not check the session table at start; requests that need the store answer 503 until PostgreSQL answers')
      return
    }
    if (!table.found) {
      throw new FST_SESSION_STORE_TABLE_INVALID(this.#table,
        'does not exist: create it with createPostgresTable(pool) at start-up, or with the SQL of postgresTableSql() in a migration')
    }
    const missing = TABLE_COLUMNS.filter((column) => !table.columns.includes(column))
    if (missing.length > 0) {
      throw new FST_SESSION_STORE_TABLE_INVALID(this.#table, `lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}, ` +
        'which this version uses: run createPostgresTable(pool) again (it adds them), or the ALTER TABLE lines of postgresTableSql() in a migration')
    }
    // The owner key now, rather than in the first login's request; failing, that request reads it.
    await this.#ownerKey.get().catch(() => {})
  }

  /** The owner key's row (see sql.ts), inserted by the first instance to ask, read by all. */
  async #readOwnerKey (): Promise<Uint8Array> {
    const { rows } = await this.#query(this.#sql.ownerKey, [newOwnerKey().toString('base64url')])
    return Buffer.from((rows[0] as { secret_hash: string }).secret_hash, 'base64url')
  }

  /** Read (or created) once, then held. */
  async ownerKey (): Promise<Uint8Array> {
    return this.#ownerKey.loaded ?? await this.#ownerKey.get()
  }

  async get (id: string): Promise<StoredSession | undefined> {
    if (!isSessionId(id)) return undefined
    const { rows } = await this.#query(this.#sql.get, [id, this.#clock()])
    const row = rows[0] as Row | undefined
    // A user's session written before 0.2 (its id carries the user id in clear): unknown now.
    return row === undefined || (row.user_id !== null && isLegacyId(id, row.user_id)) ? undefined : toStored(row)
  }

  async insert (session: StoredSession): Promise<boolean> {
    const { id, userId } = session
    if (!isSessionId(id) || tagOf(id) !== (userId === undefined ? undefined : userTag(await this.ownerKey(), userId))) {
      throw new FST_SESSION_USER_ID_INVALID('the session id does not carry the tag of its user')
    }
    if (userId !== undefined && UNSTORABLE_TEXT.test(userId)) {
      throw new FST_SESSION_USER_ID_INVALID('PostgreSQL cannot store U+0000 or an unpaired surrogate')
    }
    const now = this.#clock()
    const values: unknown[] = [id, session.secretHash, userId ?? null, toJson(session.data), session.createdAt,
      session.lastSeenAt, session.expiresAt, session.authenticatedAt ?? null, session.ip ?? null,
      session.userAgent ?? null, session.policy ?? null, session.dbsc ?? null, now]
    if (userId === undefined) return (await this.#query(this.#sql.insert, values)).rowCount === 1
    values.push(this.#maxPerUser - 1)
    // One lock per user and table: concurrent logins of one user take turns; other users do not wait.
    const lock = createHash('sha256').update(this.#lockSeed + userId).digest().readBigInt64BE()
    const row = await this.#run(async (client) => {
      await client.query({ text: `BEGIN; SET LOCAL statement_timeout = ${this.#timeout}; SELECT pg_advisory_xact_lock(${lock})` })
      const { rows } = await client.query({ text: this.#sql.insertForUser, values })
      await client.query({ text: 'COMMIT' })
      return rows[0] as { inserted: number, evicted: string[] }
    })
    if (row.evicted.length > 0) {
      this.#log.debug({ evicted: row.evicted.length }, 'postgres session store: a user at the cap lost their least recently used sessions')
      announce(this.bus, this.#log, { ids: row.evicted, userId, reason: 'evicted', at: now })
    }
    return row.inserted === 1
  }

  async patch (id: string, patch: SessionPatch): Promise<boolean> {
    if (!isSessionId(id)) return false
    const now = this.#clock()
    const expiresAt = patch.expiresAt ?? null
    const set = toJson(patch.set)
    // A key PostgreSQL cannot store is in no row: nothing to unset.
    const unset = patch.unset.filter((key) => !UNSTORABLE_TEXT.test(key))
    const dbsc = patch.dbsc
    if (dbsc !== undefined) {
      return (await this.#query(this.#sql.rebind, [id, patch.clear, unset, set, patch.lastSeenAt, expiresAt, now, dbsc.to, dbsc.from ?? null])).rowCount === 1
    }
    const result = !patch.clear && unset.length === 0 && set === '{}'
      ? await this.#query(this.#sql.touch, [id, patch.lastSeenAt, expiresAt, now])
      : await this.#query(this.#sql.patch, [id, patch.clear, unset, set, patch.lastSeenAt, expiresAt, now])
    return result.rowCount === 1
  }

  async delete (id: string): Promise<boolean> {
    if (!isSessionId(id)) return false
    const now = this.#clock()
    const { rows } = await this.#query(this.#sql.delete, [id])
    return rows.length === 1 && Number((rows[0] as Row).expires_at) > now
  }

  async getAll (userId: string): Promise<StoredSession[]> {
    if (UNSTORABLE_TEXT.test(userId)) return []
    const { rows } = await this.#query(this.#sql.getAll, [userId, this.#clock()])
    return (rows as Row[]).map(toStored)
  }

  async deleteAll (userId: string, except: readonly string[]): Promise<number> {
    if (UNSTORABLE_TEXT.test(userId)) return 0
    const keep = except.filter((id) => typeof id === 'string' && isSessionId(id))
    const now = this.#clock()
    const { rows } = await this.#query(this.#sql.deleteAll, [userId, keep, now])
    const deleted = (rows[0] as { deleted: string[] }).deleted
    if (deleted.length > 0) announce(this.bus, this.#log, { ids: deleted, userId, except, reason: 'deleteAll', at: now })
    return deleted.length
  }

  /**
   * Deletes expired rows, in batches of `cleanupBatch`, until a batch comes back short;
   * resolves how many it deleted. The timer runs it every `cleanupInterval`.
   */
  async cleanup (): Promise<number> {
    const now = this.#clock()
    let deleted = 0
    let count: number
    do {
      count = (await this.#query(this.#sql.cleanup, [now, this.#batch])).rowCount as number
      deleted += count
    } while (count === this.#batch && !this.#closed)
    return deleted
  }

  #sweep (): void {
    if (this.#cleaning) return
    this.#cleaning = true
    this.cleanup().then((deleted) => {
      this.#log.debug({ deleted }, 'postgres session store: expired sessions deleted')
    }, (err: Error) => {
      this.#log.warn({ err: { message: err.message } }, 'postgres session store: cleanup failed')
    }).finally(() => { this.#cleaning = false })
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#timer)
    await this.#bus?.close()
    await this.#own?.end()
  }
}

export function postgresStore (options: PostgresStoreOptions, context: StoreContext): PostgresStore {
  return new PostgresStore(options, context)
}
