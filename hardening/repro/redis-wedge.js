// Reproduction of finding 1 (hardening/RESULTS.md): the Redis store's own client stops
// answering for good once redis-server goes down while an auto-pipelined batch awaits its reply.
//   node hardening/repro/redis-wedge.js [--no-autopipelining] [--cycles N]
// An ioredis client with the options lib/redis/connection.ts gives the client it makes
// for `storeOptions.url` keeps 200 commands in flight; redis-server is killed (SIGKILL) and
// started again on the same port, up to N times (default 10). After each restart, once the
// client is 'ready', one GET must be answered within 3 s. Exit 1 at the first restart after
// which it is not (the wedge), 0 when every restart recovers. With --no-autopipelining (the
// same options otherwise) every restart recovers.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'

const { values } = parseArgs({ options: { 'no-autopipelining': { type: 'boolean', default: false }, cycles: { type: 'string', default: '10' } } })
const autoPipelining = !values['no-autopipelining']
const server = createServer()
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const port = server.address().port
await new Promise((resolve) => server.close(resolve))

async function startRedis () {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  for await (const chunk of child.stdout) {
    out += chunk
    if (out.includes('Ready to accept connections')) break
  }
  child.stdout.resume()
  return child
}

let redis = await startRedis()
const client = new Redis(`redis://127.0.0.1:${port}`, {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  connectTimeout: 2000,
  enableAutoPipelining: autoPipelining
})
client.on('error', () => {})
await once(client, 'ready')

const load = { stop: false }
const loops = Array.from({ length: 200 }, async (_, i) => {
  while (!load.stop) {
    // A command lost with the connection never settles: bound each wait, as the store does.
    await Promise.race([client.set(`k${i}`, 'x'.repeat(1000)).catch(() => {}), sleep(2000)])
    if (client.status === 'ready') await new Promise(setImmediate) // yield to I/O: a command refused at once must not spin the loop
    else await sleep(20)
  }
})

let wedged = 0
const cycles = Number(values.cycles)
for (let cycle = 1; cycle <= cycles && wedged === 0; cycle++) {
  await sleep(300)
  redis.kill('SIGKILL')
  await once(redis, 'exit')
  await sleep(300)
  redis = await startRedis()
  if (client.status !== 'ready') await once(client, 'ready')
  const answer = await Promise.race([client.get('k0').then(() => 'answered', (err) => `rejected: ${err.message}`), sleep(3000).then(() => 'no answer within 3 s')])
  console.log(`enableAutoPipelining: ${autoPipelining}; restart ${cycle}: status ${client.status}, GET: ${answer}`)
  if (answer !== 'answered') wedged = cycle
}
load.stop = true
client.disconnect()
redis.kill('SIGKILL')
await Promise.allSettled(loops)
console.log(wedged === 0 ? `recovered after each of ${cycles} restarts` : `WEDGED after restart ${wedged}: the client is 'ready' and answers nothing`)
process.exit(wedged === 0 ? 0 : 1)
