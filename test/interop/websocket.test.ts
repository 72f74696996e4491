import fastifyWebsocket from '@fastify/websocket'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import WebSocket from 'ws'
import fastifyUserSessions from '../../lib/index.js'
import { SECRET } from '../helpers/app.js'
import { onEachStore, type StoreOptions } from '../helpers/stores.js'

// @fastify/websocket 11 over real HTTP: the upgrade request runs onRequest, so request.session
// is loaded from the cookie; onSend never runs for the hijacked socket, so a change is stored
// only by `await request.session.save()`, and no cookie can be set.

async function wsApp (store: StoreOptions): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyUserSessions, { secret: SECRET, ...store })
  await app.register(fastifyWebsocket)
  app.post<{ Body: { user: string } }>('/login', async (request) => {
    await request.session.login(request.body.user)
    return { ok: true }
  })
  app.get('/notes', async (request) => ({ note: request.session.get('note') ?? null, unsaved: request.session.get('unsaved') ?? null }))
  app.get('/ws', { websocket: true }, (socket, request) => {
    socket.send(JSON.stringify({ userId: request.session.userId ?? null }))
    socket.on('message', async (message: Buffer) => {
      const text = message.toString()
      if (text === 'unsaved') {
        request.session.set('unsaved', true)
        socket.send('not saved')
        return
      }
      request.session.set('note', text)
      try {
        await request.session.save()
        socket.send('saved')
      } catch (err) {
        socket.send((err as { code: string }).code)
      }
    })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

/** Opens a socket and collects what it receives; `next()` resolves the next message. */
async function connect (app: FastifyInstance, cookie?: string): Promise<{ ws: WebSocket, next: () => Promise<string> }> {
  const { port } = app.server.address() as { port: number }
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: cookie === undefined ? {} : { cookie } })
  const queue: string[] = []
  const waiting: Array<(m: string) => void> = []
  ws.on('message', (data: Buffer) => {
    const waiter = waiting.shift()
    if (waiter === undefined) queue.push(data.toString())
    else waiter(data.toString())
  })
  const upgrade = new Promise<void>((resolve, reject) => {
    ws.once('upgrade', (res) => {
      if (res.headers['set-cookie'] !== undefined) reject(new Error('the upgrade response set a cookie'))
    })
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  await upgrade
  const next = async (): Promise<string> => queue.shift() ?? await new Promise((resolve) => waiting.push(resolve))
  return { ws, next }
}

onEachStore(t, 'request.session in a websocket handler; save() from a message handler stores the change', async (t, store) => {
  const app = await wsApp(store)
  t.teardown(() => app.close())
  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  const cookie = `sid=${login.cookies.find((c) => c.name === 'sid')?.value as string}`

  const { ws, next } = await connect(app, cookie)
  t.teardown(() => ws.terminate())
  t.same(JSON.parse(await next()), { userId: 'alice' }, 'the upgrade request carries the session')
  ws.send('hello')
  t.equal(await next(), 'saved')
  ws.send('unsaved')
  t.equal(await next(), 'not saved')
  ws.send('again')
  t.equal(await next(), 'saved')
  t.same((await app.inject({ url: '/notes', headers: { cookie } })).json(), { note: 'again', unsaved: true },
    'each save() stores what changed before it')

  const anonymous = await connect(app)
  t.teardown(() => anonymous.ws.terminate())
  t.same(JSON.parse(await anonymous.next()), { userId: null })
  anonymous.ws.send('from nowhere')
  t.equal(await anonymous.next(), 'saved', 'an anonymous session can be stored, but no cookie can reach the client')
  t.equal((await app.sessions.getAll('alice')).length, 1)

  await app.sessions.deleteAll('alice')
  ws.send('after logout')
  t.equal(await next(), 'FST_SESSION_REVOKED', 'a session deleted meanwhile is not brought back by save()')
})
