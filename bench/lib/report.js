// The markdown report: the main table, the targets, and the side measurements.
import { bareKey, byName, cells as cellList, key, MODES, REDIS_COST_SCENARIOS } from './scenarios.js'
import { fmtBytes, fmtInt, fmtMicros, fmtNum, fmtRange, fmtRatio, median, pct, spread } from './stats.js'
import { addedCpu, evaluateTargets, fmtSize, pairedRatios } from './targets.js'

function row (cells) {
  return '| ' + cells.join(' | ') + ' |'
}

export function mainTable (run) {
  const n = fmtInt(run.meta.sessions ?? 1000)
  const sessionsLabel = { hot: '1 (hot)', spread: n }
  const cookiesLabel = { hot: '1 cookie', spread: `${n} cookies` }
  const lines = [
    row(['scenario', 'route', 'sessions', 'req/s median (min–max)', '× bare', '× peer', '× floor', 'p50 ms', 'p99 ms',
      'server CPU µs/req (min–max)', '+CPU over bare', 'errors']),
    row(Array(12).fill('---'))
  ]
  for (const c of cellList()) {
    const k = key(c.scenario, c.route, c.mode)
    const cell = run.cells[k]
    const s = byName[c.scenario]
    const sessions = s.sessions === false ? `– (${cookiesLabel[c.mode]})` : sessionsLabel[c.mode]
    const head = [s.label, c.route, sessions]
    if (cell === undefined || cell.status !== 'ok') {
      lines.push(row([...head, cell?.note ?? 'n/a (not run)', '', '', '', '', '', '', '', '']))
      continue
    }
    const samples = cell.samples
    const vsBare = c.scenario === 'bare' ? null : median(pairedRatios(run.cells, k, bareKey(c.route, c.mode)))
    const vsPeer = s.peer === undefined ? null : median(pairedRatios(run.cells, k, key(s.peer, c.route, c.mode)))
    const vsFloors = (s.floors ?? []).map((f) => `${fmtRatio(median(pairedRatios(run.cells, k, key(f, c.route, c.mode))))} ${byName[f].short}`)
    const added = c.scenario === 'bare' ? null : addedCpu(run.cells, k, c.route, c.mode)
    lines.push(row([
      ...head,
      fmtRange(samples.map((x) => x.rps)),
      c.scenario === 'bare' ? '1.00×' : fmtRatio(vsBare),
      s.peer === undefined ? '' : fmtRatio(vsPeer),
      vsFloors.join(', '),
      fmtNum(median(samples.map((x) => x.p50)), 2),
      fmtNum(median(samples.map((x) => x.p99)), 2),
      fmtRange(samples.map((x) => x.cpuUsPerReq), (v) => fmtNum(v, 1)),
      added === null ? '' : fmtNum(added, 1),
      String(samples.reduce((n, x) => n + x.errors, 0))
    ]))
  }
  return lines.join('\n')
}

function targetsTable (run) {
  const lines = [row(['target', 'measured', 'goal', 'verdict', 'detail']), row(Array(5).fill('---'))]
  for (const t of evaluateTargets(run)) {
    const verdict = t.met === null ? 'not measured' : t.met ? 'met' : '**missed**'
    lines.push(row([t.name, t.measured, t.goal, verdict, t.note]))
  }
  return lines.join('\n')
}

function redisCostTable (run) {
  const lines = [row(['scenario', 'route', 'round trips / request', 'commands / request', 'commands (per request)']), row(Array(5).fill('---'))]
  for (const name of REDIS_COST_SCENARIOS) {
    const cost = run.redisCost?.[name]
    for (const route of ['write', 'read']) {
      const c = cost?.[route]
      if (c === undefined) {
        lines.push(row([byName[name].label, route, cost?.note ?? 'n/a', '', '']))
        continue
      }
      const by = Object.entries(c.byCommand).sort((a, b) => b[1] - a[1]).map(([n, v]) => `${n} ${v.toFixed(2)}`).join(', ')
      lines.push(row([byName[name].label, route, c.roundTrips.toFixed(2), c.commands.toFixed(2), by]))
    }
  }
  return lines.join('\n')
}

function getAllTable (run) {
  const g = run.getAll
  if (g === undefined) return '_not measured_'
  const lines = [
    row(['store', 'implementation', ...g.sizes.map((n) => `${fmtSize(n)} other sessions`)]),
    row(Array(2 + g.sizes.length).fill('---'))
  ]
  const impls = {
    ours: 'ours (per-user index)',
    scan: 'reference design, SCAN MATCH (default COUNT) + MGET',
    scan1000: 'reference design, SCAN MATCH COUNT 1000 + MGET',
    scanMemory: 'reference design, every key matched against `<prefix>.<user>.`'
  }
  for (const store of ['redis', 'memory']) {
    const data = g[store]
    if (data?.note !== undefined) {
      lines.push(row([store, data.note, ...g.sizes.map(() => '')]))
      continue
    }
    for (const [impl, label] of Object.entries(impls)) {
      if (data?.[impl] === undefined) continue
      lines.push(row([store, label, ...g.sizes.map((n) => {
        const m = data[impl][n]
        return m === undefined ? '–' : `${fmtMicros(m.median)} (${m.runs}×)`
      })]))
    }
  }
  return lines.join('\n') + `\n\nMedian time of one \`getAll\` of a user with 10 sessions; (n×) is how many calls were timed. Fill time: ${g.fillSeconds ?? '–'} s.`
}

function memoryTables (run) {
  const m = run.memory
  if (m === undefined) return '_not measured_'
  const lines = [row(['what', 'sessions', 'heap per session']), row(['---', '---', '---'])]
  for (const r of m.store) lines.push(row(["ours, 'memory' store, anonymous sessions holding `{ counter }`, filled through the store API", fmtInt(r.size), fmtBytes(r.bytes)]))
  if (m.loggedIn !== undefined) {
    lines.push(row([`ours, 'memory' store, logged-in sessions (${fmtInt(m.loggedIn.users)} users, one session each, per-user index included), inserted through the store API`,
      fmtInt(m.loggedIn.users), fmtBytes(m.loggedIn.bytes)]))
  }
  for (const r of m.app) lines.push(row([r.label, fmtInt(r.size), fmtBytes(r.bytes)]))
  const cl = m.cookieless
  lines.push('', row(['cookieless requests', 'requests', 'sessions stored', 'heap growth per request']), row(Array(4).fill('---')))
  lines.push(row(["ours, 'memory'", fmtInt(cl.requests), fmtInt(cl.ours.stored), fmtBytes(cl.ours.bytesPerRequest)]))
  lines.push(row(['@fastify/session, MemoryStore (default saveUninitialized)', fmtInt(cl.requests), fmtInt(cl.peer.stored), fmtBytes(cl.peer.bytesPerRequest)]))
  return lines.join('\n')
}

/** How noisy the rounds were: spread of req/s and of CPU per request across rounds, per cell. */
export function noise (run) {
  const rps = []
  const cpu = []
  for (const cell of Object.values(run.cells)) {
    if (cell.status !== 'ok' || cell.samples.length < 2) continue
    rps.push(spread(cell.samples.map((s) => s.rps)))
    cpu.push(spread(cell.samples.map((s) => s.cpuUsPerReq)))
  }
  if (rps.length === 0) return 'one round: no spread to report.'
  return `spread across rounds ((max − min) ÷ median, per cell): req/s median ${pct(median(rps))}, worst ${pct(Math.max(...rps))}; ` +
    `server CPU per request median ${pct(median(cpu))}, worst ${pct(Math.max(...cpu))}.`
}

/**
 * What the calibration row says about "+CPU over bare": the extra work it does is known
 * (10 µs of busy loop), so the figure the table shows for it is the scale of the others.
 */
function calibration (run) {
  const added = []
  for (const mode of MODES) {
    for (const route of ['write', 'read']) {
      const a = addedCpu(run.cells, key('bare-busy10', route, mode), route, mode)
      if (a !== null) added.push(a)
    }
  }
  if (added.length === 0) return 'Calibration: not run.'
  return `Calibration: bare Fastify with a 10 µs busy loop in its handler shows ${fmtMicros(median(added))} of "+CPU over bare" ` +
    `(median of its four cells, ${fmtMicros(Math.min(...added))} to ${fmtMicros(Math.max(...added))}). ` +
    'The excess is mostly kernel (system) time, which grows as a server falls further behind the load generator ' +
    '(with 2 cores, each response then has to wake an idle load generator). So "+CPU over bare" overstates the work ' +
    'any plugin adds, ours and the peers alike, by roughly this figure ÷ 10 µs.'
}

export function report (run) {
  const m = run.meta
  return [
    `# Benchmark: fastify-user-sessions against its peers${m.quick ? ' (quick smoke run: figures are not meaningful)' : ''}`,
    '',
    `- command: \`${m.command}\``,
    `- date: ${m.date}; took ${Math.round(m.elapsed)} s; fastify-user-sessions at ${m.revision}`,
    `- peers and tools: ${m.versions}`,
    `- machine: ${m.cpu}, ${m.cores} cores, ${m.memory}; ${m.os}; Node.js ${m.node}; Redis ${m.redis}`,
    `- load: autocannon in the bench process, ${m.connections} connections, no pipelining, ${m.rounds} round(s) of ${m.duration} s per scenario, interleaved; every server its own process on 127.0.0.1`,
    `- load average (1, 5, 15 min) before: ${m.loadBefore}; 1-min after each round: ${m.loadDuring}; after: ${m.loadAfter} (2 cores: above 2 means other processes competed with the bench)`,
    `- noise: ${noise(run)}`,
    '',
    '## Requests per second, latency and server CPU per request',
    '',
    mainTable(run),
    '',
    'Ratios are medians of per-round ratios (rounds paired). "× peer" compares ours on \'memory\' with @fastify/session\'s MemoryStore, on \'redis\' with @fastify/session + connect-redis, on \'cookie\' with @fastify/secure-session. "× floor" compares a session in memory with the hand-written floors (a signed cookie and a Map; an `id.secret` cookie and a Map of SHA-256 hashes), one on Redis with the hand-written signed cookie on Redis (`GET`, `SET … PX`), one in the cookie with @fastify/secure-session; the floors are in bench/server.js. Server CPU is utime + stime of the server process from /proc, divided by the requests served; "+CPU over bare" subtracts bare Fastify\'s figure on the same route.',
    '',
    calibration(run),
    '',
    '## Targets of the issue',
    '',
    targetsTable(run),
    '',
    '## Redis cost per request',
    '',
    redisCostTable(run),
    '',
    `${run.redisCost?.requests ?? '–'} requests one at a time over the ${fmtInt(m.sessions ?? 1000)} sessions, between two \`INFO\` snapshots. Round trips are Redis's \`total_reads_processed\`; commands are \`INFO commandstats\` calls, which count the commands a script runs as well as the script itself.`,
    '',
    '## `getAll(userId)`: a user with 10 sessions among many',
    '',
    getAllTable(run),
    '',
    '## Memory',
    '',
    memoryTables(run),
    ''
  ].join('\n')
}
