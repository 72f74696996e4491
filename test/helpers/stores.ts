import { randomBytes } from 'node:crypto'
import { pino } from 'pino'
import type { Test } from 'tap'
import type { SessionStore, StoreSelection } from '../../lib/index.js'
import { resolveStore } from '../../lib/stores/registry.js'
import { counting, SECRET } from './app.js'
import { testDatabase } from './postgres.js'
import { redisServer } from './redis.js'

export type StoreOptions = StoreSelection

/**
 * Runs `fn` twice: on the memory store, and on a real Redis of this subtest (skipped loudly
 * without redis-server, failed under CI=true, as every Redis test).
 */
export function onEachStore (t: Test, title: string, fn: (t: Test, store: StoreOptions) => Promise<void>): void {
  t.test(`${title} (memory)`, async (t) => { await fn(t, { store: 'memory' }) })
  t.test(`${title} (redis)`, async (t) => {
    const server = await redisServer(t)
    if (server === undefined) return
    await fn(t, { store: 'redis', storeOptions: { url: server.url, prefix: `fus-${randomBytes(4).toString('hex')}:` } })
  })
}

/** The store `store` names, built as the plugin builds it, with its calls counted (see `counting`). */
export function countedStore (store: StoreOptions, clock: () => number = Date.now): SessionStore & { calls: Record<string, number> } {
  const context = { clock, log: pino({ level: 'silent' }), maxSessionsPerUser: 100, secrets: [SECRET], cookieName: 'sid' }
  return counting(resolveStore(store.store as string, store.storeOptions ?? {}, context) as SessionStore)
}

/** How many writes (insert, patch, delete) the store has seen. */
export function writesOf (store: { calls: Record<string, number> }): number {
  return (store.calls.insert ?? 0) + (store.calls.patch ?? 0) + (store.calls.delete ?? 0)
}

export interface EveryStore {
  store: StoreOptions
  /** The cookie store: sessions sealed into the cookie, nothing kept on the server. */
  sealed: boolean
}

/**
 * Runs `fn` on every kind of store: memory, a real Redis, a real PostgreSQL (a schema of the
 * file's, dropped at teardown) and the cookie store with the in-process revocation store.
 * Redis and PostgreSQL are skipped loudly when absent, and fail the run under CI=true.
 */
export function onEveryStore (t: Test, title: string, fn: (t: Test, s: EveryStore) => Promise<void>,
  { sealed = true } = {}): void {
  onEachStore(t, title, async (t, store) => { await fn(t, { store, sealed: false }) })
  t.test(`${title} (postgres)`, async (t) => {
    const db = await testDatabase(t)
    if (db.skip !== false) return
    await fn(t, { store: { store: 'postgres', storeOptions: db.options() }, sealed: false })
  })
  if (sealed) t.test(`${title} (cookie)`, async (t) => { await fn(t, { store: { store: 'cookie', storeOptions: { revocation: 'memory' } }, sealed: true }) })
}
