import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runUntracked } from '../helpers/untracked.js'

// The bench's smoke mode, so that `npm run bench` cannot rot: every scenario runs briefly and
// the table has a row for each. Nothing here looks at how fast anything was.

const SCENARIOS = [
  'bare Fastify (no session)',
  'bare Fastify + 10 µs busy loop',
  'floor: signed cookie + Map, by hand',
  'floor: id.secret cookie + Map of SHA-256, by hand',
  'floor: signed cookie + Redis GET / SET PX, by hand',
  "ours, 'memory'",
  "ours, 'redis'",
  "ours, 'cookie' (default install: sodium-native)",
  "ours, 'cookie' (node:crypto)",
  '@fastify/session, MemoryStore',
  '@fastify/session + connect-redis',
  '@fastify/secure-session'
]
const SESSIONS: Record<string, [string, string]> = {
  'bare Fastify (no session)': ['– (1 cookie)', '– (200 cookies)'],
  'bare Fastify + 10 µs busy loop': ['– (1 cookie)', '– (200 cookies)']
}

const root = join(import.meta.dirname, '..', '..')
const hasRedis = process.env.REDIS_URL !== undefined || spawnSync('redis-server', ['--version']).status === 0

function rowsOf (table: string): string[] {
  return table.split('\n').filter((line) => line.startsWith('| '))
}

if (!hasRedis && process.env.CI !== 'true') {
  console.warn('\n' + '!'.repeat(78) + '\n!!! redis-server not found: SKIPPING the bench smoke test.\n' +
    '!!! Install it (apt-get install redis-server) or set REDIS_URL.\n' + '!'.repeat(78) + '\n')
  t.plan(0, 'redis-server not found')
} else {
  t.test('the bench\'s quick mode runs every scenario and reports each', async (t) => {
    t.ok(hasRedis, 'redis-server is installed (required under CI=true)')
    const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'))
    t.teardown(() => rmSync(out, { recursive: true, force: true }))
    // `npm run bench` is `npm run build && node bench/run.js`. `npm test` has built dist/ before
    // tap starts, and other test files import dist/ meanwhile: rebuilding it under them could
    // let one read a half-written file. So build here only when there is no build at all.
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    t.match(pkg.scripts.bench, /^npm run build && node bench\/run\.js$/, 'npm run bench builds, then runs bench/run.js')
    const build = existsSync(join(root, 'dist', 'index.js')) ? [] : ['npm run build >&2 &&']
    const { code, stdout, stderr } = await runUntracked(root, [...build, 'exec node bench/run.js --quick --out "$0"'].join(' '), [out], 110_000)
    t.equal(code, 0, 'the bench exits 0', { stdout: stdout.slice(-3000), stderr: stderr.slice(-3000) })

    const rows = rowsOf(stdout)
    for (const label of SCENARIOS) {
      const [hot, spread] = SESSIONS[label] ?? ['1 (hot)', '200'] // the quick mode spreads 200 sessions
      for (const route of ['write', 'read']) {
        for (const sessions of [hot, spread]) {
          const row = rows.find((r) => r.startsWith(`| ${label} | ${route} | ${sessions} |`))
          t.ok(row, `a row for ${label}, ${route}, ${sessions}`)
          const cell = row?.split(' | ')[3] ?? ''
          if (label.startsWith("ours, 'redis'") || label.startsWith("ours, 'cookie'")) {
            t.match(cell, /^(\d[\d,]*( \(|$)|n\/a \(store not available\))/, `${label} ${route}: measured, or n/a until the store lands`)
          } else {
            t.match(cell, /^\d[\d,]*/, `${label} ${route}: measured`)
          }
          t.notOk(row?.includes('failed'), `${label} ${route} did not fail`)
        }
      }
    }
    for (const section of ['## Targets of the issue', '## Redis cost per request', '## `getAll(userId)`', '## Memory']) {
      t.ok(stdout.includes(section), `the report has "${section}"`)
    }
    t.ok(stdout.includes(readFileSync(join(out, 'latest.md'), 'utf8')), 'latest.md is the printed report')
    // The Node it ran on (the same `node` as this test's: both come first on the PATH).
    t.match(stderr, `Node.js ${process.version}, fastify-user-sessions at `, 'the bench says at once which Node runs it')
    t.match(stdout, `; Node.js ${process.version}; `, 'and the report says it too')
    t.ok(existsSync(join(out, 'chart.svg')), 'the chart is written')
    t.match(readFileSync(join(out, 'chart.svg'), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
    t.match(readFileSync(join(out, 'chart.svg'), 'utf8'), `Node.js ${process.version};`, 'and so does the chart')
  })

  t.test('bench:fixed runs a paced cell of ours and of connect-redis and reports each', async (t) => {
    const out = mkdtempSync(join(tmpdir(), 'bench-fixed-'))
    t.teardown(() => rmSync(out, { recursive: true, force: true }))
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    t.equal(pkg.scripts['bench:fixed'], 'npm run build && node bench/fixed.js')
    const build = existsSync(join(root, 'dist', 'index.js')) ? [] : ['npm run build >&2 &&']
    const args = '--rate 200 --duration 1 --rounds 1 --only ours-redis-node,fastify-session-redis9 --out "$0"'
    const { code, stdout, stderr } = await runUntracked(root, [...build, `exec node bench/fixed.js ${args}`].join(' '), [out], 100_000)
    t.equal(code, 0, 'bench:fixed exits 0', { stdout: stdout.slice(-3000), stderr: stderr.slice(-3000) })
    t.match(stdout, 'req/s offered (spread evenly over each second: bench/lib/paced.js)', 'paced by default')
    const rows = rowsOf(stdout)
    for (const label of ["ours 'redis', node-redis 5 client", '@fastify/session + connect-redis 9, node-redis 5']) {
      for (const route of ['write', 'read']) {
        const cells = rows.find((r) => r.startsWith(`| ${label} | ${route} | `))?.split(' | ')
        t.ok(cells, `a row for ${label}, ${route}`)
        t.ok(Number(cells?.[2]) > 0, `${label} ${route}: requests served`)
        t.ok(Number(cells?.[5]) > 0, `${label} ${route}: Redis CPU per request measured`)
        t.equal(cells?.[7], '0 |', `${label} ${route}: no errors`)
      }
    }
    t.ok(stdout.includes(readFileSync(join(out, 'fixed.md'), 'utf8')), 'fixed.md is the printed report')
  })
}
