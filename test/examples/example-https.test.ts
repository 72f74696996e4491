import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { buildApp } from '../../examples/app.js'
import { proof, testKey } from '../helpers/dbsc.js'
import { httpsGet, httpsRequest, opensslAvailable, testCertificate, type HttpsResponse } from '../helpers/tls.js'

// The example app served over HTTPS (issue 22): device-bound sessions on, a remembered sign-in
// offered binding, and the devices page telling a bound session apart. A client made of a key
// the test makes plays the browser's part here; test/examples/dbsc-browser.test.ts has Chromium.

const SERVER = fileURLToPath(new URL('../../examples/server.js', import.meta.url))

/** The `sid=...` pair a response set. */
function sid (res: HttpsResponse): string {
  const line = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('sid='))
  return (line ?? '').split(';')[0] as string
}

if (opensslAvailable(t)) {
  const tls = testCertificate()

  t.test('over HTTPS, a remembered sign-in is offered binding; once bound, the devices page says so', async (t) => {
    const app = await buildApp({ https: tls })
    t.teardown(() => app.close())
    await app.listen({ port: 0, host: '127.0.0.1' })
    const base = `https://localhost:${(app.server.address() as AddressInfo).port}`
    const form = { 'content-type': 'application/x-www-form-urlencoded' }

    const once = await httpsRequest('POST', `${base}/login`, tls.cert, form, 'name=alice')
    t.equal(once.status, 303)
    t.equal(once.headers['secure-session-registration'], undefined, 'without "Remember me": a cookie that dies with the browser is not bound')

    const login = await httpsRequest('POST', `${base}/login`, tls.cert, form, 'name=alice&remember=yes')
    const challenge = /challenge="([\w-]+)"/.exec(String(login.headers['secure-session-registration']))?.[1]
    t.ok(challenge, 'with it: Secure-Session-Registration')
    const key = await testKey()
    const registered = await httpsRequest('POST', `${base}/dbsc/registration`, tls.cert,
      { cookie: sid(login), 'secure-session-response': await proof(key, { jti: challenge, withKey: true }) })
    t.equal(registered.status, 200, registered.body)
    t.match(JSON.parse(registered.body), { refresh_url: '/dbsc/refresh', credentials: [{ type: 'cookie', name: 'sid' }] })
    const page = await httpsGet(`${base}/devices`, tls.cert, { cookie: sid(registered) })
    t.equal(page.status, 200)
    t.match(page.body, 'Browser cookie, remembered, bound to this device')
    t.match(page.body, 'Browser cookie, until the browser closes', 'the other sign-in is not bound')
  })

  t.test('npm start with TLS_KEY and TLS_CERT serves HTTPS, device-bound sessions on', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fus-example-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'key.pem'), tls.key)
    writeFileSync(join(dir, 'cert.pem'), tls.cert)
    const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', TLS_KEY: join(dir, 'key.pem'), TLS_CERT: join(dir, 'cert.pem') }
    const child = spawn(process.execPath, [SERVER], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = once(child, 'exit')
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    let out = ''
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
    const port = await new Promise<string>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk
        const m = /Server listening at https:\/\/127\.0\.0\.1:(\d+)/.exec(out)
        if (m !== null) resolve(m[1] as string)
      })
      child.once('exit', () => reject(new Error(`the server exited early:\n${out}`)))
    })
    const login = await httpsRequest('POST', `https://localhost:${port}/login`, tls.cert,
      { 'content-type': 'application/x-www-form-urlencoded' }, 'name=bob&remember=yes')
    t.equal(login.status, 303)
    t.match(login.headers['secure-session-registration'], /^\(ES256 RS256\);path="\/dbsc\/registration";challenge="/)
    child.kill('SIGTERM')
    const [code] = await exited
    t.equal(code, 0, out)
  })
}
