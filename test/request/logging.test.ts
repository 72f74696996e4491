import t from 'tap'
import { buildApp, cookieOf, logSink } from '../helpers/app.js'

t.test('at trace level, no id, secret, cookie or session data reaches the logs', async (t) => {
  const sink = logSink('trace')
  const app = await buildApp({}, sink.logger)
  t.teardown(() => app.close())
  const anon = await app.inject({ method: 'POST', url: '/set', payload: { key: 'card', value: 'SECRET-DATA-4111' } })
  const login = await app.inject({ method: 'POST', url: '/login', headers: { cookie: cookieOf(anon) }, payload: { user: 'alice', keepData: true } })
  const cookie = cookieOf(login) as string
  await app.inject({ url: '/devices', headers: { cookie } })
  await app.inject({ url: '/me', headers: { cookie: cookie + 'x' } })
  await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  const text = sink.text()
  const raw = decodeURIComponent(cookie.slice(4))
  const [id, secret] = [raw.split('.').slice(0, -2).join('.'), raw.split('.').at(-2) as string]
  t.ok(sink.lines.length > 5, 'something was logged')
  for (const [what, value] of [['id', id], ['random part of the id', id.split('.').at(-1)], ['secret', secret], ['cookie', raw], ['data', 'SECRET-DATA-4111']]) {
    t.notOk(text.includes(value as string), `no ${what} in the logs`)
  }
})
