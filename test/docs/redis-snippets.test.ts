import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { redisCluster, redisServer } from '../helpers/redis.js'

// Each TypeScript snippet of docs/redis.md, run as written: an app with a client of each
// library, on a single Redis and on a Cluster, which must log a user in and close cleanly.

const root = fileURLToPath(new URL('../..', import.meta.url))
const snippets = [...readFileSync(join(root, 'docs/redis.md'), 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string)
// Plain JavaScript as written (the snippets use no type syntax), under node_modules: outside coverage.
const dir = join(root, 'node_modules', '.cache', `redis-snippets-${process.pid}`)
mkdirSync(dir, { recursive: true })
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
async function run (code: string): Promise<void> {
  const file = join(dir, `snippet-${n++}.mjs`)
  writeFileSync(file, code
    .replace("from 'fastify-user-sessions'", `from ${JSON.stringify(pathToFileURL(join(root, 'lib/index.ts')).href)}`)
    .replace('Fastify({ logger: true })', 'Fastify()') +
    "\napp.post('/login', async (req) => { await req.session.login('ann'); return { id: req.session.id } })\nexport { app }\n")
  const { app } = await import(pathToFileURL(file).href) as { app: FastifyInstance }
  const res = await app.inject({ method: 'POST', url: '/login' })
  t.equal(res.statusCode, 200, res.body)
  await app.close()
}

process.env.SESSION_SECRET = 'a-secret-for-the-snippets-of-the-docs'
t.equal(snippets.length, 4, 'four snippets')

t.test('single server: node-redis, ioredis, iovalkey', async (t) => {
  const server = await redisServer(t)
  if (server === undefined) return
  process.env.REDIS_URL = server.url
  for (const code of snippets.filter((s) => !s.includes('Cluster') && !s.includes('createCluster'))) {
    await run(code)
    if (code.includes("from 'ioredis'")) await run(code.replace("from 'ioredis'", "from 'iovalkey'"))
  }
  t.pass()
})

t.test('Cluster: node-redis, ioredis', async (t) => {
  const cluster = await redisCluster(t)
  if (cluster === undefined) return
  const node = cluster.nodes[0] as { host: string, port: number }
  process.env.REDIS_CLUSTER_URL = `redis://${node.host}:${node.port}`
  for (const code of snippets.filter((s) => s.includes('Cluster'))) {
    // waitForReplicas: 1 needs replicas, which this Cluster has not: the snippet's login revokes nothing, so it passes.
    await run(code)
  }
  t.pass()
})
