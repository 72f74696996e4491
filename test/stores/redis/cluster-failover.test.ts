import t, { type Test } from 'tap'
import { Redis, type Cluster } from 'ioredis'
import { seedRedisOwnerKey, testTag } from '../../helpers/ids.js'
import { buildApp, cookieOf } from '../../helpers/app.js'
import { clusterRoles, redisCluster, replicaCaughtUp, replicaInSync, until, type RedisClusterNodes } from '../../helpers/redis.js'
import { LIBRARIES } from '../../helpers/clients.js'

// A Redis Cluster of 3 masters with a replica each, and real failovers: a master killed with
// SIGKILL, its replica promoted by the cluster itself. Each failover uses another master.
//  - Without waitForReplicas, a deleteAll the master acknowledged while its replica was cut off
//    is undone by the failover: the logged-out cookie authenticates again.
//  - With waitForReplicas: 1, the same deleteAll fails with a typed 503 instead; with the
//    replica connected, it resolves, and the failover keeps the cookie dead.
//  - A master killed under load: the other masters keep serving, the failed slots answer typed
//    503s only, and every session comes back with its data, without restarting the app.

const TIMEOUT = 500
const cluster = await redisCluster(t, { replicas: 1 }) as RedisClusterNodes
if (cluster !== undefined) {
  let unhandled = 0
  const onUnhandled = (): void => { unhandled++ }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })
  const client: Cluster = cluster.client()
  t.teardown(() => client.disconnect())
  const used = new Set<number>() // masters already failed over
  let live = cluster.nodes[0]?.port as number // a node that is still up, to ask about the topology

  /** The first user `<name>-<i>` whose sessions live on the master on `port`. */
  const userOn = async (port: number, name: string): Promise<string> => {
    const ranges = await client.cluster('SLOTS') as unknown as Array<[number, number, [string, number]]>
    for (let i = 0; ; i++) {
      const slot = await client.cluster('KEYSLOT', testTag(`${name}-${i}`)) as number
      if (ranges.some(([from, to, [, owner]]) => owner === port && slot >= from && slot <= to)) return `${name}-${i}`
    }
  }

  /** A master not failed over yet, its replica, and a user whose sessions live on that master. */
  const pick = async (name: string): Promise<{ master: number, replica: number, user: string }> => {
    // As `live` sees the cluster: gossip may take a moment to tell it of a replica's new role.
    const [master, replica] = await until('a master with a replica', async () =>
      [...await clusterRoles(live)].find(([m, r]) => !used.has(m) && r !== undefined)) as [number, number]
    used.add(master)
    live = [...(await clusterRoles(live)).keys()].find((m) => m !== master) as number
    return { master, replica, user: await userOn(master, name) }
  }

  /** Cuts the replica off: frozen (SIGSTOP), and its link dropped by the master, so that nothing written from now on reaches it. */
  const cutOff = async (master: number, replica: number): Promise<void> => {
    cluster.servers.get(replica)?.pause()
    const redis = new Redis(master, '127.0.0.1')
    await redis.client('KILL', 'TYPE', 'replica')
    redis.disconnect()
  }

  /** Kills the master, lets the replica go on, and waits until the cluster promoted it. */
  const failover = async (master: number, replica: number): Promise<number> => {
    const started = Date.now()
    await cluster.servers.get(master)?.crash()
    cluster.servers.get(replica)?.resume()
    await until(`the replica on ${replica} promoted`, async () => (await clusterRoles(replica)).has(replica) ? true : undefined)
    return Date.now() - started
  }

  /** Polls /me with `cookie` until the store answers it again; resolves its userId. */
  const meAfterFailover = async (app: Awaited<ReturnType<typeof buildApp>>, cookie: string): Promise<string | null> =>
    await until('the store to answer after the failover', async () => {
      const res = await app.inject({ url: '/me', headers: { cookie } })
      return res.statusCode === 200 ? res.json().userId as string | null : undefined
    })

  const login = async (t: Test, app: Awaited<ReturnType<typeof buildApp>>, user: string): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/login', payload: { user } })
    t.equal(res.statusCode, 200, res.statusCode === 200 ? 'logged in' : res.body)
    return cookieOf(res) as string
  }

  const appWith = async (t: Test, prefix: string, waitForReplicas?: number): Promise<Awaited<ReturnType<typeof buildApp>>> => {
    // Users are picked by their tag under TEST_OWNER_KEY: the store reads it from there.
    await seedRedisOwnerKey(client, prefix)
    const app = await buildApp({ store: 'redis', storeOptions: { client, prefix, timeout: TIMEOUT, ...(waitForReplicas === undefined ? {} : { waitForReplicas }) } })
    t.teardown(() => app.close())
    return app
  }

  t.test('waitForReplicas: 1 with the replica cut off: deleteAll fails with a typed 503, never resolves as if safe', async (t) => {
    const { master, replica, user } = await pick('cut')
    used.delete(master) // no failover here: the next test fails this master over
    const app = await appWith(t, 'cut:', 1)
    const cookie = await login(t, app, user)
    await cutOff(master, replica)
    const started = Date.now()
    await t.rejects(app.sessions.deleteAll(user), { code: 'FST_SESSION_STORE_NOT_REPLICATED', statusCode: 503, message: /only 0 of 1 replicas/ })
    t.ok(Date.now() - started < TIMEOUT + 300, 'within the store\'s timeout')
    cluster.servers.get(replica)?.resume()
    await replicaInSync(replica)
    t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null, 'the master applied it; the caller was told it may not last')
  })

  t.test('without waitForReplicas, an acknowledged deleteAll is undone by the failover', async (t) => {
    const { master, replica, user } = await pick('lost')
    const app = await appWith(t, 'lost:')
    const cookie = await login(t, app, user)
    await replicaCaughtUp(master, replica)
    await cutOff(master, replica)
    t.equal(await app.sessions.deleteAll(user), 1, 'the master acknowledged the revocation')
    t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null, 'the cookie is logged out')
    const ms = await failover(master, replica)
    t.equal(await meAfterFailover(app, cookie), user, 'the promoted replica never saw it: the logged-out cookie authenticates again')
    t.comment(`failover (kill to promotion): ${ms} ms`)
  })

  t.test('with waitForReplicas: 1, an acknowledged deleteAll survives the failover', async (t) => {
    const { master, replica, user } = await pick('kept')
    const app = await appWith(t, 'kept:', 1)
    const cookie = await login(t, app, user)
    const other = await login(t, app, user)
    t.equal(await app.sessions.deleteAll(user), 2, 'resolved: the replica acknowledged it')
    await failover(master, replica) // at once: no time for a late replication to help
    t.equal(await meAfterFailover(app, cookie), null, 'the cookie stays logged out after the failover')
    t.equal((await app.inject({ url: '/me', headers: { cookie: other } })).json().userId, null)
    // The store's revocation connection finds the new master on its own, a little later.
    const fresh = await until('a login on the promoted master', async () => {
      const res = await app.inject({ method: 'POST', url: '/login', payload: { user } })
      return res.statusCode === 200 ? cookieOf(res) as string : undefined
    })
    await t.rejects(app.sessions.deleteAll(user), { code: 'FST_SESSION_STORE_NOT_REPLICATED' },
      'the promoted master has no replica left: revocations say so instead of pretending')
    t.equal((await app.inject({ url: '/me', headers: { cookie: fresh } })).json().userId, null)
  })

  // The state a failover leaves behind, until a replica is added: the promoted master has none.
  // Only a write that revoked something waits for replicas, so logins there cost what they
  // cost without waitForReplicas; a revocation is told at once (ROLE lists no replica), not
  // after WAIT's whole timeout.
  for (const maker of LIBRARIES) {
    t.test(`a master that lost its replica, ${maker.name}: logins answer in normal time, deleteAll fails fast`, async (t) => {
      // A master without a replica in the Cluster's view, and by its own ROLE: none connected to it.
      const alone = await until('a master without a replica', async () => {
        for (const [port, replica] of await clusterRoles(live)) {
          if (replica !== undefined) continue
          const redis = new Redis(port, '127.0.0.1')
          try {
            const role = await redis.role() as [string, number, unknown[]]
            if (role[2].length === 0) return port
          } finally {
            redis.disconnect()
          }
        }
        return undefined
      })
      const user = await userOn(alone, `alone-${maker.name}`)
      const own = await maker.cluster([{ host: '127.0.0.1', port: live }])
      t.teardown(() => maker.close(own))
      // The user was picked by its tag under TEST_OWNER_KEY: the store must tag with it too.
      await seedRedisOwnerKey(client, 'alone:')
      const app = await buildApp({ store: 'redis', storeOptions: { client: own, prefix: 'alone:', timeout: TIMEOUT, waitForReplicas: 1 } })
      t.teardown(() => app.close())
      await login(t, app, user) // connections made, scripts loaded
      const times: number[] = []
      for (let i = 0; i < 3; i++) {
        const started = Date.now()
        await login(t, app, user)
        times.push(Date.now() - started)
      }
      t.ok(Math.max(...times) < TIMEOUT / 2, `three logins, none waiting for a replica (${times.join(', ')} ms)`)
      const started = Date.now()
      await t.rejects(app.sessions.deleteAll(user), { code: 'FST_SESSION_STORE_NOT_REPLICATED', statusCode: 503, message: /only 0 of 1 replicas/ })
      t.ok(Date.now() - started < TIMEOUT / 2, `deleteAll told at once (${Date.now() - started} ms), not after WAIT's timeout`)
    })
  }

  t.test('a manual failover (CLUSTER FAILOVER on the replica): revocations follow the slot to its new master', async (t) => {
    const { master, replica, user } = await pick('manual')
    used.delete(master) // the old master lives on, as a replica: the next test may fail it over again
    const app = await appWith(t, 'manual:', 1)
    const cookie = await login(t, app, user)
    const redis = new Redis(replica, '127.0.0.1')
    t.teardown(() => redis.disconnect())
    await redis.cluster('FAILOVER')
    await until('the manual failover', async () => (await clusterRoles(replica)).get(replica) === master ? true : undefined)
    await replicaInSync(master)
    t.equal(await app.sessions.deleteAll(user), 1, 'sent to the old owner, moved, sent again to the new one, acknowledged by its replica')
    t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().userId, null)
  })

  t.test('a master killed under load: the others keep serving, its slots answer typed 503s, then all is back', async (t) => {
    const { master, replica, user } = await pick('load')
    const app = await appWith(t, 'load:')
    const roles = await clusterRoles(live)
    // One user on each live master (a session per user), the victim's among them.
    const others: string[] = []
    for (const port of roles.keys()) if (port !== master) others.push(await userOn(port, `other-${port}`))
    const cookies = new Map<string, string>()
    for (const name of [user, ...others]) {
      const cookie = await login(t, app, name)
      await app.inject({ method: 'POST', url: '/set', headers: { cookie }, payload: { key: 'name', value: name } })
      cookies.set(name, cookie)
    }
    await replicaCaughtUp(master, replica)
    const seen = { victim: new Map<string, number>(), others: new Map<string, number>() }
    const count = (map: Map<string, number>, key: string): void => { map.set(key, (map.get(key) ?? 0) + 1) }
    let killedAt = 0
    let backAt = 0
    const load = async (name: string): Promise<void> => {
      const cookie = cookies.get(name) as string
      for (let i = 0; i < 4000 && (backAt === 0 || Date.now() < backAt + 500); i++) {
        const sent = Date.now()
        const res = await app.inject({ url: '/me', headers: { cookie } })
        const body = res.json()
        const outcome = res.statusCode === 200 ? (body.name === name ? '200 with its data' : `200 ${JSON.stringify(body)}`) : `${res.statusCode} ${body.code}`
        count(name === user ? seen.victim : seen.others, outcome)
        // Back: a request sent once the master was dead and its slots had failed, answered.
        if (name === user && killedAt > 0 && sent >= killedAt && seen.victim.has('503 FST_SESSION_STORE_UNAVAILABLE') &&
          backAt === 0 && outcome === '200 with its data') backAt = Date.now()
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    }
    const running = [user, ...others].flatMap((name) => [load(name), load(name), load(name)]) // three clients each
    await new Promise((resolve) => setTimeout(resolve, 200))
    const killing = Date.now()
    await cluster.servers.get(master)?.crash()
    killedAt = Date.now()
    await Promise.all(running)
    t.ok(backAt > 0, 'the victim\'s session came back')
    t.same([...seen.others.keys()], ['200 with its data'], 'the sessions on the other masters were served throughout')
    t.same([...seen.victim.keys()].sort(), ['200 with its data', '503 FST_SESSION_STORE_UNAVAILABLE'], 'the failed slots answered typed 503s only')
    for (const [name, cookie] of cookies) {
      t.equal((await app.inject({ url: '/me', headers: { cookie } })).json().name, name, `${name}'s data is back`)
    }
    t.equal(unhandled, 0, 'no unhandled rejection')
    t.comment(`victim: ${seen.victim.get('503 FST_SESSION_STORE_UNAVAILABLE')} × 503, back ${((backAt - killing) / 1000).toFixed(1)} s after the kill; others: ${seen.others.get('200 with its data')} × 200`)
  })
}
