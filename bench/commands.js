// What the commands of one request cost Redis by themselves, without waking it up.
//
// bench:fixed's Redis CPU per request is mostly what waking Redis costs (the kernel: epoll, the
// socket, the scheduler), which any session pays per round trip, whatever it sends. This probe
// leaves that out. For each scenario it records the commands one request of each route sends
// (MONITOR, on the scenario's own redis-server), sends them again as many requests' worth at a
// time in one write, and divides redis-server's CPU by the requests it replayed. What is left
// is the work of the commands: parsing them, running them, writing their replies.
//
// Sessions are made by a request with no User-Agent to speak of (`node`, what the other benches
// send) and, with --browser, by desktop Chrome, anonymous and signed in (`POST /login`: ours
// then keeps ip and user agent for the device list, in pieces of the session's hash, see
// docs/redis.md; the floors have no sign-in).
//
//   npm run bench:commands [-- --requests 100000 --batch 200 --rounds 5 --browser --only a,b --out DIR]
import { mkdirSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { CHROME_USER_AGENT, seedSessions, seedSignedIn } from './lib/load.js'
import { killAll, startServer } from './lib/procs.js'
import { redisCpuSeconds, startRedis } from './lib/redis.js'
import { REDIS_REF as REF, redisScenarios } from './lib/scenarios.js'
import { median } from './lib/stats.js'

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '5' },
    browser: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: new URL('./results/', import.meta.url).pathname }
  }
})
const REQUESTS = Number(values.requests)
const BATCH = Number(values.batch)
const ROUNDS = Number(values.rounds)

const SCENARIOS = redisScenarios(values.only)
/** [kind, label, User-Agent, signed in] */
const SESSIONS = [
  ['node', '`fetch`', 'node', false],
  ...(values.browser ? [['chrome', 'desktop Chrome', CHROME_USER_AGENT, false], ['chrome-user', 'desktop Chrome, signed in', CHROME_USER_AGENT, true]] : [])
]
const ROUTES = [['POST', 'write'], ['GET', 'read']]

/** A command in the protocol Redis reads. */
function resp (args) {
  let out = `*${args.length}\r\n`
  for (const arg of args) out += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`
  return out
}

/** The arguments of a MONITOR line, its escapes (sdscatrepr's) undone. */
function monitorArgs (line) {
  const args = []
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
    args.push(m[1].replace(/\\(x[0-9a-f]{2}|.)/g, (_, e) => e.length === 3
      ? String.fromCharCode(parseInt(e.slice(1), 16))
      : ({ n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' })[e] ?? e))
  }
  return args
}

/**
 * A raw connection: `send(text)` writes, `until(test)` resolves once `test(buffered text)` is
 * true, then drops what it read.
 */
async function raw (port) {
  const socket = connect({ host: '127.0.0.1', port })
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  socket.setEncoding('latin1')
  let text = ''
  let waiting
  socket.on('data', (chunk) => {
    text += chunk
    if (waiting !== undefined && waiting.test(text)) {
      const { resolve } = waiting
      waiting = undefined
      const got = text
      text = ''
      resolve(got)
    }
  })
  return {
    send: (data) => socket.write(data, 'latin1'),
    until: (test) => new Promise((resolve) => {
      if (test(text)) {
        const got = text
        text = ''
        return resolve(got)
      }
      waiting = { test, resolve }
    }),
    close: () => socket.destroy()
  }
}

/** The commands the server sends to Redis for one request of `method`, scripts' own left out. */
async function record (port, redisPort, method, cookie) {
  const monitor = await raw(redisPort)
  monitor.send(resp(['MONITOR']))
  await monitor.until((t) => t.startsWith('+OK\r\n'))
  const marker = await raw(redisPort)
  const mark = async (word) => {
    marker.send(resp(['ECHO', word]))
    await marker.until((t) => t.endsWith(`${word}\r\n`))
    return await monitor.until((t) => t.includes(`"ECHO" "${word}"`) || t.includes(`"echo" "${word}"`))
  }
  await mark('start')
  const res = await fetch(`http://127.0.0.1:${port}/counter`, { method, headers: { cookie } })
  if (res.status !== 200) throw new Error(`recording: status ${res.status}`)
  await res.arrayBuffer()
  const lines = (await mark('end')).split('\r\n')
  monitor.close()
  marker.close()
  // "+<time> [<db> <client>] "<command>" ...": a script's commands come from "lua".
  return lines.filter((l) => l.startsWith('+') && !l.includes(' lua] ') && !/"echo"/i.test(l)).map(monitorArgs)
}

/** Sends `commands` as `REQUESTS` requests' worth, `BATCH` requests in each write; Redis's CPU µs per request. */
async function replay (redisPort, redis, commands) {
  const conn = await raw(redisPort)
  const batch = commands.map(resp).join('').repeat(BATCH)
  const replies = commands.length * BATCH
  const complete = (text) => countReplies(text) >= replies
  const before = await redisCpuSeconds(redis.client)
  for (let sent = 0; sent < REQUESTS; sent += BATCH) {
    conn.send(batch)
    const text = await conn.until(complete)
    if (text.includes('\r\n-')) throw new Error(`replay: an error reply: ${/\r\n(-[^\r]*)/.exec(text)[1]}`)
  }
  const after = await redisCpuSeconds(redis.client)
  conn.close()
  return (after - before) / REQUESTS * 1e6
}

/** The top-level replies complete in `text` (RESP2: simple, error, integer, bulk, array of bulks). */
function countReplies (text) {
  let n = 0
  let at = 0
  const line = () => {
    const end = text.indexOf('\r\n', at)
    if (end === -1) return undefined
    const l = text.slice(at, end)
    at = end + 2
    return l
  }
  const one = () => {
    const l = line()
    if (l === undefined) return false
    if (l[0] === '$') {
      const len = Number(l.slice(1))
      if (len < 0) return true
      if (at + len + 2 > text.length) return false
      at += len + 2
      return true
    }
    if (l[0] === '*') {
      const count = Number(l.slice(1))
      for (let i = 0; i < count; i++) if (!one()) return false
    }
    return true
  }
  while (at < text.length) {
    const start = at
    if (!one()) { at = start; break }
    n++
  }
  return n
}

async function main () {
  if (process.env.REDIS_URL) throw new Error('bench:commands starts a redis-server per scenario: unset REDIS_URL')
  const cells = []
  const started = []
  for (const [name, label] of SCENARIOS) {
    const redis = await startRedis()
    if (redis.unavailable !== undefined) throw new Error(redis.unavailable)
    const redisPort = Number(new URL(redis.url).port)
    const server = await startServer(name, { env: { REDIS_URL: redis.url } })
    if (server.port === undefined) throw new Error(`${name}: ${server.error ?? server.unavailable}`)
    started.push(server, redis)
    for (const [session, , userAgent, signedIn] of SESSIONS) {
      const headers = { 'user-agent': userAgent }
      const cookie = signedIn ? await seedSignedIn(server.port, headers) : (await seedSessions(server.port, 1, 1, headers))[0]
      if (cookie === undefined) continue // a floor: no sign-in
      // The steady state of a hot session: the JIT warm, scripts loaded, last seen fresh.
      await autocannon({ url: `http://127.0.0.1:${server.port}/counter`, method: 'POST', headers: { ...headers, cookie }, connections: 10, amount: 2000 })
      for (const [method, route] of ROUTES) {
        const commands = await record(server.port, redisPort, method, cookie)
        cells.push({ name, label, session, route, method, commands, redis, redisPort, server, cookie, us: [] })
      }
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? cells : [...cells].reverse()
    for (const cell of order) {
      cell.us.push(await replay(cell.redisPort, cell.redis, cell.commands))
      process.stderr.write(`round ${round + 1} ${cell.name} ${cell.session} ${cell.route}: ${cell.us.at(-1).toFixed(3)} µs\n`)
    }
  }
  // The replay rewrote what the request wrote: the session must still read back.
  for (const cell of cells) {
    const res = await fetch(`http://127.0.0.1:${cell.server.port}/counter`, { headers: { cookie: cell.cookie } })
    const { counter } = await res.json()
    if (!(counter >= 1)) throw new Error(`${cell.name}: the session does not read back after the replay (${res.status})`)
  }
  for (const s of started) await s.stop()

  const lines = [
    '# What a request\'s commands cost Redis, without the wake-ups',
    '',
    `- ${new Date().toISOString()}, Node ${process.version}, Redis ${cells[0].redis.version}`,
    `- The commands one request sends (recorded with MONITOR), replayed ${REQUESTS.toLocaleString('en')} times, ${BATCH} requests' worth in each write, ${ROUNDS} rounds interleaved; medians of redis-server's used_cpu_user + used_cpu_sys per request replayed.`,
    `- \`npm run bench:commands -- --requests ${REQUESTS} --batch ${BATCH} --rounds ${ROUNDS}${values.browser ? ' --browser' : ''}\``,
    '',
    '| scenario | session | route | commands | µs per request | vs connect-redis |',
    '|---|---|---|---|---:|---:|'
  ]
  for (const [, route] of ROUTES) {
    for (const [session, label] of SESSIONS) {
      const ref = cells.find((c) => c.name === REF && c.session === session && c.route === route)
      for (const cell of cells.filter((c) => c.session === session && c.route === route)) {
        const us = median(cell.us)
        const vs = ref === undefined ? '' : `${median(cell.us.map((u, i) => u / ref.us[i])).toFixed(2)}×`
        const commands = cell.commands.map((c) => c[0].toUpperCase()).join(', ')
        lines.push(`| ${cell.label} | ${label} | ${route} | ${commands} | ${us.toFixed(2)} | ${vs} |`)
      }
    }
  }
  const report = lines.join('\n') + '\n'
  process.stdout.write(report)
  mkdirSync(values.out, { recursive: true })
  writeFileSync(join(values.out, 'commands.md'), report)
}

main().then(() => process.exit(0), (err) => {
  console.error(err)
  killAll()
  process.exit(1)
})
