// The layout is the architecture: lib/ in folders by layer, imports flowing one way. No import
// circle, between files or between folders, type-only imports included.
import { readdirSync, readFileSync } from 'node:fs'
import { join, posix } from 'node:path'
import t from 'tap'

const root = join(import.meta.dirname, '..')

function sources (dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = posix.join(dir, entry.name)
    if (entry.isDirectory()) sources(path, out)
    else if (path.endsWith('.ts')) out.push(path)
  }
  return out
}

function importGraph (): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of sources('lib')) {
    const text = readFileSync(join(root, file), 'utf8')
    const deps = new Set<string>()
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.\.?\/[^']+)'/g)) {
      deps.add(posix.normalize(posix.join(posix.dirname(file), m[1] as string)).replace(/\.js$/, '.ts'))
    }
    graph.set(file, [...deps])
  }
  return graph
}

/** Every circle of `graph`, each as the path that closes it. */
function circles (graph: Map<string, string[]>): string[] {
  const found: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (node: string): void => {
    state.set(node, 'open')
    stack.push(node)
    for (const dep of graph.get(node) ?? []) {
      if (!graph.has(dep)) continue
      if (state.get(dep) === 'open') found.push([...stack.slice(stack.indexOf(dep)), dep].join(' -> '))
      else if (state.get(dep) === undefined) visit(dep)
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node)
  return found
}

/** lib/<folder> for a file in a folder, the file itself at the top. */
const folderOf = (file: string): string => posix.dirname(file) === 'lib' ? file : posix.dirname(file).split('/').slice(0, 2).join('/')

t.test('no import circle between files of lib/', async (t) => {
  const graph = importGraph()
  t.ok(graph.size > 40, 'the graph holds lib/')
  t.same(circles(graph), [])
})

t.test('no import circle between the folders of lib/', async (t) => {
  const folders = new Map<string, Set<string>>()
  for (const [file, deps] of importGraph()) {
    const from = folderOf(file)
    const set = folders.get(from) ?? new Set()
    folders.set(from, set)
    for (const dep of deps) if (folderOf(dep) !== from) set.add(folderOf(dep))
  }
  t.same(circles(new Map([...folders].map(([k, v]) => [k, [...v]]))), [])
  t.ok(folders.get('lib/stores')?.has('lib/bus'), 'stores import the bus: the graph sees folders')
})

t.test('the circle finder finds a circle', async (t) => {
  t.same(circles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', []]])), ['a -> b -> c -> a'])
})
