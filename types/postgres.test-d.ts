// Type tests of the PostgreSQL store, checked by `npm run test:types`: a `pg` Pool, Client
// and PoolClient fit the store's structural types, so that @types/pg is not needed to use it.
import Fastify from 'fastify'
import pg from 'pg'
import session, {
  PostgresStore, postgresStore, createPostgresTable, postgresTableSql,
  type PostgresPool, type PostgresStoreOptions, type SessionStore, type StoreContext
} from 'fastify-user-sessions'

declare const context: StoreContext

const pool = new pg.Pool({ connectionString: 'postgres://127.0.0.1/app' })
const options: PostgresStoreOptions = { pool, table: 'sessions', schema: 'auth', cleanupInterval: 60_000, cleanupBatch: 1000, timeout: 2000 }
const store: SessionStore = new PostgresStore(options, context)
postgresStore({ connectionString: 'postgres://127.0.0.1/app' }, context)
const cleaned: Promise<number> = new PostgresStore({ pool }, context).cleanup()
const asPool: PostgresPool = pool

await createPostgresTable(pool, { table: 'sessions', schema: 'auth' })
await createPostgresTable(new pg.Client())
await createPostgresTable(await pool.connect())
const ddl: string = postgresTableSql({ table: 'sessions' })

const app = Fastify()
await app.register(session, { secret: 'x'.repeat(32), store: 'postgres', storeOptions: { pool } satisfies PostgresStoreOptions })
await app.register(session, { secret: 'x'.repeat(32), store })

// @ts-expect-error the timeout is in milliseconds, a number
postgresStore({ pool, timeout: '2s' }, context)
// @ts-expect-error a pool must hand out clients
postgresStore({ pool: { connect: () => 1 } }, context)
// @ts-expect-error table is a name
createPostgresTable(pool, { table: 1 })

export { cleaned, asPool, ddl }
