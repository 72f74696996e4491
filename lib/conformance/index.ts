import assert from 'node:assert/strict'
import { cases, type ConformanceOptions, type Fixture } from './cases.js'
import { HOUR, nullProto, silentLog, type ConformanceCase, type TestFunction } from './shared.js'
import { hashSecret, newSecret, newSessionId, userTag } from '../crypto/ids.js'
import type { SessionPatch, StoredSession } from '../stores/store.js'

// One suite for every session store, after undici's cacheStoreTests(Store): the built-in
// stores run it, and so can anyone who writes a store, with any test runner:
//
//   import { test } from 'node:test'
//   import { runConformance } from 'fastify-user-sessions/conformance'
//   runConformance(test, { createStore: (context) => new MyStore(context) })
//
// Beside it, the suites of the other contracts: runStatelessConformance (stateless.ts)
// and runRevocationConformance (revocation.ts).

async function withFixture (options: ConformanceOptions, name: string, maxSessionsPerUser: number,
  fn: (f: Fixture) => Promise<void>): Promise<void> {
  let time = Date.now()
  const now = (): number => time
  const store = await options.createStore({ clock: now, log: silentLog, maxSessionsPerUser }, name)
  // Ids as the plugin makes them: a user's tagged with the store's owner key, when it keeps one.
  const key = await store.ownerKey?.()
  const make = (userId?: string, changes: Partial<StoredSession> = {}): { record: StoredSession, secret: string } => {
    const secret = newSecret()
    const record: StoredSession = {
      id: newSessionId(userId === undefined || key === undefined ? undefined : userTag(key, userId)),
      secretHash: hashSecret(secret),
      userId,
      data: { n: 1 },
      createdAt: time,
      lastSeenAt: time,
      expiresAt: time + HOUR,
      authenticatedAt: userId === undefined ? undefined : time,
      ip: '203.0.113.7',
      userAgent: 'conformance/1.0',
      policy: undefined,
      dbsc: undefined,
      ...changes
    }
    return { record, secret }
  }
  const add = async (userId?: string, changes?: Partial<StoredSession>): Promise<StoredSession> => {
    const { record } = make(userId, changes)
    assert.equal(await store.insert(record), true, 'insert of a new id')
    return record
  }
  const patch = (changes: Partial<SessionPatch> = {}): SessionPatch =>
    ({ clear: false, set: nullProto(), unset: [], lastSeenAt: time, ...changes })
  try {
    await fn({ store, now, tick: (ms) => { time += ms }, make, add, patch })
  } finally {
    await store.close?.()
  }
}

/** The cases, each with its own store, for any test runner. */
export function conformanceCases (options: ConformanceOptions): ConformanceCase[] {
  return cases.map(([name, title, body, max = 100]) => ({
    name,
    title,
    run: () => withFixture(options, name, max, (f) => body(f, options, name))
  }))
}

/** Registers every case with `test(title, fn)`: node:test's `test`, `(title, fn) => t.test(title, fn)` in tap, mocha's `it`... */
export function runConformance (test: TestFunction, options: ConformanceOptions): void {
  for (const c of conformanceCases(options)) test(c.title, c.run)
}

export { runStatelessConformance, statelessConformanceCases, type StatelessConformanceOptions } from './stateless.js'
export { runRevocationConformance, revocationConformanceCases, type RevocationConformanceOptions } from './revocation.js'
export type { ConformanceOptions, ConformanceCase, TestFunction }
