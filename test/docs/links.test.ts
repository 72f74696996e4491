// Every relative link of README.md, SECURITY.md and docs/*.md points at a file of the repository,
// and at a heading of it when the link has a #fragment (the anchors GitHub makes).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, posix } from 'node:path'
import t from 'tap'

const root = join(import.meta.dirname, '..', '..')

function documents (): string[] {
  const docs = readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)
  return ['README.md', 'SECURITY.md', ...docs.sort()]
}

/** The text outside fenced blocks and code spans, line by line (numbers kept). */
function prose (markdown: string): string[] {
  let fence: string | undefined
  return markdown.split('\n').map((line) => {
    const marker = /^(`{3,}|~{3,})/.exec(line)?.[1]
    if (fence !== undefined) {
      if (marker !== undefined && marker.startsWith(fence)) fence = undefined
      return ''
    }
    if (marker !== undefined) {
      fence = marker
      return ''
    }
    return line.replace(/(`+)(?:(?!\1).)*?\1/g, '')
  })
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors (markdown: string): Set<string> {
  const found = new Set<string>()
  const seen = new Map<string, number>()
  let fence: string | undefined
  for (const line of markdown.split('\n')) {
    const marker = /^(`{3,}|~{3,})/.exec(line)?.[1]
    if (marker !== undefined) {
      if (fence === undefined) fence = marker
      else if (marker.startsWith(fence)) fence = undefined
      continue
    }
    const heading = fence === undefined ? /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line) : null
    if (heading === null) continue
    const text = (heading[1] as string).replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '')
    const slug = text.toLowerCase().replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '').replace(/ /g, '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    found.add(n === 0 ? slug : `${slug}-${n}`)
  }
  for (const m of markdown.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) found.add(m[1] as string)
  return found
}

/** The relative links of a document: `[text](target)`, images included, with their line. */
function links (markdown: string): Array<{ line: number, target: string }> {
  const out: Array<{ line: number, target: string }> = []
  prose(markdown).forEach((text, i) => {
    for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = m[1] as string
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto:, ...
      out.push({ line: i + 1, target })
    }
  })
  return out
}

t.test('the anchors are those GitHub makes', async (t) => {
  t.same([...anchors([
    '# fastify-user-sessions',
    "## `'memory'` (alias `'ets'`)",
    "## connect-style stores: `fromExpressStore` / `'express'`",
    '## Bearer tokens and "remember me"',
    '```sh',
    '# not a heading',
    '```',
    '## Events',
    '## Events'
  ].join('\n'))], ['fastify-user-sessions', 'memory-alias-ets', 'connect-style-stores-fromexpressstore--express',
    'bearer-tokens-and-remember-me', 'events', 'events-1'])
  t.same(links('See [a](docs/a.md#b), `[not](a link)`, [web](https://x.org) and ![img](c.svg "title").\n```\n[no](d.md)\n```'),
    [{ line: 1, target: 'docs/a.md#b' }, { line: 1, target: 'c.svg' }])
})

t.test('every relative link of the documentation points at a file, and a heading', async (t) => {
  const anchorsOf = new Map<string, Set<string>>()
  const anchorsIn = (file: string): Set<string> => {
    let found = anchorsOf.get(file)
    if (found === undefined) {
      found = anchors(readFileSync(join(root, file), 'utf8'))
      anchorsOf.set(file, found)
    }
    return found
  }
  let count = 0
  for (const doc of documents()) {
    for (const { line, target } of links(readFileSync(join(root, doc), 'utf8'))) {
      count++
      const [path = '', fragment] = target.split('#', 2)
      const file = path === '' ? doc : posix.normalize(posix.join(posix.dirname(doc), decodeURIComponent(path)))
      const where = `${doc}:${line}: ${target}`
      if (file.startsWith('..') || !existsSync(join(root, file))) {
        t.fail(`${where}: no such file`)
        continue
      }
      if (fragment === undefined) continue
      if (!file.endsWith('.md') || statSync(join(root, file)).isDirectory()) {
        t.fail(`${where}: an anchor in a file that is not Markdown`)
        continue
      }
      t.ok(anchorsIn(file).has(decodeURIComponent(fragment)), `${where} (a heading of ${file})`)
    }
  }
  t.ok(count > 30, `the documentation has links (${count})`)
})
