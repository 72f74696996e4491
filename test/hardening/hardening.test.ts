import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { runUntracked, type Run } from '../helpers/untracked.js'

// The smoke mode of the hardening scripts (hardening/), so that `npm run fuzz`, `npm run soak`
// and `npm run flood` cannot rot: each runs briefly, exits 0 and prints its summary. Nothing
// here looks at how fast anything was. The scripts use dist/ (`npm test` builds it first).

const root = join(import.meta.dirname, '..', '..')
const hasRedis = spawnSync('redis-server', ['--version']).status === 0
const CI = process.env.CI === 'true'

function run (script: string, args: string[]): Promise<Run> {
  return runUntracked(root, 'exec "$@"', ['sh', process.execPath, join('hardening', script), '--quick', ...args], 100_000)
}

function row (stdout: string, first: string): string | undefined {
  return stdout.split('\n').find((line) => new RegExp(`^\\| ${first.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+\\|`).test(line))
}

if (!existsSync(join(root, 'dist', 'index.js'))) {
  t.fail('dist/ is missing: run `npm run build` (npm test does) before the hardening smoke test')
} else {
  if (!hasRedis) {
    console.warn('\n' + '!'.repeat(78) + '\n!!! redis-server not found: the hardening scripts SKIP their Redis part.\n' +
      '!!! Install it (apt-get install redis-server).\n' + '!'.repeat(78) + '\n')
  }
  // The three at once: the soak is bounded in time, the others in count.
  const runs = {
    fuzz: run('fuzz.js', ['--seed', '20260101']),
    soak: run('soak.js', ['--seconds', '3']),
    flood: run('flood.js', ['--requests', '8000', '--max-sessions', '2000'])
  }
  const redisRow = (t: Test, stdout: string, target: string): void => {
    const line = row(stdout, target)
    t.ok(line, `a row for ${target}`)
    if (hasRedis) t.notMatch(line ?? '', /skipped/, `${target} ran`)
    else t.match(line ?? '', /skipped: redis-server not found/, `${target} is skipped loudly without redis-server`)
  }
  const finished = (t: Test, name: string, r: Run, verdict: string): void => {
    const expected = !hasRedis && CI ? 1 : 0
    t.equal(r.code, expected, `${name} exits ${expected}${expected === 1 ? ' (no redis-server under CI=true)' : ''}`, { stdout: r.stdout.slice(-3000), stderr: r.stderr.slice(-3000) })
    t.ok(r.stdout.includes(`${verdict}: ${expected === 0 ? 'PASS' : 'FAIL'}`), `${name} prints its verdict`)
  }

  t.test('npm run fuzz -- --quick: every target, counted by status, reproducible from its seed', async (t) => {
    const r = await runs.fuzz
    finished(t, 'fuzz', r, 'fuzz')
    t.match(r.stdout, /seed: 20260101 \(rerun: npm run fuzz -- --seed 20260101/)
    t.match(row(r.stdout, 'memory') ?? '', /^\| memory\s+\| 300\s+\|.*\| 0\s+\| 200: /, 'memory: 300 cases, no failure, statuses')
    redisRow(t, r.stdout, 'redis')
    t.match(row(r.stdout, 'cookie') ?? '', /^\| cookie\s+\| (300\s+\|.*\| 0\s+\| 200: |n\/a \(store 'cookie' is not registered)/, 'cookie: ran, or n/a until registered')
    for (const section of ['## Cases by kind', '## Checks']) t.ok(r.stdout.includes(section), section)
    t.match(r.stdout, /\| mutated cookies sent \(≠ original\)\s+\| [1-9]/)
  })

  t.test('npm run soak -- --quick: virtual users on memory and Redis, an outage, nothing lost or resurrected', async (t) => {
    const r = await runs.soak
    finished(t, 'soak', r, 'soak')
    t.match(r.stdout, /^\|\s+\| memory\s+\| redis\s+\|/m, 'a column per store')
    for (const name of ['LOST (updates or sessions)', 'PHANTOM writes', 'RESURRECTED', '503 outside an outage', 'other 5xx']) {
      const line = row(r.stdout, name) ?? ''
      t.match(line, new RegExp(`^\\| ${name.replace(/[()]/g, '\\$&')}\\s+\\| 0\\s+\\| ${hasRedis ? '0' : ''}`), `${name}: none`)
    }
    if (hasRedis) {
      t.match(row(r.stdout, 'outages (signal at, down, store back after start)') ?? '', /SIGKILL at .*SIGTERM at /, 'redis-server was killed and stopped')
      t.match(row(r.stdout, '503 during an outage, by code') ?? '', /FST_SESSION_STORE_UNAVAILABLE: \d/)
    } else {
      t.match(r.stdout, /redis: skipped: redis-server not found/)
    }
  })

  t.test('npm run flood -- --quick: cookieless and session-creating floods, the per-user cap', async (t) => {
    const r = await runs.flood
    finished(t, 'flood', r, 'flood')
    for (const section of ['## 1. Requests without a cookie', '## 2. Requests that each create a session (memory store)', '## 3. One user']) {
      t.ok(r.stdout.includes(section), section)
    }
    t.match(row(r.stdout, 'memory') ?? '', /^\| memory\s+\| [\d.]+ s\s+\| [\d,]+\s+\| 200: 8,000\s+\| 0\s+\| 0 sessions/, 'memory: no cookie, nothing stored')
    redisRow(t, r.stdout, 'redis')
    t.match(r.stdout, /\| evictions \(store\.stats\(\)\)\s+\| 6,000\s+\|/, '8,000 sessions into 2,000 places: 6,000 evictions')
    t.match(r.stdout, /\| warn lines "memory session store full: evicted least recently used sessions" \| 1\s+\|/, 'one warn line, not one per eviction')
  })
}
