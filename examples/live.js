import { readFileSync } from 'node:fs'

// Live sign-out. The devices page keeps `GET /devices/events` open (Server-Sent Events); when
// its session ends anywhere (log out everywhere on another device, a revoke, a replacement, its
// deadline), `request.session.onRevoked` says so, the stream sends `event: signed-out` with the
// reason and ends, and /devices.js takes the page to the sign-in form. Without JS nothing of this
// runs and the page behaves as before: the next page load finds the session gone.

const HEARTBEAT_MS = 15_000
const EVENT_STREAM = 'text/event-stream; charset=utf-8'

/** The devices page's script: a file of its own, served from this origin (`script-src 'self'`). */
export const devicesScript = readFileSync(new URL('./public/devices.js', import.meta.url), 'utf8')

/** `heartbeat`: milliseconds between comment lines that keep proxies from closing an idle stream. */
export async function liveDevices (app, { heartbeat = HEARTBEAT_MS } = {}) {
  /** What ends each open stream, for app.close(): a server does not close while a response is open. */
  const open = new Set()
  app.addHook('preClose', async () => {
    for (const end of [...open]) end()
  })

  app.get('/devices/events', async (request, reply) => {
    // Anonymous, or signed out meanwhile: EventSource takes any status but 200 as final and
    // stops reconnecting, and the page's script reloads it once to let /devices decide.
    if (request.session.userId === undefined) {
      return reply.code(401).type('text/plain; charset=utf-8').send('Not signed in\n')
    }
    const res = reply.raw
    // Data names neither the session nor the user: the reason alone.
    const unfollow = request.session.onRevoked((reason) => { end(`event: signed-out\ndata: ${reason}\n\n`) })
    const timer = setInterval(() => { res.write(': heartbeat\n\n') }, heartbeat)
    function end (last = '') {
      if (!open.delete(end)) return
      clearInterval(timer)
      unfollow()
      if (!res.writableEnded && !res.destroyed) res.end(last)
    }
    open.add(end)
    // The reply is ours from here: no onSend, so the stream neither saves the session nor moves
    // its idle deadline (an open tab does not keep a session alive).
    reply.hijack()
    res.writeHead(200, { ...reply.getHeaders(), 'content-type': EVENT_STREAM, 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
    res.write(': live\n\n')
    // The client went away (closed tab, navigation, network): stop following the session.
    res.once('close', () => { end() })
  })

  app.get('/devices.js', async (request, reply) => reply.type('text/javascript; charset=utf-8').send(devicesScript))
}
