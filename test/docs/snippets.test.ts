// Documentation that cannot rot: every ```ts block of README.md, SECURITY.md and docs/*.md is
// type-checked as a module of its own that imports 'fastify-user-sessions' as an app would (the
// package's exports, so dist/, which `npm run test:types` builds before tap runs), under
// `--strict` with module and moduleResolution nodenext; every ```js block is parsed.
//
// Directives, on the lines just above a block:
//   <!-- snippet prelude: <code> -->   declarations prepended to the block (not shown on GitHub)
//   <!-- snippet skip: <reason> -->    the block is not checked
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import ts from 'typescript'

const root = join(import.meta.dirname, '..', '..')
// Type-checking is CPU-bound: about 15 s of CPU, but 80 s on a 2-core machine running the suite
// beside other jobs, too close to .taprc's 120 s.
t.setTimeout(300_000)

interface Snippet {
  /** Where the block is: the Markdown file, relative to the repository, and the line of its opening fence. */
  doc: string
  line: number
  lang: 'ts' | 'js'
  prelude: string[]
  skip: string | undefined
  code: string
}

const LANGS: Record<string, 'ts' | 'js'> = { ts: 'ts', typescript: 'ts', js: 'js', javascript: 'js' }

function extractSnippets (doc: string, markdown: string): Snippet[] {
  const lines = markdown.split('\n')
  const snippets: Snippet[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})\s*([\w-]*)/.exec(lines[i] as string)
    if (open === null) continue
    const fence = open[1] as string
    let end = i + 1
    while (end < lines.length && !(lines[end] as string).startsWith(fence)) end++
    const lang = LANGS[(open[2] as string).toLowerCase()]
    if (lang !== undefined) {
      const prelude: string[] = []
      let skip: string | undefined
      for (let j = i - 1; j >= 0; j--) {
        const directive = /^<!-- snippet (prelude|skip): (.*?) -->\s*$/.exec(lines[j] as string)
        if (directive === null) break
        if (directive[1] === 'skip') skip = directive[2] as string
        else prelude.unshift(directive[2] as string)
      }
      snippets.push({ doc, line: i + 1, lang, prelude, skip, code: lines.slice(i + 1, end).join('\n') })
    }
    i = end
  }
  return snippets
}

/** The Markdown files whose snippets are checked. */
function documents (): string[] {
  const docs = readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)
  return ['README.md', 'SECURITY.md', ...docs.sort()]
}

/** The Markdown line a line of a snippet's module (0-based) stands for. */
function markdownLine (snippet: Snippet, moduleLine: number): number {
  // The prelude lines stand for the directives just above the fence.
  if (moduleLine < snippet.prelude.length) return snippet.line - snippet.prelude.length + moduleLine
  return snippet.line + 1 + moduleLine - snippet.prelude.length
}

function moduleText (snippet: Snippet): string {
  return [...snippet.prelude, snippet.code, 'export {}', ''].join('\n')
}

/** A directory that resolves packages as the repository does, and 'fastify-user-sessions' to it. */
function workspace (): string {
  const dir = mkdtempSync(join(tmpdir(), 'fus-snippets-'))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'docs-snippets', private: true, type: 'module' }))
  const modules = join(dir, 'node_modules')
  mkdirSync(modules)
  for (const entry of readdirSync(join(root, 'node_modules'))) {
    if (entry.startsWith('.')) continue
    symlinkSync(join(root, 'node_modules', entry), join(modules, entry))
  }
  symlinkSync(root, join(modules, 'fastify-user-sessions'))
  mkdirSync(join(dir, 'snippets'))
  return dir
}

function fileName (snippet: Snippet): string {
  return `${snippet.doc.replace(/[^\w]/g, '_')}_L${snippet.line}.${snippet.lang === 'ts' ? 'ts' : 'mjs'}`
}

const compilerOptions: ts.CompilerOptions = {
  strict: true,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  skipLibCheck: true,
  noEmit: true,
  // As in tsconfig.json: @fastify/flash's types (and so @fastify/passport's) import
  // @fastify/secure-session's, whose `request.session` would win over this plugin's.
  paths: { '@fastify/secure-session': [join(root, 'test', 'types', 'secure-session.d.ts')] }
}

/**
 * Type-checks the TypeScript snippets: one program for all of them, but one each for the snippets
 * that augment a module (their declarations would reach every other snippet). Source files are
 * parsed once, whatever the number of programs. Returns the problems of each snippet, as
 * `file:line: TScode message`.
 */
function typeCheck (dir: string, snippets: Snippet[]): Map<Snippet, string[]> {
  const host = ts.createCompilerHost(compilerOptions)
  const parsed = new Map<string, ts.SourceFile | undefined>()
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, language, onError, fresh) => {
    if (!parsed.has(name)) parsed.set(name, getSourceFile(name, language, onError, fresh))
    return parsed.get(name)
  }
  const byFile = new Map<string, Snippet>()
  for (const snippet of snippets) {
    const file = join(dir, 'snippets', fileName(snippet))
    writeFileSync(file, moduleText(snippet))
    byFile.set(ts.sys.realpath?.(file) ?? file, snippet)
  }
  const files = [...byFile.keys()]
  const isolated = files.filter((file) => /^\s*declare (module|global)\b/m.test((byFile.get(file) as Snippet).code))
  const groups = [files.filter((file) => !isolated.includes(file)), ...isolated.map((file) => [file])]
  const problems = new Map<Snippet, string[]>(snippets.map((snippet) => [snippet, []]))
  for (const group of groups) {
    if (group.length === 0) continue
    const program = ts.createProgram(group, compilerOptions, host)
    for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')
      const snippet = diagnostic.file === undefined ? undefined : byFile.get(diagnostic.file.fileName)
      if (snippet === undefined || diagnostic.file === undefined) {
        // A problem outside the snippets (an option, a declaration file): charged to the group.
        for (const file of group) (problems.get(byFile.get(file) as Snippet) as string[]).push(`TS${diagnostic.code} ${message}`)
        continue
      }
      const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0)
      ;(problems.get(snippet) as string[]).push(`${snippet.doc}:${markdownLine(snippet, line)}: TS${diagnostic.code} ${message}`)
    }
  }
  return problems
}

/** Parses a JavaScript snippet as an ES module (`node --check`). */
function parse (dir: string, snippet: Snippet): string[] {
  const file = join(dir, 'snippets', fileName(snippet))
  writeFileSync(file, moduleText(snippet))
  const result = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' })
  if (result.status === 0) return []
  const where = new RegExp(`${fileName(snippet).replace(/\./g, '\\.')}:(\\d+)`).exec(result.stderr)
  const line = where === null ? snippet.line : markdownLine(snippet, Number(where[1]) - 1)
  const message = result.stderr.split('\n').find((l) => /Error/.test(l)) ?? result.stderr.trim()
  return [`${snippet.doc}:${line}: ${message}`]
}

// A document of its own, with what must fail, so that the test is seen to catch it.
const SELF_TEST = [
  'A snippet that compiles:',
  '',
  '```ts',
  "import session from 'fastify-user-sessions'",
  'const s: typeof session = session',
  '```',
  '',
  '<!-- snippet prelude: const answer: number = 42 -->',
  '```ts',
  "const n: string = 'x' + answer",
  'const bad: number = n',
  '```',
  '',
  '<!-- snippet skip: not TypeScript at all -->',
  '```ts',
  'this is not code',
  '```',
  '',
  '```js',
  'const = 1',
  '```',
  ''
].join('\n')

t.test('every TypeScript snippet compiles and every JavaScript snippet parses', async (t) => {
  const dir = workspace()
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  t.ok(existsSync(join(root, 'dist', 'index.d.ts')), 'dist/ is built (npm run test:types does it)')

  const self = extractSnippets('self-test.md', SELF_TEST)
  t.same(self.map((s) => [s.line, s.lang, s.prelude, s.skip]), [
    [3, 'ts', [], undefined],
    [9, 'ts', ['const answer: number = 42'], undefined],
    [15, 'ts', [], 'not TypeScript at all'],
    [19, 'js', [], undefined]
  ], 'blocks, preludes and skips are read from the Markdown')

  const snippets = documents().flatMap((doc) => extractSnippets(doc, readFileSync(join(root, doc), 'utf8')))
  t.ok(snippets.filter((s) => s.lang === 'ts').length >= 20, 'the documentation has TypeScript snippets')
  const checked = [...snippets, ...self].filter((s) => s.skip === undefined)

  const problems = typeCheck(dir, checked.filter((s) => s.lang === 'ts'))
  for (const snippet of checked.filter((s) => s.lang === 'js')) problems.set(snippet, parse(dir, snippet))

  t.same(problems.get(self[0] as Snippet), [], 'the self-test snippet that compiles')
  t.match(problems.get(self[1] as Snippet), [/^self-test\.md:11: TS2322 Type 'string' is not assignable to type 'number'/],
    'a failing snippet names the file and the Markdown line')
  t.match(problems.get(self[3] as Snippet), [/^self-test\.md:20: SyntaxError/], 'a JavaScript snippet that does not parse names its line')

  for (const snippet of snippets) {
    if (snippet.skip !== undefined) continue
    t.same(problems.get(snippet), [], `${snippet.doc}:${snippet.line} ${snippet.lang === 'ts' ? 'compiles' : 'parses'}`)
  }
})
