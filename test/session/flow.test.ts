import t from 'tap'
import { buildApp, cookieOf } from '../helpers/app.js'

t.test('login, read, devices, logout', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const anon = await app.inject('/me')
  t.same(anon.json(), { id: null, userId: null, name: null })
  t.equal(anon.headers['set-cookie'], undefined)

  const login = await app.inject({ method: 'POST', url: '/login', payload: { user: 'alice' } })
  t.equal(login.statusCode, 200)
  const cookie = cookieOf(login)
  t.ok(cookie)
  const me = await app.inject({ url: '/me', headers: { cookie } })
  t.same(me.json(), { id: login.json().id, userId: 'alice', name: 'alice' })
  const devices = await app.inject({ url: '/devices', headers: { cookie } })
  t.equal(devices.json().length, 1)
  const out = await app.inject({ method: 'POST', url: '/logout', headers: { cookie } })
  t.equal(out.statusCode, 200)
  const after = await app.inject({ url: '/me', headers: { cookie } })
  t.same(after.json(), { id: null, userId: null, name: null })
})
