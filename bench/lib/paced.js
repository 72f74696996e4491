// An open-loop load at a fixed rate, spread evenly over time: request i leaves at start +
// i / rate, whatever became of the ones before it.
//
// autocannon's `overallRate` is not that: each connection sends its share of a second as fast
// as the server answers, from the top of each second, then waits for the next (its
// `reqsMadeThisSecond`; mcollina/autocannon#174). At 2,000 req/s on a server that serves 20,000, that is a burst at full
// capacity for a tenth of each second, then nothing: Redis then reads a dozen requests'
// commands per wake-up, which no app below its capacity sees.
import { Agent, request } from 'node:http'

/**
 * `rate` requests per second for `duration` seconds, over at most `connections` keep-alive
 * connections (a request that finds them all busy waits for one). Resolves how many were
 * answered, how many failed or were not 2xx, and the seconds from the first to the last answer.
 */
export function paced ({ url, method = 'GET', headers = {}, rate, duration, connections = 50, timeout = 10_000 }) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  const target = new URL(url)
  const total = Math.round(rate * duration)
  let issued = 0
  let answered = 0
  let errors = 0
  let non2xx = 0
  return new Promise((resolve) => {
    const start = performance.now()
    const settle = () => {
      if (issued < total || answered + errors < total) return
      clearInterval(timer)
      agent.destroy()
      resolve({ total: answered, errors, non2xx, duration: (performance.now() - start) / 1000 })
    }
    const send = () => {
      const req = request({ agent, host: target.hostname, port: target.port, path: target.pathname, method, headers, timeout }, (res) => {
        if (res.statusCode < 200 || res.statusCode > 299) non2xx++
        res.on('end', () => { answered++; settle() })
        res.resume()
      })
      req.on('error', () => { errors++; settle() })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.end()
    }
    // Node's timers fire about once a millisecond: each tick sends what is due by then.
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor((performance.now() - start) * rate / 1000) + 1)
      while (issued < due) {
        issued++
        send()
      }
    }, 1)
  })
}
