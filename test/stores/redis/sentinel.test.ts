import t from 'tap'
import { Redis } from 'ioredis'
import { buildApp, cookieOf } from '../../helpers/app.js'
import { redisSentinel, replicaCaughtUp, until } from '../../helpers/redis.js'
import { LIBRARIES } from '../../helpers/clients.js'

// A master, its replica and a Sentinel (redis-sentinel from Debian), a Sentinel client of each
// library passed as `client` (ioredis `new Redis({ sentinels })`, node-redis `createSentinel`):
// the master killed with SIGKILL, the Sentinel promotes the replica, the app follows without a
// restart, sessions come back with their data, and a deleteAll acknowledged with
// waitForReplicas: 1 before the kill stays done. Each library gets a Sentinel setup of its own.

let unhandled = 0
const onUnhandled = (): void => { unhandled++ }
process.on('unhandledRejection', onUnhandled)
t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

for (const maker of LIBRARIES) {
  t.test(`a Sentinel failover with the ${maker.name} Sentinel client as \`client\``, async (t) => {
    const setup = await redisSentinel(t)
    if (setup === undefined) return
    const { master, replica } = setup
    const client = await maker.sentinel(setup.sentinels, setup.name)
    // While the master is gone; the store reports the outage itself.
    ;(client as { on: (event: string, fn: () => void) => void }).on('error', () => {})
    t.teardown(() => maker.close(client))
    const app = await buildApp({ store: 'redis', storeOptions: { client, prefix: 'sentinel:', timeout: 500, waitForReplicas: 1 } })
    t.teardown(() => app.close())
    const login = async (user: string): Promise<string> => {
      const res = await app.inject({ method: 'POST', url: '/login', payload: { user } })
      t.equal(res.statusCode, 200)
      return cookieOf(res) as string
    }
    const alice = await login('alice')
    t.equal((await app.inject({ method: 'POST', url: '/set', headers: { cookie: alice }, payload: { key: 'name', value: 'Alice' } })).statusCode, 200)
    const bob = [await login('bob'), await login('bob')]
    t.equal(await app.sessions.deleteAll('bob'), 2, 'acknowledged by the replica')
    await replicaCaughtUp(master.port, replica.port) // alice's data write does not wait; let it arrive before the kill

    const killed = Date.now()
    await master.crash()
    const statuses = new Map<string, number>()
    const name = await until('the app to answer through the new master', async () => {
      const res = await app.inject({ url: '/me', headers: { cookie: alice } })
      const key = `${res.statusCode} ${res.json().code ?? ''}`.trim()
      statuses.set(key, (statuses.get(key) ?? 0) + 1)
      return res.statusCode === 200 ? res.json().name as string : undefined
    })
    const seconds = (Date.now() - killed) / 1000
    t.equal(name, 'Alice', 'alice\'s session is back with its data')
    t.same([...statuses.keys()].sort(), ['200', '503 FST_SESSION_STORE_UNAVAILABLE'], 'typed 503s only until then')
    const sentinel = new Redis(setup.sentinels[0]?.port as number, '127.0.0.1')
    t.teardown(() => sentinel.disconnect())
    t.same(await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', setup.name), ['127.0.0.1', String(replica.port)], 'the replica was promoted')
    for (const cookie of bob) t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null, 'bob stays logged out')
    const refused = await until('a revocation through the new master', async () => {
      const err = await app.sessions.deleteAll('alice').then(() => undefined, (err: { code: string }) => err)
      return err?.code === 'FST_SESSION_STORE_NOT_REPLICATED' ? err : undefined
    })
    t.match(refused, { statusCode: 503 }, 'the new master has no replica: revocations say so')
    t.equal(unhandled, 0, 'no unhandled rejection')
    t.comment(`Sentinel failover: the session answered again ${seconds.toFixed(1)} s after the kill; ${statuses.get('503 FST_SESSION_STORE_UNAVAILABLE') ?? 0} × 503 on one client meanwhile`)
  })
}
