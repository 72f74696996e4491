// Sessions to load with, and one autocannon run against one server.
import { randomBytes } from 'node:crypto'
import autocannon from 'autocannon'
import { cpuSeconds } from './procs.js'

/** `name=value` pairs of the cookies a response set, for the next request's Cookie header. */
function cookiesOf (res) {
  return res.headers.getSetCookie().map((c) => c.slice(0, c.indexOf(';') === -1 ? undefined : c.indexOf(';'))).join('; ')
}

/**
 * Creates `n` sessions by calling the write route without a cookie, `concurrency` at a time;
 * resolves their Cookie headers. Checks that a session works: its read sees the write.
 * `headers`: sent with each (a User-Agent, say).
 */
export async function seedSessions (port, n, concurrency = 16, headers = {}) {
  const base = `http://127.0.0.1:${port}/counter`
  const cookies = new Array(n)
  let next = 0
  async function worker () {
    while (next < n) {
      const i = next++
      const res = await fetch(base, { method: 'POST', headers, signal: AbortSignal.timeout(10_000) })
      await res.arrayBuffer()
      if (res.status !== 200) throw new Error(`seeding: status ${res.status}`)
      const cookie = cookiesOf(res)
      if (cookie === '') throw new Error('seeding: the write route set no cookie')
      cookies[i] = cookie
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  const check = await fetch(base, { headers: { ...headers, cookie: cookies[0] }, signal: AbortSignal.timeout(10_000) })
  const { counter } = await check.json()
  if (counter !== 1) throw new Error(`seeding: a session does not keep its counter (read ${counter} after one write)`)
  return cookies
}

/**
 * One session, signed in: `POST /login`, then one write; resolves its Cookie header, or
 * undefined when the scenario has no sign-in route (the floors). `headers`: sent with each.
 */
export async function seedSignedIn (port, headers = {}) {
  const base = `http://127.0.0.1:${port}`
  const login = await fetch(`${base}/login`, { method: 'POST', headers, signal: AbortSignal.timeout(10_000) })
  await login.arrayBuffer()
  if (login.status === 404) return undefined
  const cookie = cookiesOf(login)
  if (login.status !== 200 || cookie === '') throw new Error(`seeding: the sign-in answered ${login.status}${cookie === '' ? ' and set no cookie' : ''}`)
  const write = await fetch(`${base}/counter`, { method: 'POST', headers: { ...headers, cookie }, signal: AbortSignal.timeout(10_000) })
  const { counter } = await write.json()
  if (counter !== 1) throw new Error(`seeding: a signed-in session does not keep its counter (wrote ${counter})`)
  return cookie
}

/** Desktop Chrome's User-Agent: what a session made by a browser keeps for the device list. */
export const CHROME_USER_AGENT = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'

/** A Cookie header of the size a session cookie has, for the server without sessions. */
export function dummyCookie () {
  return 'sid=' + randomBytes(90).toString('base64url')
}

/**
 * Loads one route of one server. Each connection gets the session cookies as a list of
 * prebuilt requests, starting at its own offset, so that 1,000 sessions spread over the
 * connections and no request is rebuilt while the clock runs (the load generator shares the cores).
 */
export async function load ({ port, pid, method, cookies, connections, duration }) {
  let client = 0
  const perClient = Math.max(1, Math.floor(cookies.length / connections))
  const setupClient = (c) => {
    const offset = (client++ * perClient) % cookies.length
    const rotated = cookies.length === 1 ? cookies : [...cookies.slice(offset), ...cookies.slice(0, offset)]
    c.setRequests(rotated.map((cookie) => ({ method, path: '/counter', headers: { cookie } })))
  }
  // autocannon's own histogram keeps whole milliseconds; keep every response time instead.
  let times = new Float64Array(1 << 16)
  let count = 0
  const cpuBefore = cpuSeconds(pid)
  const run = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    pipelining: 1,
    timeout: 10,
    duration,
    sampleInt: 100, // autocannon stops on a sample tick: 100 ms, not the default whole second
    method,
    path: '/counter',
    headers: { cookie: cookies[0] },
    setupClient
  })
  run.on('response', (_client, _status, _bytes, ms) => {
    if (count === times.length) {
      const bigger = new Float64Array(times.length * 2)
      bigger.set(times)
      times = bigger
    }
    times[count++] = ms
  })
  const result = await run
  const cpuAfter = cpuSeconds(pid)
  const sorted = times.subarray(0, count).sort()
  const percentile = (p) => count === 0 ? null : sorted[Math.min(count - 1, Math.floor(p * count))]
  const requests = result.requests.total
  return {
    requests,
    rps: requests / result.duration,
    p50: percentile(0.5),
    p99: percentile(0.99),
    errors: result.errors + result.timeouts + result.non2xx,
    cpuUsPerReq: cpuBefore === null || requests === 0 ? null : (cpuAfter - cpuBefore) * 1e6 / requests
  }
}

/** `n` requests one after the other over the cookies in turn; for counting what each one costs. */
export async function sequential ({ port, method, cookies, n }) {
  const url = `http://127.0.0.1:${port}/counter`
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, { method, headers: { cookie: cookies[i % cookies.length] }, signal: AbortSignal.timeout(10_000) })
    await res.arrayBuffer()
    if (res.status !== 200) throw new Error(`status ${res.status}`)
  }
  return { requests: n }
}
