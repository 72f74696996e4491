// The routes every scenario serves: POST /counter reads a counter from the session,
// increments it and sets it (write); GET /counter only reads it (read); GET /plain never
// touches the session (what the plugin costs a route that does not use it). With `login`, also
// POST /login, which signs the session in as one user, the plugin's way (a new id, the user kept).

export const SECRET = 'a-bench-secret-that-is-long-enough-for-every-plugin'

/** `session(req)` returns the request's session object, whatever the plugin calls it; `login(req)` signs it in. */
export function counterRoutes (app, session, login) {
  app.get('/counter', async (req) => ({ counter: session(req).get('counter') ?? 0 }))
  app.post('/counter', async (req) => {
    const s = session(req)
    const counter = (s.get('counter') ?? 0) + 1
    s.set('counter', counter)
    return { counter }
  })
  app.get('/plain', async () => ({ counter: 0 }))
  if (login !== undefined) {
    app.post('/login', async (req) => {
      await login(req)
      return { ok: true }
    })
  }
}

/** The user every signed-in bench session belongs to. */
export const BENCH_USER = 'bench-user'

/** A logger for stores built outside an app: says nothing. */
export const silentLog = {
  level: 'silent',
  fatal () {},
  error () {},
  warn () {},
  info () {},
  debug () {},
  trace () {},
  child () { return silentLog }
}
