// Whether each target of the issue is met, from the figures of one run.
import { bareKey, byName, key, modeLabel, MODES, RPS_TARGETS, TARGETS } from './scenarios.js'
import { fmtBytes, fmtMicros, fmtRatio, median } from './stats.js'

const ROUTE_NAMES = ['write', 'read']

/** Per-round ratios of one cell's figure to another cell's, rounds paired. */
export function pairedRatios (cells, a, b, field = 'rps') {
  const x = cells[a]
  const y = cells[b]
  if (x?.status !== 'ok' || y?.status !== 'ok') return []
  const n = Math.min(x.samples.length, y.samples.length)
  const out = []
  for (let i = 0; i < n; i++) {
    const num = x.samples[i][field]
    const den = y.samples[i][field]
    if (num !== null && den) out.push(num / den)
  }
  return out
}

/** Median CPU per request a cell adds over bare Fastify on the same route, in µs. */
export function addedCpu (cells, k, route, mode) {
  const c = cells[k]
  const bare = cells[bareKey(route, mode)]
  if (c?.status !== 'ok' || bare?.status !== 'ok') return null
  const ours = median(c.samples.map((s) => s.cpuUsPerReq))
  const base = median(bare.samples.map((s) => s.cpuUsPerReq))
  return ours === null || base === null ? null : ours - base
}

function verdict (measured, goal, atMost) {
  if (measured === null || measured === undefined || Number.isNaN(measured)) return null
  return atMost ? measured <= goal : measured >= goal
}

export function evaluateTargets (run) {
  const { cells } = run
  const MODE_LABEL = { hot: modeLabel('hot'), spread: modeLabel('spread', run.meta.sessions) }
  const list = []
  const add = (name, measured, goal, atMost, fmt = fmtRatio, note = '') => {
    list.push({ name, measured: measured === null ? '–' : fmt(measured), goal: (atMost ? '≤ ' : '≥ ') + fmt(goal), met: verdict(measured, goal, atMost), note })
  }

  for (const [ours, share] of [['ours-memory', TARGETS.memoryCpuShare], ['ours-cookie', TARGETS.cookieCpuShare], ['ours-cookie-node', TARGETS.cookieCpuShare]]) {
    const peer = byName[ours].peer
    for (const mode of MODES) {
      for (const route of ROUTE_NAMES) {
        const a = addedCpu(cells, key(ours, route, mode), route, mode)
        const b = addedCpu(cells, key(peer, route, mode), route, mode)
        const ratio = a === null || b === null || b <= 0 ? null : a / b
        add(`CPU/request added over bare: ${byName[ours].label} ÷ ${byName[peer].label}, ${route}, ${MODE_LABEL[mode]}`,
          ratio, share, true, fmtRatio, a === null || b === null ? '' : `${fmtMicros(a)} vs ${fmtMicros(b)}`)
      }
    }
  }
  for (const { ours, vs, route, goal } of RPS_TARGETS) {
    for (const mode of MODES) {
      add(`req/s: ${byName[ours].label} ÷ ${byName[vs].label}, ${route}, ${MODE_LABEL[mode]}`,
        median(pairedRatios(cells, key(ours, route, mode), key(vs, route, mode))), goal, false)
    }
  }
  const cost = run.redisCost?.['ours-redis']
  const num = (x) => x.toFixed(2)
  add("Redis round trips per read-only request, ours 'redis'", cost?.read?.roundTrips ?? null, TARGETS.redisReadRoundTrips, true, num)
  add("Redis round trips per write request, ours 'redis'", cost?.write?.roundTrips ?? null, TARGETS.redisWriteRoundTrips, true, num)

  for (const row of run.memory?.store ?? []) {
    add(`memory store heap per session at ${row.size.toLocaleString('en-US')} sessions`, row.bytes, TARGETS.memoryBytesPerSession, true, fmtBytes)
  }
  const loggedIn = run.memory?.loggedIn
  add(`memory store heap per logged-in session, ${loggedIn?.users.toLocaleString('en-US') ?? '–'} users with one session each, per-user index included`,
    loggedIn?.bytes ?? null, TARGETS.memoryBytesPerLoggedInSession, true, fmtBytes)
  const cl = run.memory?.cookieless
  if (cl !== undefined) {
    list.push({
      name: `cookieless requests store nothing (${cl.requests.toLocaleString('en-US')} requests)`,
      measured: `${cl.ours.stored} stored`,
      goal: '0 stored',
      met: cl.ours.stored === 0,
      note: `@fastify/session stored ${cl.peer.stored.toLocaleString('en-US')}`
    })
  } else add('cookieless requests store nothing', null, 0, true)

  const redis = run.getAll?.redis
  const sizes = run.getAll?.sizes ?? []
  const first = sizes[0]
  const last = sizes.at(-1)
  const at = (impl, size) => redis?.[impl]?.[size]?.median ?? null
  const flat = at('ours', first) === null || at('ours', last) === null ? null : at('ours', last) / at('ours', first)
  add(`getAll on Redis flat: time at ${fmtSize(last)} ÷ time at ${fmtSize(first)} stored sessions`, flat, TARGETS.getAllFlatness, true)
  for (const impl of ['scan', 'scan1000']) {
    const speedup = at(impl, last) === null || at('ours', last) === null ? null : at(impl, last) / at('ours', last)
    add(`getAll on Redis vs the SCAN design (${impl === 'scan' ? 'default COUNT' : 'COUNT 1000'}) at ${fmtSize(last)} stored sessions`,
      speedup, TARGETS.getAllVsScan, false, (x) => x.toFixed(0) + '×')
  }
  return list
}

export function fmtSize (n) {
  if (n === undefined) return '?'
  if (n >= 1e6 && n % 1e6 === 0) return n / 1e6 + 'M'
  if (n >= 1e3 && n % 1e3 === 0) return n / 1e3 + 'k'
  return String(n)
}
