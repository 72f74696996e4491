import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import type { FastifyUserSessionsOptions } from '../../lib/index.js'
import { redisServer } from './redis.js'

export type StoreOptions = Pick<FastifyUserSessionsOptions, 'store' | 'storeOptions'>

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
