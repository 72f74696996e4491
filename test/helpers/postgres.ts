import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { createPostgresTable, type PostgresStoreOptions, type StoreContext, type StoredSession } from '../../lib/index.js'
import { hashSecret, newSecret, newSessionId } from '../../lib/crypto/ids.js'
import { TEST_OWNER_KEY, testTag } from './ids.js'

// The PostgreSQL tests run against a real server: PG_URL or DATABASE_URL, else the local
// default. Each test file works in its own schema, created here and dropped at teardown.
// An unreachable server skips the tests loudly, or fails them under CI=true.

export const PG_URL = process.env.PG_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

interface Tap {
  fail: (message: string) => unknown
  teardown: (fn: () => unknown) => void
}

export interface TestDatabase {
  /** `false`, or why the PostgreSQL tests are skipped: pass as the `skip` option of each test. */
  skip: false | string
  /** An admin pool for setup and checks; closed at teardown. */
  pool: pg.Pool
  schema: string
  /** storeOptions for the file's table, with the store's own pool. */
  options: (extra?: PostgresStoreOptions) => PostgresStoreOptions
  /** Runs one statement on the file's table (`$table` in the text stands for it). */
  sql: (text: string, values?: unknown[]) => Promise<pg.QueryResult>
  /** Creates one more table in the file's schema, for a test that needs one of its own. */
  table: () => Promise<{ table: string, sql: (text: string, values?: unknown[]) => Promise<pg.QueryResult> }>
}

function redact (url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')
}

export async function testDatabase (t: Tap): Promise<TestDatabase> {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 8, connectionTimeoutMillis: 5000 })
  try {
    await pool.query('SELECT 1')
  } catch (err) {
    await pool.end()
    const why = `PostgreSQL unreachable at ${redact(PG_URL)} (${(err as Error).message})`
    if (process.env.CI === 'true') {
      t.fail(`${why}; CI=true requires it (.ci/run starts it)`)
    } else {
      console.error(`\n!!! ${why}: SKIPPING the PostgreSQL store tests. Set PG_URL or start PostgreSQL.\n`)
    }
    const fail = async (): Promise<never> => { throw new Error(why) }
    return { skip: why, pool, schema: '', options: () => ({}), sql: fail, table: fail }
  }
  const schema = 'fus_test_' + randomBytes(6).toString('hex')
  let tables = 0
  await pool.query(`CREATE SCHEMA "${schema}"`)
  await createPostgresTable(pool, { schema })
  await seedOwnerKey(pool, `"${schema}"."fastify_sessions"`)
  t.teardown(async () => {
    await pool.query(`DROP SCHEMA "${schema}" CASCADE`)
    await pool.end()
  })
  return {
    skip: false,
    pool,
    schema,
    options: (extra = {}) => ({ connectionString: PG_URL, schema, ...extra }),
    sql: sqlOn('fastify_sessions'),
    table: async () => {
      const table = `t${++tables}`
      await createPostgresTable(pool, { schema, table })
      await seedOwnerKey(pool, `"${schema}"."${table}"`)
      return { table, sql: sqlOn(table) }
    }
  }

  function sqlOn (table: string) {
    return async (text: string, values?: unknown[]): Promise<pg.QueryResult> =>
      await pool.query(text.replaceAll('$table', `"${schema}"."${table}"`), values)
  }
}

/** Makes TEST_OWNER_KEY the table's owner key (its reserved row), so that `newStored` can tag ids at once. */
async function seedOwnerKey (pool: pg.Pool, table: string): Promise<void> {
  await pool.query(`INSERT INTO ${table} (id, secret_hash, created_at, last_seen_at, expires_at) VALUES ('owner-key', $1, 0, 0, 9223372036854775807)`,
    [TEST_OWNER_KEY.toString('base64url')])
}

export function testContext (clock: () => number, maxSessionsPerUser = 100, log?: object): StoreContext {
  const silent = { debug () {}, info () {}, warn () {}, error () {}, trace () {}, fatal () {}, child () { return silent }, level: 'silent' }
  return { clock, log: (log ?? silent) as StoreContext['log'], maxSessionsPerUser }
}

/** A session record as the plugin would insert it, for direct store tests. */
export function newStored (userId: string | undefined, now: number, overrides: Partial<StoredSession> = {}): StoredSession {
  return {
    id: newSessionId(userId === undefined ? undefined : testTag(userId)),
    secretHash: hashSecret(newSecret()),
    userId,
    data: {},
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 60_000,
    authenticatedAt: userId === undefined ? undefined : now,
    ip: '127.0.0.1',
    userAgent: 'test',
    policy: undefined,
    dbsc: undefined,
    ...overrides
  }
}
