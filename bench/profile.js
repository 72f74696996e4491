// Summarises V8 .cpuprofile files (node --cpu-prof): where a server's time went, in µs per
// request, by package and by function, with our functions mapped from dist/ back to lib/
// through the source maps; and, given a baseline profile (bare Fastify), what each package adds.
//   node bench/profile.js <file.cpuprofile> <requests> [<baseline.cpuprofile> <requests>]
// (run alone, it counts the whole profile, start-up included)
import { existsSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { basename } from 'node:path'
import { fileURLToPath } from 'node:url'

const OURS = 'fastify-user-sessions'
const maps = new Map()

function sourceMapOf (file) {
  if (!maps.has(file)) {
    let map = null
    if (existsSync(file + '.map')) map = new SourceMap(JSON.parse(readFileSync(file + '.map', 'utf8')))
    maps.set(file, map)
  }
  return maps.get(file)
}

/** Where a frame comes from: our package (as lib/<file>.ts:<line>), a dependency, Node, or V8. */
function origin ({ url, lineNumber, columnNumber }) {
  if (url === '') return { group: '(V8: gc, native)', where: '' }
  if (url.startsWith('node:')) return { group: 'node internals', where: url }
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const nm = path.lastIndexOf('/node_modules/')
  if (nm !== -1) {
    const rest = path.slice(nm + 14).split('/')
    const scoped = rest[0].startsWith('@')
    const pkg = scoped ? `${rest[0]}/${rest[1]}` : rest[0]
    return { group: pkg, where: `${pkg}/${rest.slice(scoped ? 2 : 1).join('/')}:${lineNumber + 1}` }
  }
  const dist = path.lastIndexOf('/dist/')
  if (dist !== -1) {
    const entry = sourceMapOf(path)?.findEntry(lineNumber, columnNumber)
    const src = entry?.originalSource === undefined ? null : entry.originalSource.replace(/^.*\/lib\//, 'lib/')
    return { group: OURS, where: src === null ? `dist/${basename(path)}:${lineNumber + 1}` : `${src}:${entry.originalLine + 1}` }
  }
  return { group: 'bench', where: `${basename(path)}:${lineNumber + 1}` }
}

/**
 * Self time by package and by function, and inclusive time of our functions, in µs; only the
 * samples within `window` (CLOCK_MONOTONIC µs, the clock of V8's profiler and of process.hrtime).
 */
function analyse (profile, window) {
  const byId = new Map(profile.nodes.map((n) => [n.id, { ...n, origin: origin(n.callFrame) }]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map()
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0
    at += dt
    if (window !== undefined && (at < window.from || at > window.to)) continue
    const id = profile.samples[i]
    self.set(id, (self.get(id) ?? 0) + dt)
  }
  const groups = new Map()
  const fns = new Map()
  const inclusive = new Map()
  let busy = 0
  const add = (m, k, t) => m.set(k, (m.get(k) ?? 0) + t)
  for (const [id, t] of self) {
    const node = byId.get(id)
    if (node.callFrame.functionName === '(idle)') continue
    busy += t
    add(groups, node.origin.group, t)
    add(fns, `${node.callFrame.functionName || '(anonymous)'} ${node.origin.where}`, t)
    // A sample counts towards each function of ours on its stack, up to the first frame of
    // fastify itself: past it, our hook is only resuming fastify's own reply pipeline.
    const seen = new Set()
    for (let p = id; p !== undefined; p = parent.get(p)) {
      const n = byId.get(p)
      if (n.origin.group === 'fastify') break
      if (n.origin.group !== OURS) continue
      const name = `${n.callFrame.functionName || '(anonymous)'} ${n.origin.where}`
      if (!seen.has(name)) add(inclusive, name, t)
      seen.add(name)
    }
  }
  return { busy, groups, fns, inclusive }
}

const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1])

/** `baseline` and `window`: optional; see analyse(). */
export function summarize ({ profile, requests, window }, baseline, top = 25) {
  const a = analyse(profile, window)
  const us = (t, n = requests) => (t / n).toFixed(2)
  const lines = [`CPU sampled while busy: ${(a.busy / 1e6).toFixed(2)} s for ${requests.toLocaleString('en-US')} requests = ${us(a.busy)} µs/request (the profiler adds its own cost)`, '']
  if (baseline !== undefined) {
    const b = analyse(baseline.profile, baseline.window)
    lines.push('| package | µs/request | bare Fastify | added |', '| --- | --- | --- | --- |')
    const names = new Set([...a.groups.keys(), ...b.groups.keys()])
    const rows = [...names].map((g) => [g, (a.groups.get(g) ?? 0) / requests, (b.groups.get(g) ?? 0) / baseline.requests])
    for (const [g, x, y] of rows.sort((p, q) => (q[1] - q[2]) - (p[1] - p[2]))) {
      if (x < 0.05 && y < 0.05) continue
      lines.push(`| ${g} | ${x.toFixed(2)} | ${y.toFixed(2)} | ${(x - y).toFixed(2)} |`)
    }
    lines.push(`| **all** | ${us(a.busy)} | ${us(b.busy, baseline.requests)} | ${(a.busy / requests - b.busy / baseline.requests).toFixed(2)} |`)
  } else {
    lines.push('| package | µs/request |', '| --- | --- |')
    for (const [g, t] of sorted(a.groups)) if (t / requests >= 0.05) lines.push(`| ${g} | ${us(t)} |`)
  }
  lines.push('', '| function (self time) | µs/request |', '| --- | --- |')
  for (const [f, t] of sorted(a.fns).slice(0, top)) lines.push(`| ${f} | ${us(t)} |`)
  if (baseline !== undefined) {
    const b = analyse(baseline.profile, baseline.window)
    const added = [...a.fns.keys()].map((f) => [f, (a.fns.get(f) ?? 0) / requests - (b.fns.get(f) ?? 0) / baseline.requests])
    lines.push('', '| function (self time added over bare Fastify) | µs/request |', '| --- | --- |')
    for (const [f, d] of added.sort((p, q) => q[1] - p[1]).slice(0, top)) lines.push(`| ${f} | ${d.toFixed(2)} |`)
  }
  lines.push('', '| function of ours (inclusive time, up to fastify\'s own frames) | µs/request |', '| --- | --- |')
  for (const [f, t] of sorted(a.inclusive).slice(0, top)) lines.push(`| ${f} | ${us(t)} |`)
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, requests, baseFile, baseRequests] = process.argv.slice(2)
  const read = (f) => JSON.parse(readFileSync(f, 'utf8'))
  const baseline = baseFile === undefined ? undefined : { profile: read(baseFile), requests: Number(baseRequests) }
  console.log(summarize({ profile: read(file), requests: Number(requests) }, baseline))
}
