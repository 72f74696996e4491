// A flood of forged session cookies on the Redis store: req/s and Redis commands per request,
// against requests without a cookie in the same run (SECURITY.md, "Server-side cookies carry no signature").
// npm run build && node bench/forged.js [redis url]   (default: REDIS_URL, else redis://127.0.0.1:6379/5)
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
const url = process.argv[2] ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/5'
const { default: session } = await import('fastify-user-sessions')
const app = Fastify()
await app.register(session, { secret: 'x'.repeat(32), store: 'redis', storeOptions: { url, prefix: 'forged:' } })
app.get('/', async (req) => ({ n: req.session.get('n') ?? 0 }))
await app.listen({ port: 0, host: '127.0.0.1' })
const port = app.server.address().port
const redis = new Redis(url)
const b64 = (n) => randomBytes(n).toString('base64url')
const kinds = {
  none: () => undefined,
  'well-formed forged': () => `${b64(16)}.${b64(32)}`,
  'forged with a signature': () => `${b64(16)}.${b64(32)}.${randomBytes(32).toString('base64').replace(/=+$/, '')}`
}
for (const [name, make] of Object.entries(kinds)) {
  const requests = Array.from({ length: 2000 }, () => { const c = make(); return { method: 'GET', path: '/', headers: c ? { cookie: 'sid=' + encodeURIComponent(c) } : {} } })
  const before = await redis.info('stats')
  const r = await autocannon({ url: `http://127.0.0.1:${port}`, connections: 16, duration: 5, requests })
  const after = await redis.info('stats')
  const cmds = (s) => Number(/total_commands_processed:(\d+)/.exec(s)[1])
  console.log(`${name}: ${Math.round(r.requests.average)} req/s, ${Math.max(0, (cmds(after) - cmds(before) - 2) / r.requests.total).toFixed(2)} Redis commands per request, non-2xx ${r.non2xx}`)
}
await redis.quit(); await app.close()
