// What the documentation states about the code, checked against the code: the README's options
// table lists the plugin's options (lib/options.ts), and docs/stores.md shows the DDL that
// postgresTableSql() returns.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { postgresTableSql } from '../../lib/index.js'

const root = join(import.meta.dirname, '..', '..')
const read = (file: string): string => readFileSync(join(root, file), 'utf8')

/** The fields of an interface of lib/options.ts. */
function fields (source: string, name: string): string[] {
  const body = new RegExp(`export interface ${name} \\{\\n([\\s\\S]*?)\\n\\}`).exec(source)?.[1] ?? ''
  return [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1] as string)
}

t.test("the README's options table lists every option of lib/options.ts, and no other", async (t) => {
  const source = read('lib/options.ts')
  const options = [
    ...fields(source, 'SessionOptions').flatMap((name) =>
      name === 'cookie' ? fields(source, 'SessionCookieOptions').map((field) => `cookie.${field}`) : [name]),
    'store', 'storeOptions'
  ]
  t.ok(options.length > 15, 'the options are read from lib/options.ts')
  const readme = read('README.md')
  const section = /\n## Options\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? ''
  const rows = [...section.matchAll(/^\| `([\w.]+)` \|/gm)].map((m) => m[1] as string)
  t.same([...rows].sort(), [...options].sort(), 'one row per option')
})

t.test('docs/stores.md shows the DDL of postgresTableSql()', async (t) => {
  const blocks = [...read('docs/stores.md').matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1] as string)
  t.ok(blocks.includes(postgresTableSql()), 'a sql block is postgresTableSql() as it is')
})
