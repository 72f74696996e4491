import { Authenticator } from '@fastify/passport'
import Fastify, { type FastifyInstance } from 'fastify'
import * as client from 'openid-client'
import { Strategy as OpenIdStrategy } from 'openid-client/passport'
import OAuth2Strategy from 'passport-oauth2'
import t, { type Test } from 'tap'
import fastifyUserSessions, { passportSessions } from '../../lib/index.js'
import { SECRET, storeNamed } from '../helpers/app.js'
import { authorize, Browser, CLIENT, startProvider } from '../helpers/oidc.js'
import { onEachStore, type StoreOptions } from '../helpers/stores.js'

// "Sign in with an OpenID provider", over real HTTP against a real provider (oidc-provider),
// through the two strategies apps use with @fastify/passport: openid-client's (v6) and
// passport-oauth2 with state and PKCE. Both keep the authorization request in the session by
// property access (`req.session[key] = ...`, `delete req.session[key]`).

interface User { id: string }

/** The payload of a JWT, unverified (passport-oauth2 hands the ID token over as it came, from the token endpoint over a direct request). */
function claimsOf (jwt: string): { sub: string } {
  return JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString()) as { sub: string }
}

async function signInApp (t: Test, store: StoreOptions): Promise<{ app: FastifyInstance, url: string }> {
  const passport = new Authenticator()
  passportSessions(passport)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyUserSessions, { secret: SECRET, ...store })
  await app.register(passport.initialize())
  await app.register(passport.secureSession())
  passport.registerUserSerializer(async (user: User) => user.id)
  passport.registerUserDeserializer(async (id: string) => ({ id }))
  for (const name of ['oidc', 'oauth2']) {
    app.get(`/login/${name}`, { preValidation: passport.authenticate(name) }, async () => 'redirected')
    app.get(`/callback/${name}`, { preValidation: passport.authenticate(name, { authInfo: false }) }, async (request) => ({
      user: (request.user as User).id,
      userId: request.session.userId,
      data: request.session.toJSON()
    }))
  }
  app.get('/me', async (request) => ({
    user: (request.user as User | null)?.id ?? null,
    isNew: request.session.isNew,
    data: request.session.toJSON()
  }))
  app.post('/logout', async (request) => { await request.logOut(); return 'bye' })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })

  const provider = await startProvider(t, [`${url}/callback/oidc`, `${url}/callback/oauth2`])
  const config = await client.discovery(new URL(provider.issuer), CLIENT.id, CLIENT.secret, undefined, {
    execute: [client.allowInsecureRequests]
  })
  // openid-client types its Strategy against express's passport types, which @fastify/passport's use() does not take.
  passport.use('oidc', new OpenIdStrategy({ config, scope: 'openid', callbackURL: `${url}/callback/oidc` },
    (tokens, verified) => { verified(null, { id: tokens.claims()?.sub }) }) as never)
  const metadata = config.serverMetadata()
  passport.use('oauth2', new OAuth2Strategy({
    authorizationURL: metadata.authorization_endpoint as string,
    tokenURL: metadata.token_endpoint as string,
    clientID: CLIENT.id,
    clientSecret: CLIENT.secret,
    callbackURL: `${url}/callback/oauth2`,
    scope: 'openid',
    state: true,
    pkce: true
  }, (_access: string, _refresh: string, params: { id_token: string }, _profile: unknown, done: (err: Error | null, user?: User) => void) => {
    done(null, { id: claimsOf(params.id_token).sub })
  }))
  return { app, url }
}

async function flows (t: Test, store: StoreOptions): Promise<void> {
  const { url } = await signInApp(t, store)
  for (const name of ['oidc', 'oauth2']) {
    await t.test(name, async (t) => {
      const browser = new Browser()
      const callback = `${url}/callback/${name}`
      const location = await authorize(browser, `${url}/login/${name}`, callback, 'alice')
      const before = browser.cookie(url, 'sid')
      t.ok(before, 'the authorization request made a session (its state is in it)')
      const beforeData = JSON.parse((await browser.request(`${url}/me`)).body).data
      t.equal(Object.keys(beforeData).length, 1, 'one key holds the authorization request')

      const landed = await browser.follow(location)
      t.equal(landed.status, 200, `signed in (${landed.body.slice(0, 200)})`)
      t.same(JSON.parse(landed.body), { user: 'alice', userId: 'alice', data: { passport: 'alice' } }, 'nothing of the authorization request left')
      const after = browser.cookie(url, 'sid')
      t.not(after, before, 'the session id is renewed at login')
      t.same(JSON.parse((await browser.request(`${url}/me`)).body), { user: 'alice', isNew: false, data: { passport: 'alice' } })

      const stale = new Browser()
      stale.setCookie(url, 'sid', before)
      t.same(JSON.parse((await stale.request(`${url}/me`)).body), { user: null, isNew: true, data: {} }, 'the pre-login cookie is dead')

      const replay = new Browser()
      const replayed = await replay.follow(location)
      t.not(replayed.status, 200, 'a replayed callback, in another browser, signs no one in')
      t.equal(JSON.parse((await replay.request(`${url}/me`)).body).user, null)
      t.not((await browser.follow(location)).status, 200, 'replayed in the same browser: refused')
      t.equal(JSON.parse((await browser.request(`${url}/me`)).body).user, 'alice', 'and still alice, nobody else')

      const tamperer = new Browser()
      const fresh = new URL(await authorize(tamperer, `${url}/login/${name}`, callback, 'mallory'))
      fresh.searchParams.set(name === 'oauth2' ? 'state' : 'code', 'tampered')
      const tampered = await tamperer.follow(fresh.href)
      t.not(tampered.status, 200, 'a tampered callback signs no one in')
      t.equal(JSON.parse((await tamperer.request(`${url}/me`)).body).user, null)

      const out = await browser.request(`${url}/logout`, { method: 'POST' })
      t.equal(out.status, 200)
      t.equal(JSON.parse((await browser.request(`${url}/me`)).body).user, null, 'logged out')
      const copy = new Browser()
      copy.setCookie(url, 'sid', after)
      t.equal(JSON.parse((await copy.request(`${url}/me`)).body).user, null, 'the logged-in cookie is dead after logout')
    })
  }
}

onEachStore(t, 'sign in with an OpenID provider', flows)
t.test('sign in with an OpenID provider (cookie)', async (t) => { await flows(t, storeNamed('cookie') as StoreOptions) })
