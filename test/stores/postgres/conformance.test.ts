import t from 'tap'
import { runConformance } from '../../../lib/conformance/index.js'
import { PostgresStore } from '../../../lib/index.js'
import { PG_URL, testDatabase } from '../../helpers/postgres.js'

// The store conformance suite against the PostgreSQL store on a real server: each case on
// a table of its own, through a pool the store makes (and closes after the case). The suite
// checks semantics, not latency: its large-user case fires 500 logins of one user at once,
// which queue on that user's lock, and the default 2 s bound per call (queueing included)
// can cut the last of them off on a loaded machine. Hence the generous timeout here.

const db = await testDatabase(t)

t.test('postgres store', { skip: db.skip }, async (t) => {
  const tables = new Map<string, (text: string) => Promise<{ rows: Array<Record<string, unknown>> }>>()
  runConformance((title, fn) => t.test(title, fn), {
    createStore: async (context, name) => {
      const { table, sql } = await db.table()
      tables.set(name, sql)
      return new PostgresStore({ connectionString: PG_URL, schema: db.schema, table, cleanupInterval: 0, timeout: 30_000 }, context)
    },
    dump: async (_store, name) => {
      const sql = tables.get(name) as (text: string) => Promise<{ rows: Array<Record<string, unknown>> }>
      return (await sql('SELECT row_to_json(s)::text AS row FROM $table AS s')).rows.map((r) => r.row).join('\n')
    }
  })
})
