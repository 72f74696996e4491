// Summarises a V8 .cpuprofile (node --cpu-prof): where the server's time went, by package and
// by function, with our functions mapped from dist/ back to lib/ through the source maps.
//   node bench/profile.js <file.cpuprofile> [top]
import { existsSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { basename } from 'node:path'
import { fileURLToPath } from 'node:url'

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
  if (url === '') return { group: '(V8: gc, idle, native)', where: '' }
  if (url.startsWith('node:')) return { group: 'node internals', where: url }
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const nm = path.lastIndexOf('/node_modules/')
  if (nm !== -1) {
    const rest = path.slice(nm + 14).split('/')
    const pkg = rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
    return { group: pkg, where: `${pkg}/${rest.slice(rest[0].startsWith('@') ? 2 : 1).join('/')}:${lineNumber + 1}` }
  }
  const dist = path.lastIndexOf('/dist/')
  if (dist !== -1) {
    const entry = sourceMapOf(path)?.findEntry(lineNumber, columnNumber)
    const src = entry?.originalSource === undefined ? null : entry.originalSource.replace(/^.*\/lib\//, 'lib/')
    return { group: 'fastify-user-sessions', where: src === null ? `dist/${basename(path)}:${lineNumber + 1}` : `${src}:${entry.originalLine + 1}` }
  }
  return { group: 'bench', where: `${basename(path)}:${lineNumber + 1}` }
}

export function summarize (profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const idle = [...self.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0)
  const busy = total - idle
  const groups = new Map()
  const fns = new Map()
  // Inclusive time of our functions: a sample counts once for each distinct function of ours on its stack.
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const inclusive = new Map()
  for (const [id, t] of self) {
    const node = byId.get(id)
    if (node.callFrame.functionName === '(idle)') continue
    const o = origin(node.callFrame)
    groups.set(o.group, (groups.get(o.group) ?? 0) + t)
    const name = `${node.callFrame.functionName || '(anonymous)'} ${o.where}`
    fns.set(name, (fns.get(name) ?? 0) + t)
    const seen = new Set()
    for (let p = id; p !== undefined; p = parent.get(p)) {
      const f = byId.get(p).callFrame
      const po = origin(f)
      if (po.group !== 'fastify-user-sessions') continue
      const pname = `${f.functionName || '(anonymous)'} ${po.where}`
      if (seen.has(pname)) continue
      seen.add(pname)
      inclusive.set(pname, (inclusive.get(pname) ?? 0) + t)
    }
  }
  const share = (t) => (100 * t / busy).toFixed(1) + ' %'
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1])
  const lines = [`busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled`, '', '| package | self time |', '| --- | --- |']
  for (const [g, t] of sorted(groups)) lines.push(`| ${g} | ${share(t)} |`)
  lines.push('', '| function (self time) | share |', '| --- | --- |')
  for (const [f, t] of sorted(fns).slice(0, top)) lines.push(`| ${f} | ${share(t)} |`)
  lines.push('', '| function of ours (inclusive time) | share |', '| --- | --- |')
  for (const [f, t] of sorted(inclusive).slice(0, top)) lines.push(`| ${f} | ${share(t)} |`)
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, top] = process.argv.slice(2)
  console.log(summarize(JSON.parse(readFileSync(file, 'utf8')), Number(top) || 25))
}
