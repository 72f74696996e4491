import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { cleanEnv, UNTRACK } from '../helpers/untracked.js'

// The package as its users get it, on the Node this suite runs on (.ci/run: every line CI covers).
// `npm pack` of this repository (the dist/ that `npm test` has just built, no scripts), unpacked
// into node_modules/fastify-user-sessions of a consumer project made under test-artifacts/, as
// `npm install <tarball>` would; the package's own dependencies resolve to this repository's
// node_modules above it, so nothing is downloaded. Then a CommonJS app require()s it, and a
// TypeScript app (consumer/app.ts) is compiled with `module: commonjs` and with `module: nodenext`,
// without skipLibCheck (so our .d.ts files are checked as a consumer's compiler reads them), and run.

t.setTimeout(300_000) // two compiler runs: on a loaded machine each can take a minute
const root = join(import.meta.dirname, '..', '..')
const fixtures = join(import.meta.dirname, 'consumer')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

interface Result { code: number, stdout: string, stderr: string }

/** Runs `command args…` in `cwd`, `node` being the one running this test. */
async function run (cwd: string, command: string, ...args: string[]): Promise<Result> {
  const script = `${UNTRACK} cmd="$1"; shift; [ "$cmd" = node ] && cmd="$NODE_BIN"; exec "$cmd" "$@"`
  return await new Promise((resolve) => {
    execFile('sh', ['-c', script, 'sh', command, ...args], {
      cwd, env: { ...cleanEnv(), NODE_BIN: process.execPath }, maxBuffer: 16 * 2 ** 20
    }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
  })
}

function ranClean (t: Test, result: Result, what: string): void {
  t.equal(result.code, 0, `${what} exits 0`, { stderr: result.stderr.slice(-3000) })
  t.equal(result.stderr, '', `${what} prints nothing on stderr (no warning)`)
  const last = result.stdout.trim().split('\n').at(-1) ?? ''
  t.match(last, `{"ok":true,"node":"${process.version}","cases":`, `${what} ran to the end, on Node ${process.version}`)
}

// `npm test` builds dist/ before tap starts, and other test files import it meanwhile: build here
// only when there is no build at all (running this file alone on a fresh clone).
if (!existsSync(join(root, 'dist', 'index.js'))) {
  const build = await run(root, 'npm', 'run', 'build')
  if (build.code !== 0) throw new Error(`npm run build failed:\n${build.stderr}`)
}

mkdirSync(join(root, 'test-artifacts'), { recursive: true })
const consumer = mkdtempSync(join(root, 'test-artifacts', 'consumer-'))
t.teardown(() => rmSync(consumer, { recursive: true, force: true }))
writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }))
const installed = join(consumer, 'node_modules', 'fastify-user-sessions')

t.test('npm pack gives the built package and what it needs, not the tests', async (t) => {
  const pack = await run(root, 'npm', 'pack', '--ignore-scripts', '--json', '--pack-destination', consumer)
  t.equal(pack.code, 0, 'npm pack', { stderr: pack.stderr.slice(-3000) })
  const [info] = JSON.parse(pack.stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = (info?.files ?? []).map((f) => f.path)
  for (const file of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts',
    'dist/conformance/index.js', 'dist/conformance/index.d.ts']) {
    t.ok(files.includes(file), `the package has ${file}`)
  }
  t.notOk(files.some((f) => f.startsWith('test/') || f.startsWith('bench/') || f.startsWith('.ci/')), 'no tests, bench or CI')
  mkdirSync(installed, { recursive: true })
  const untar = await run(consumer, 'tar', '-xzf', info?.filename ?? '', '-C', installed, '--strip-components=1')
  t.equal(untar.code, 0, 'unpacked into the consumer\'s node_modules', { stderr: untar.stderr })
  const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { engines: { node: string } }
  t.equal(pkg.engines.node, '>=22.12', 'engines: Node 22.12 and later (require() of an ES module is stable from 22.12)')
})

t.test('CommonJS: require() gives the default export, the named ones and the conformance kit', async (t) => {
  copyFileSync(join(fixtures, 'require.cjs'), join(consumer, 'require.cjs'))
  ranClean(t, await run(consumer, 'node', 'require.cjs'), 'require.cjs')
})

t.test('TypeScript: compiled with module commonjs (node10 resolution: types and typesVersions) and with nodenext', async (t) => {
  const projects = {
    commonjs: { sources: ['index.ts'], options: { module: 'commonjs' }, outputs: ['index.js'] },
    nodenext: { sources: ['esm.mts', 'cjs.cts'], options: { module: 'nodenext' }, outputs: ['esm.mjs', 'cjs.cjs'] }
  }
  // Compiled side by side: on two cores the compilers are most of this file's time.
  const compiled = await Promise.all(Object.entries(projects).map(async ([name, project]) => {
    const dir = join(consumer, `ts-${name}`)
    mkdirSync(dir)
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, type: 'commonjs' }))
    for (const source of project.sources) copyFileSync(join(fixtures, 'app.ts'), join(dir, source))
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { ...project.options, target: 'es2022', strict: true, esModuleInterop: true, types: ['node'], outDir: 'out' },
      files: project.sources
    }))
    return { name, dir, project, result: await run(dir, 'node', tsc, '-p', '.') }
  }))
  for (const { name, dir, project, result } of compiled) {
    t.equal(result.code, 0, `tsc, module ${name}: no error`, { stdout: result.stdout.slice(-3000) })
    for (const output of project.outputs) {
      ranClean(t, await run(dir, 'node', join('out', output)), `${output} (module ${name})`)
    }
  }
})
