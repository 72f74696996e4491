// A minimal HTTP/1.1 client over a raw socket, one request at a time per connection, kept
// alive. Raw, because the inputs under test are what a real client library refuses to send:
// control bytes, non-ASCII, malformed and oversized headers. Responses are parsed just enough:
// status, headers, a Content-Length, chunked, or read-until-close body.
import net from 'node:net'
import { HOST } from './procs.js'

const CRLF2 = Buffer.from('\r\n\r\n')

export class RequestError extends Error {
  constructor (kind, message) {
    super(message)
    this.kind = kind // 'timeout' (a hang) or 'reset' (closed before a response)
  }
}

/** Request bytes; header values may be strings (written as latin1: one char, one byte) or Buffers. */
export function buildRequest ({ method = 'GET', path = '/', headers = [], body }) {
  const parts = [Buffer.from(`${method} `, 'latin1'), Buffer.isBuffer(path) ? path : Buffer.from(path, 'latin1'),
    Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'latin1')]
  for (const [name, value] of headers) {
    parts.push(Buffer.isBuffer(name) ? name : Buffer.from(name, 'latin1'), Buffer.from(': ', 'latin1'),
      Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1'), Buffer.from('\r\n', 'latin1'))
  }
  let payload
  if (body !== undefined) {
    payload = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')
    parts.push(Buffer.from(`Content-Length: ${payload.length}\r\n`, 'latin1'))
  }
  parts.push(Buffer.from('\r\n', 'latin1'))
  if (payload !== undefined) parts.push(payload)
  return Buffer.concat(parts)
}

function parseHead (head) {
  const lines = head.toString('latin1').split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1])
  const headers = new Map()
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':')
    if (colon <= 0) continue
    const name = lines[i].slice(0, colon).trim().toLowerCase()
    const value = lines[i].slice(colon + 1).trim()
    const list = headers.get(name)
    if (list === undefined) headers.set(name, [value])
    else list.push(value)
  }
  return { status, headers }
}

/** Length of a complete chunked body at the start of `buf`, or -1 while incomplete. */
function chunkedLength (buf) {
  let at = 0
  for (;;) {
    const eol = buf.indexOf('\r\n', at, 'latin1')
    if (eol === -1) return -1
    const size = parseInt(buf.toString('latin1', at, eol), 16)
    if (!Number.isFinite(size)) return buf.length // unparseable: take what came
    at = eol + 2
    if (size === 0) {
      const end = buf.indexOf(CRLF2, eol)
      return end === -1 ? -1 : end + 4
    }
    if (buf.length < at + size + 2) return -1
    at += size + 2
  }
}

function dechunk (buf) {
  const out = []
  let at = 0
  for (;;) {
    const eol = buf.indexOf('\r\n', at, 'latin1')
    if (eol === -1) break
    const size = parseInt(buf.toString('latin1', at, eol), 16)
    if (!(size > 0)) break
    out.push(buf.subarray(eol + 2, eol + 2 + size))
    at = eol + 2 + size + 2
  }
  return Buffer.concat(out)
}

export class Connection {
  #port
  #socket
  #uses = 0

  constructor (port) {
    this.#port = port
  }

  /**
   * Sends `bytes` and resolves `{ status, headers, body }`, or rejects with a RequestError:
   * 'timeout' past `timeout` ms (the connection is dropped), 'reset' when the server closed
   * without a response. A reused connection that the server had closed is retried once.
   * `noBody`: the answer to a HEAD request, which has a Content-Length but no body.
   */
  async request (bytes, { timeout = 10_000, noBody = false } = {}) {
    try {
      return await this.#send(bytes, timeout, noBody)
    } catch (err) {
      if (err.kind === 'stale') return await this.#send(bytes, timeout, noBody)
      throw err
    }
  }

  #connect () {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port: this.#port, host: HOST, noDelay: true })
      socket.once('connect', () => {
        socket.off('error', reject)
        // Between requests the server may reset the connection: the next request sees it closed.
        socket.on('error', () => {})
        resolve(socket)
      })
      socket.once('error', reject)
    })
  }

  async #send (bytes, timeout, noBody) {
    let socket = this.#socket
    const reused = socket !== undefined && this.#uses > 0
    if (socket === undefined || socket.destroyed) {
      try {
        socket = await this.#connect()
      } catch (err) {
        throw new RequestError('reset', `connect: ${err.code ?? err.message}`)
      }
      this.#socket = socket
      this.#uses = 0
    }
    this.#uses++
    return await new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0)
      let head
      let headEnd = -1
      let done = false
      const finish = (err, value) => {
        if (done) return
        done = true
        clearTimeout(timer)
        socket.off('data', onData)
        socket.off('close', onClose)
        socket.off('error', onError)
        if (err !== undefined) {
          socket.destroy()
          if (this.#socket === socket) this.#socket = undefined
          reject(err)
          return
        }
        if (value.close && this.#socket === socket) {
          socket.destroy()
          this.#socket = undefined
        }
        resolve(value)
      }
      const complete = () => {
        if (head === undefined) {
          headEnd = buf.indexOf(CRLF2)
          if (headEnd === -1) return
          head = parseHead(buf.subarray(0, headEnd))
        }
        const rest = buf.subarray(headEnd + 4)
        const close = (head.headers.get('connection')?.[0] ?? '').toLowerCase() === 'close'
        const length = head.headers.get('content-length')?.[0]
        if (noBody || head.status === 204 || head.status === 304 || (head.status >= 100 && head.status < 200)) {
          finish(undefined, { ...head, body: Buffer.alloc(0), close })
        } else if (length !== undefined) {
          if (rest.length >= Number(length)) finish(undefined, { ...head, body: rest.subarray(0, Number(length)), close })
        } else if ((head.headers.get('transfer-encoding')?.[0] ?? '').toLowerCase() === 'chunked') {
          const n = chunkedLength(rest)
          if (n !== -1) finish(undefined, { ...head, body: dechunk(rest.subarray(0, n)), close })
        }
        // Otherwise the body runs until the server closes.
      }
      const onData = (chunk) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
        complete()
      }
      const onClose = () => {
        if (head === undefined && buf.length > 0) {
          // A response without the blank line: take the status line if there is one.
          headEnd = buf.length
          const parsed = parseHead(buf)
          if (parsed.status > 0) {
            finish(undefined, { ...parsed, body: Buffer.alloc(0), close: true })
            return
          }
        }
        if (head !== undefined) {
          finish(undefined, { ...head, body: buf.subarray(headEnd + 4), close: true })
          return
        }
        finish(new RequestError(reused && buf.length === 0 ? 'stale' : 'reset', 'closed without a response'))
      }
      const onError = () => {} // 'close' follows and decides
      const timer = setTimeout(() => finish(new RequestError('timeout', `no response within ${timeout} ms`)), timeout)
      socket.on('data', onData)
      socket.on('close', onClose)
      socket.on('error', onError)
      socket.write(bytes)
    })
  }

  close () {
    this.#socket?.destroy()
    this.#socket = undefined
  }
}

/** The `name=value` of a Set-Cookie for `name` in a parsed response, or undefined. */
export function setCookieValue (res, name) {
  for (const header of res.headers.get('set-cookie') ?? []) {
    const eq = header.indexOf('=')
    if (header.slice(0, eq) !== name) continue
    const end = header.indexOf(';')
    return header.slice(eq + 1, end === -1 ? undefined : end)
  }
  return undefined
}

export function json (res) {
  try {
    return JSON.parse(res.body.toString('utf8'))
  } catch {
    return undefined
  }
}
