import assert from 'node:assert/strict'
import { caseClock, HOUR, MINUTE, silentLog, type ConformanceCase, type TestFunction } from './shared.js'
import { newSessionId, userTag } from '../crypto/ids.js'
import type { RevocationStore, StoreContext } from '../stores/store.js'

// The conformance suite of a revocation store (what the cookie store asks on every request
// whether a session was revoked), in the style of runConformance:
//
//   runRevocationConformance(test, { createRevocation: (context, name) => new MyRevocation(context) })
//
// The case's clock is real time plus however far the case moved it, so a store whose entries
// expire on the server's own time (Redis's PXAT) and one that reads `context.clock` agree:
// the cases that wait for an entry to lapse wait a few tens of milliseconds of real time.

export interface RevocationConformanceOptions {
  /**
   * Builds a fresh, empty revocation store for one case, on the case's `context`. `name` is
   * unique per case: use it to keep the cases of a shared backend apart (a key prefix, say).
   * The suite closes the store after the case.
   */
  createRevocation: (context: StoreContext, name: string) => RevocationStore | Promise<RevocationStore>
}

interface RevocationFixture {
  revocation: RevocationStore
  now: () => number
  tick: (ms: number) => void
  /** A new session id of `userId` (tagged with the store's owner key, as the plugin makes it), or an anonymous one. */
  newId: (userId: string | undefined) => string
}

/** Resolves after `ms` of real time (the time Redis expires keys on). */
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
/** Deadlines that lapse during a case: short, so that waiting for one costs little. */
const SHORT = 30

/** Polls `check` until it holds, for at most two seconds of real time. */
async function eventually (check: () => Promise<boolean>, message: string): Promise<void> {
  for (let waited = 0; !await check(); waited += 10) {
    assert.ok(waited < 2000, message)
    await sleep(10)
  }
}

type Body = (f: RevocationFixture) => Promise<void>

const cases: Array<[name: string, title: string, body: Body]> = [
  ['deny-list', 'revoke deny-lists one id until its deadline, and says whether it was not denied already', async ({ revocation: r, now, tick, newId }) => {
    const alice = [newId('alice'), newId('alice')] as const
    const anonymous = [newId(undefined), newId(undefined)] as const
    assert.equal(await r.isRevoked(alice[0], 'alice', 0), false)
    assert.equal(await r.revoke(alice[0], now() + HOUR), true)
    assert.equal(await r.revoke(alice[0], now() + 2 * HOUR), false, 'denied already')
    assert.equal(await r.revoke(anonymous[0], now() + HOUR), true)
    assert.equal(await r.revoke(anonymous[0], now() + HOUR), false)
    tick(HOUR - MINUTE)
    assert.equal(await r.isRevoked(alice[0], 'alice', 0), true)
    assert.equal(await r.isRevoked(anonymous[0], undefined, 0), true)
    assert.equal(await r.isRevoked(alice[1], 'alice', 0), false, 'other ids are not')
    assert.equal(await r.isRevoked(anonymous[1], undefined, 0), false)
    assert.equal(await r.generation('alice'), 0, 'one revoked session leaves the generation alone')
  }],
  ['deny-expiry', 'a deny-list entry lapses once its deadline has passed, and the id can be revoked again', async ({ revocation: r, now, newId }) => {
    const ids = [newId('alice'), newId(undefined)]
    for (const id of ids) assert.equal(await r.revoke(id, now() + SHORT), true)
    // Whether they are still denied here depends on how fast this machine is: the deny-list case checks that.
    await eventually(async () => !await r.isRevoked(ids[0] as string, 'alice', 0) && !await r.isRevoked(ids[1] as string, undefined, 0),
      'the entries lapse after their deadline')
    for (const id of ids) assert.equal(await r.revoke(id, now() + HOUR), true, 'not denied any more')
  }],
  ['generations', 'revokeAll raises the generation: older sessions are revoked unless kept, newer ones are not', async ({ revocation: r, now, tick, newId }) => {
    assert.equal(await r.generation('alice'), 0)
    const [old, kept, other] = [newId('alice'), newId('alice'), newId('alice')]
    const bob = newId('bob')
    await r.revokeAll('alice', [kept], now() + HOUR)
    const g1 = await r.generation('alice')
    assert.ok(g1 > 0, 'raised')
    assert.equal(await r.isRevoked(old, 'alice', 0), true)
    assert.equal(await r.isRevoked(other, 'alice', 0), true)
    assert.equal(await r.isRevoked(kept, 'alice', 0), false, 'kept by except')
    const fresh = newId('alice')
    assert.equal(await r.isRevoked(fresh, 'alice', g1), false, 'issued at the new generation')
    assert.equal(await r.isRevoked(bob, 'bob', 0), false, 'other users keep theirs')
    assert.equal(await r.generation('bob'), 0)
    tick(1)
    await r.revokeAll('alice', [], now() + HOUR)
    const g2 = await r.generation('alice')
    assert.ok(g2 > g1, 'raised again')
    assert.equal(await r.isRevoked(kept, 'alice', 0), true, 'except holds for one revokeAll only')
    assert.equal(await r.isRevoked(fresh, 'alice', g1), true)
    assert.equal(await r.isRevoked(newId('alice'), 'alice', g2), false)
    for (let i = 0, last = g2; i < 5; i++) {
      await r.revokeAll('alice', [], now() + HOUR)
      const g = await r.generation('alice')
      assert.ok(g > last, 'raised by each revokeAll, even within one millisecond')
      last = g
    }
  }],
  ['generation-expiry', 'the generation stays above every earlier one after the user\'s entry expired', async ({ revocation: r, now, newId }) => {
    await r.revokeAll('alice', [], now() + SHORT)
    const g1 = await r.generation('alice')
    const issued = newId('alice')
    assert.equal(await r.isRevoked(issued, 'alice', g1), false)
    await sleep(2 * SHORT)
    await r.revokeAll('alice', [], now() + HOUR)
    const g2 = await r.generation('alice')
    assert.ok(g2 > g1, `${g2} > ${g1}`)
    assert.equal(await r.isRevoked(issued, 'alice', g1), true, 'issued before the second revokeAll')
  }],
  ['except', 'except keeps only ids of that user, and a deny-listed id stays revoked', async ({ revocation: r, now, newId }) => {
    const [kept, denied] = [newId('alice'), newId('alice')]
    const bob = newId('bob')
    const many = Array.from({ length: 1000 }, () => newId('alice'))
    await r.revokeAll('alice', [kept, denied, bob, ...many], now() + HOUR)
    assert.equal(await r.isRevoked(bob, 'bob', 0), false, 'revoking alice\'s sessions leaves bob\'s')
    await r.revokeAll('bob', [kept], now() + HOUR)
    assert.equal(await r.isRevoked(bob, 'bob', 0), true, 'alice\'s except does not keep bob\'s session')
    assert.equal(await r.isRevoked(kept, 'alice', 0), false)
    assert.equal(await r.isRevoked(many[999] as string, 'alice', 0), false, 'a long except is kept whole')
    assert.equal(await r.revoke(denied, now() + HOUR), true)
    assert.equal(await r.isRevoked(denied, 'alice', 0), true, 'the deny-list wins over except')
  }],
  ['anonymous', 'revokeAll never revokes an anonymous session', async ({ revocation: r, now, newId }) => {
    const anonymous = newId(undefined)
    await r.revokeAll('alice', [], now() + HOUR)
    assert.equal(await r.isRevoked(anonymous, undefined, 0), false)
  }],
  ['user-ids', 'user ids with glob and separator characters are kept apart', async ({ revocation: r, now, newId }) => {
    const users = ['a', 'a.b', 'a*', 'a:b', '{a}', '[a]', '?', '*', 'a b', 'A', 'é', '}{', 'a\\']
    for (const user of users.filter((_, i) => i % 2 === 0)) await r.revokeAll(user, [], now() + HOUR)
    for (const [i, user] of users.entries()) {
      assert.equal(await r.generation(user) > 0, i % 2 === 0, user)
      assert.equal(await r.isRevoked(newId(user), user, 0), i % 2 === 0, user)
    }
  }],
  ['close-twice', 'close() twice is harmless (the suite closes the store once more after the case)', async ({ revocation: r }) => {
    await r.close?.()
    await r.close?.()
  }]
]

async function withFixture (options: RevocationConformanceOptions, name: string, body: Body): Promise<void> {
  const { now, tick } = caseClock()
  const revocation = await options.createRevocation({ clock: now, log: silentLog, maxSessionsPerUser: 100 }, name)
  try {
    const key = await revocation.ownerKey?.()
    const newId = (userId: string | undefined): string =>
      newSessionId(userId === undefined || key === undefined ? undefined : userTag(key, userId))
    await body({ revocation, now, tick, newId })
  } finally {
    await revocation.close?.()
  }
}

/** The cases of the revocation suite, each with a store of its own, for any test runner. */
export function revocationConformanceCases (options: RevocationConformanceOptions): ConformanceCase[] {
  return cases.map(([name, title, body]) => ({ name, title, run: () => withFixture(options, name, body) }))
}

/** Registers every case of the revocation suite with `test(title, fn)`, as `runConformance` does. */
export function runRevocationConformance (test: TestFunction, options: RevocationConformanceOptions): void {
  for (const c of revocationConformanceCases(options)) test(c.title, c.run)
}
