import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
// @ts-expect-error: the bench is plain JavaScript, without types
import { paced } from '../../bench/lib/paced.js'

// bench:fixed's load: requests leave at their time, evenly over the second, whatever became of
// the ones before (autocannon's overallRate sends each second's share in a burst at its top).
// What is checked holds on any machine, however loaded: request k leaves no earlier than
// (k - 1) / rate seconds after the start, so the server cannot see it earlier either.

interface Result { total: number, errors: number, non2xx: number, duration: number }

async function serve (t: Test, handle: (n: number, req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string, arrivals: number[] }> {
  const arrivals: number[] = []
  const server = createServer((req, res) => {
    arrivals.push(performance.now())
    handle(arrivals.length, req, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/counter`, arrivals }
}

t.test('the requests are spread over the duration, not sent at once', async (t) => {
  const seen: Array<[string | undefined, string | undefined]> = []
  const { url, arrivals } = await serve(t, (_n, req, res) => {
    seen.push([req.method, req.headers.cookie])
    res.end('ok')
  })
  const start = performance.now()
  const result = await paced({ url, method: 'POST', headers: { cookie: 'sid=1' }, rate: 200, duration: 1, connections: 10 }) as Result
  t.match(result, { total: 200, errors: 0, non2xx: 0 })
  t.equal(arrivals.length, 200, 'every request reached the server once')
  t.ok((arrivals[100] as number) - start >= 500 - 1, `the 101st no earlier than 0.5 s in (${((arrivals[100] as number) - start).toFixed(0)} ms)`)
  t.ok(result.duration >= 0.995 - 0.001, `the last no earlier than 199 / 200 s in (${result.duration.toFixed(3)} s)`)
  t.same(seen[0], ['POST', 'sid=1'], 'with the method and headers asked for')
})

t.test('a failed request, a non-2xx answer and one that never answers are counted, and the run still ends', async (t) => {
  const { url } = await serve(t, (n, _req, res) => {
    if (n === 3) res.statusCode = 500
    if (n === 5) return res.socket?.destroy()
    if (n === 7) return // never answers: the timeout ends it
    res.end('ok')
  })
  const result = await paced({ url, rate: 100, duration: 0.1, timeout: 3000 }) as Result
  t.match(result, { total: 8, errors: 2, non2xx: 1 })
})
