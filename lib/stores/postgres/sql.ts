import { FST_SESSION_OPTION_INVALID, FST_SESSION_VALUE_INVALID } from '../../errors.js'
import { parseData } from '../../util/json.js'
import type { StoredSession } from '../store.js'

// The PostgreSQL store's table, its statements, and the mapping of rows to records. Identifiers are validated, then quoted;
// every value is a bound parameter. Times are bigint milliseconds from the plugin's clock,
// never the database's, so that one clock decides every deadline.

export interface PostgresTableOptions {
  /** Table name: letters, digits and `_`, at most 48 characters. @default 'fastify_sessions' */
  table?: string
  /** Schema the table lives in; it must exist. @default the connection's search_path */
  schema?: string
}

/** Anything that runs one SQL text: a `pg` Pool, Client or PoolClient. */
export interface PostgresQueryable {
  query: (text: string) => Promise<unknown>
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/
// 63 bytes is PostgreSQL's identifier limit; index names add up to 15 characters to the table's.
const MAX_TABLE = 48
const MAX_SCHEMA = 63

function identifier (option: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value) || value.length > max) {
    throw new FST_SESSION_OPTION_INVALID(option,
      `must be 1 to ${max} letters, digits or underscores, not starting with a digit`)
  }
  return value
}

export interface TableNames {
  /** The quoted, schema-qualified table name, for SQL text. */
  qualified: string
  /** The unquoted table name, for index names. */
  table: string
}

export function tableNames (options: PostgresTableOptions, prefix: string): TableNames {
  const table = identifier(`${prefix}table`, options.table ?? 'fastify_sessions', MAX_TABLE)
  const schema = options.schema === undefined ? undefined : identifier(`${prefix}schema`, options.schema, MAX_SCHEMA)
  return { qualified: (schema === undefined ? '' : `"${schema}".`) + `"${table}"`, table }
}

/**
 * The DDL of the session table and its two indexes, for a migration tool. Idempotent;
 * `createPostgresTable` runs it. The schema is not created.
 */
export function postgresTableSql (options: PostgresTableOptions = {}): string {
  if (options === null || typeof options !== 'object') throw new FST_SESSION_OPTION_INVALID('options', 'must be an object')
  const { qualified: q, table } = tableNames(options, '')
  return `CREATE TABLE IF NOT EXISTS ${q} (
  id text COLLATE "C" PRIMARY KEY,
  secret_hash text NOT NULL,
  user_id text COLLATE "C",
  data jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
  created_at bigint NOT NULL,
  last_seen_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  authenticated_at bigint,
  ip text,
  user_agent text,
  policy text,
  dbsc text
);
ALTER TABLE ${q} ADD COLUMN IF NOT EXISTS policy text;
ALTER TABLE ${q} ADD COLUMN IF NOT EXISTS dbsc text;
CREATE INDEX IF NOT EXISTS "${table}_user_id_idx" ON ${q} (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS "${table}_expires_at_idx" ON ${q} (expires_at);
`
}

/** The columns of the table postgresTableSql() creates, every one used by the statements: what ready() checks. */
export const TABLE_COLUMNS: readonly string[] = Object.freeze([...postgresTableSql().matchAll(/^ {2}([a-z_]+) /gm)].map((m) => m[1] as string))

/**
 * Creates the session table and its indexes when they do not exist: an explicit call, made
 * once at deploy or start-up; the store itself never runs DDL. Runs as one transaction, under
 * an advisory lock, so that several instances starting at once do not trip on each other.
 */
export async function createPostgresTable (db: PostgresQueryable, options: PostgresTableOptions = {}): Promise<void> {
  if (db === null || typeof db !== 'object' || typeof db.query !== 'function') {
    throw new FST_SESSION_OPTION_INVALID('db', 'must be a pg Pool or Client')
  }
  const ddl = postgresTableSql(options)
  const { qualified } = tableNames(options, '')
  // A simple query (no parameters) with several statements runs as one implicit transaction.
  await db.query(`SELECT pg_advisory_xact_lock(hashtext('fastify-user-sessions'), hashtext('${qualified}'));\n${ddl}`)
}

// PostgreSQL text and jsonb cannot hold U+0000, nor a lone surrogate, as JSON.stringify escapes it.
export const UNSTORABLE_TEXT = /[\0\p{Cs}]/u
const UNSTORABLE_JSON = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f])/

/** The session data as jsonb text; refuses what jsonb cannot hold, naming the key. */
export function toJson (data: Record<string, unknown>): string {
  const json = JSON.stringify(data)
  if (!UNSTORABLE_JSON.test(json)) return json
  const key = Object.keys(data).find((k) => UNSTORABLE_JSON.test(JSON.stringify({ [k]: data[k] })))
  throw new FST_SESSION_VALUE_INVALID(String(key), 'PostgreSQL cannot store U+0000 or an unpaired surrogate')
}

export interface Row {
  id: string
  secret_hash: string
  user_id: string | null
  data: string
  created_at: string
  last_seen_at: string
  expires_at: string
  authenticated_at: string | null
  ip: string | null
  user_agent: string | null
  policy: string | null
  dbsc: string | null
}

/** bigint columns come back as strings; data as text, parsed with prototype-poisoning protection. */
export function toStored (row: Row): StoredSession {
  return {
    id: row.id,
    secretHash: row.secret_hash,
    userId: row.user_id ?? undefined,
    data: parseData(row.data),
    createdAt: Number(row.created_at),
    lastSeenAt: Number(row.last_seen_at),
    expiresAt: Number(row.expires_at),
    authenticatedAt: row.authenticated_at === null ? undefined : Number(row.authenticated_at),
    ip: row.ip ?? undefined,
    userAgent: row.user_agent ?? undefined,
    policy: row.policy ?? undefined,
    dbsc: row.dbsc ?? undefined
  }
}

const COLUMNS = 'id, secret_hash, user_id, data::text AS data, created_at, last_seen_at, expires_at, authenticated_at, ip, user_agent, policy, dbsc'

export interface Statements {
  /** Whether the table `$1` (its quoted, qualified name) exists, and its columns. */
  columns: string
  get: string
  insert: string
  insertForUser: string
  patch: string
  touch: string
  rebind: string
  delete: string
  getAll: string
  deleteAll: string
  cleanup: string
  /** Inserts the owner key's row unless there is one; returns the key the row holds (one row, whoever inserted it). */
  ownerKey: string
}

/**
 * The row that keeps the store's owner key (see SessionStore.ownerKey) in `secret_hash`: its id
 * is not the shape of a session id, it belongs to no user and never expires, so no statement
 * of the sessions ever reads, lists or deletes it. No table to create: it comes on first use.
 */
export const OWNER_KEY_ID = 'owner-key'
const NEVER = '9223372036854775807'

export function statements (q: string): Statements {
  const insert = `INSERT INTO ${q} AS s (id, secret_hash, user_id, data, created_at, last_seen_at, expires_at, authenticated_at, ip, user_agent, policy, dbsc)
  VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12)
  ON CONFLICT (id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, user_id = EXCLUDED.user_id, data = EXCLUDED.data,
    created_at = EXCLUDED.created_at, last_seen_at = EXCLUDED.last_seen_at, expires_at = EXCLUDED.expires_at,
    authenticated_at = EXCLUDED.authenticated_at, ip = EXCLUDED.ip, user_agent = EXCLUDED.user_agent, policy = EXCLUDED.policy,
    dbsc = EXCLUDED.dbsc
  WHERE s.expires_at <= $13`
  return {
    columns: `SELECT to_regclass($1) IS NOT NULL AS found,
  ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped) AS columns`,
    get: `SELECT ${COLUMNS} FROM ${q} WHERE id = $1 AND expires_at > $2`,
    // Insert-new: an expired row with the same id is replaced, a live one is left alone.
    insert,
    // The same, then, when the user already has as many rows as the cap (a count on the index),
    // the user's sessions beyond it go: expired ones first, then the least recently used.
    insertForUser: `WITH ins AS (${insert} RETURNING 1), evicted AS (
  DELETE FROM ${q} WHERE EXISTS (SELECT 1 FROM ins) AND (SELECT count(*) FROM ${q} WHERE user_id = $3) > $14 AND id IN (
    SELECT id FROM ${q} WHERE user_id = $3 AND id <> $1
    ORDER BY expires_at > $13 DESC, last_seen_at DESC, id DESC OFFSET $14)
  RETURNING id, expires_at)
SELECT (SELECT count(*) FROM ins)::int AS inserted,
  (SELECT coalesce(array_agg(id), '{}') FROM evicted WHERE expires_at > $13) AS evicted`,
    // One statement: concurrent patches of one row serialize on its row lock and each applies
    // its change to the row as the other left it, so changes to different keys all survive.
    patch: `UPDATE ${q} SET data = (CASE WHEN $2 THEN '{}'::jsonb ELSE data END - $3::text[]) || $4::jsonb,
  last_seen_at = $5, expires_at = COALESCE($6, expires_at)
WHERE id = $1 AND expires_at > $7`,
    touch: `UPDATE ${q} SET last_seen_at = $2, expires_at = COALESCE($3, expires_at) WHERE id = $1 AND expires_at > $4`,
    // The patch with a compare-and-set of the dbsc column: the row changes only while it holds $9.
    rebind: `UPDATE ${q} SET data = (CASE WHEN $2 THEN '{}'::jsonb ELSE data END - $3::text[]) || $4::jsonb,
  last_seen_at = $5, expires_at = COALESCE($6, expires_at), dbsc = $8
WHERE id = $1 AND expires_at > $7 AND dbsc IS NOT DISTINCT FROM $9`,
    delete: `DELETE FROM ${q} WHERE id = $1 RETURNING expires_at`,
    getAll: `SELECT ${COLUMNS} FROM ${q} WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, id`,
    deleteAll: `WITH d AS (DELETE FROM ${q} WHERE user_id = $1 AND id <> ALL($2::text[]) RETURNING id, expires_at)
SELECT coalesce(array_agg(id) FILTER (WHERE expires_at > $3), '{}') AS deleted FROM d`,
    // SKIP LOCKED: instances cleaning at the same time take different rows.
    cleanup: `DELETE FROM ${q} WHERE id IN (SELECT id FROM ${q} WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    // DO UPDATE (of nothing that changes) rather than DO NOTHING: the row comes back either way,
    // and an instance inserting at the same time waits for the other's and returns its key.
    ownerKey: `INSERT INTO ${q} (id, secret_hash, created_at, last_seen_at, expires_at)
  VALUES ('${OWNER_KEY_ID}', $1, 0, 0, ${NEVER}) ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at RETURNING secret_hash`
  }
}
