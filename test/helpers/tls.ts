import { execFileSync, spawnSync } from 'node:child_process'
import { createHash, createPublicKey } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The part of a tap Test this file uses. */
interface Tap {
  fail: (message: string) => void
  plan: (n: number, comment?: string) => void
}

// A self-signed certificate for localhost, made by the test with Debian's openssl (the one
// binary it needs, as the browser tests need Chromium), and what a client needs to trust it.

export interface TestCertificate {
  key: Buffer
  cert: Buffer
  /** base64 SHA-256 of the certificate's SubjectPublicKeyInfo: Chromium's --ignore-certificate-errors-spki-list. */
  spkiPin: string
}

let present: boolean | undefined

/** Whether openssl is there; missing, a failure under CI=true, else a loud skip of the file. */
export function opensslAvailable (t: Tap): boolean {
  present ??= spawnSync('openssl', ['version']).status === 0
  if (present) return true
  if (process.env.CI === 'true') {
    t.fail('openssl not found: under CI=true the HTTPS tests must run (apt-get install openssl)')
  } else {
    console.warn('\n' + '!'.repeat(78) + '\n!!! openssl not found: SKIPPING the HTTPS tests of this file.\n' +
      '!!! Install it (apt-get install openssl).\n' + '!'.repeat(78) + '\n')
    t.plan(0, 'openssl not found')
  }
  return false
}

/** A P-256 key and a one-day certificate for localhost, made now. */
export function testCertificate (): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'fus-tls-'))
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe' })
    const key = readFileSync(join(dir, 'key.pem'))
    const cert = readFileSync(join(dir, 'cert.pem'))
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' })
    return { key, cert, spkiPin: createHash('sha256').update(spki).digest('base64') }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export interface HttpsResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One request from outside any browser, trusting `ca` only (as a thief replaying a copied cookie would send it). */
export function httpsRequest (method: string, url: string, ca: Buffer, headers: Record<string, string> = {}, body?: string): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

export function httpsGet (url: string, ca: Buffer, headers: Record<string, string> = {}): Promise<HttpsResponse> {
  return httpsRequest('GET', url, ca, headers)
}
