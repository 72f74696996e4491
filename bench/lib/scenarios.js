// The scenarios of the main table, the peer and the floors each is compared with, and the targets.

// The floors of each kind of session: hand-written sessions that do the least (bench/server.js);
// for sessions in the cookie, @fastify/secure-session stands in for one.
const MEMORY_FLOORS = ['floor-signed', 'floor-token']
const REDIS_FLOORS = ['floor-redis']
const COOKIE_FLOORS = ['secure-session']

export const SCENARIOS = [
  { name: 'bare', label: 'bare Fastify (no session)', sessions: false },
  { name: 'bare-busy10', label: 'bare Fastify + 10 µs busy loop', sessions: false },
  { name: 'floor-signed', label: 'floor: signed cookie + Map, by hand', short: 'signed' },
  { name: 'floor-token', label: 'floor: id.secret cookie + Map of SHA-256, by hand', short: 'token' },
  { name: 'floor-redis', label: 'floor: signed cookie + Redis GET / SET PX, by hand', short: 'Redis floor', redis: true },
  { name: 'ours-memory', label: "ours, 'memory'", store: 'memory', peer: 'fastify-session', floors: MEMORY_FLOORS },
  { name: 'ours-redis', label: "ours, 'redis'", store: 'redis', redis: true, peer: 'fastify-session-redis', floors: REDIS_FLOORS },
  { name: 'ours-cookie', label: "ours, 'cookie' (default install: sodium-native)", store: 'cookie', peer: 'secure-session', floors: COOKIE_FLOORS },
  { name: 'ours-cookie-node', label: "ours, 'cookie' (node:crypto)", store: 'cookie', peer: 'secure-session', floors: COOKIE_FLOORS },
  { name: 'fastify-session', label: '@fastify/session, MemoryStore', floors: MEMORY_FLOORS },
  { name: 'fastify-session-redis', label: '@fastify/session + connect-redis', redis: true, floors: REDIS_FLOORS },
  { name: 'secure-session', label: '@fastify/secure-session', short: 'secure-session' }
]

/**
 * bench:fixed's and bench:commands' scenarios, [name, label]: ours on each client, connect-redis
 * (the reference, REDIS_REF), and what any session can do at least, by hand, on the same client:
 * the string floor (GET, then SET PX on a write) and the hash floor (HGETALL, then HSET of the
 * changed key).
 */
export const REDIS_SCENARIOS = [
  ['ours-redis-node', 'ours \'redis\', node-redis 5 client'],
  ['ours-redis-ioredis', 'ours \'redis\', ioredis 5 client'],
  ['fastify-session-redis9', '@fastify/session + connect-redis 9, node-redis 5'],
  ['floor-redis-node', 'floor by hand: a string, GET / SET PX, node-redis 5'],
  ['floor-redis-hash-node', 'floor by hand: a hash, HGETALL / HSET, node-redis 5']
]

/** The scenario every other one of REDIS_SCENARIOS is measured against. */
export const REDIS_REF = 'fastify-session-redis9'

/** REDIS_SCENARIOS, or those `only` (a comma-separated list, or undefined for all) names. */
export function redisScenarios (only) {
  return REDIS_SCENARIOS.filter(([name]) => only === undefined || only.split(',').includes(name))
}

/** The scenarios whose Redis round trips and commands per request are counted. */
export const REDIS_COST_SCENARIOS = ['ours-redis', 'floor-redis', 'fastify-session-redis']

export const ROUTES = [
  { name: 'write', method: 'POST' },
  { name: 'read', method: 'GET' }
]

/** 'hot': every connection on one session; 'spread': the sessions spread over the connections. */
export const MODES = ['hot', 'spread']

/** How a mode is named in the report, for a run that spread `sessions` sessions. */
export function modeLabel (mode, sessions = 1000) {
  return mode === 'hot' ? 'one hot session' : `${sessions.toLocaleString('en-US')} sessions`
}

export const byName = Object.fromEntries(SCENARIOS.map((s) => [s.name, s]))

/** The cells of the main table, in the order they run within a round (A B C ... A B C ...). */
export function cells () {
  const list = []
  for (const mode of MODES) {
    for (const route of ROUTES) {
      for (const s of SCENARIOS) {
        list.push({ scenario: s.name, route: route.name, method: route.method, mode })
      }
    }
  }
  return list
}

export const key = (scenario, route, mode) => `${scenario}|${route}|${mode}`

/**
 * The cell of the server without sessions that a cell is compared with: same route, and the
 * same number of distinct cookies sent, so that the load generator does the same work.
 */
export const bareKey = (route, mode) => key('bare', route, mode)

export const TARGETS = {
  memoryCpuShare: 1 / 3, // ours 'memory' adds at most 1/3 of the CPU @fastify/session adds
  cookieCpuShare: 1 / 2, // ours 'cookie' adds at most 1/2 of what @fastify/secure-session adds
  redisReadRoundTrips: 1,
  redisWriteRoundTrips: 2,
  memoryBytesPerSession: 400, // anonymous sessions holding { counter }
  memoryBytesPerLoggedInSession: 500, // 50,000 users with one session each, per-user index included
  getAllFlatness: 2, // 1M vs 10k
  getAllVsScan: 100
}

/** Targets on req/s: `ours` ÷ `vs` on `route`, medians of per-round ratios, in both modes. */
export const RPS_TARGETS = [
  { ours: 'ours-memory', vs: 'floor-signed', route: 'read', goal: 1.0 },
  { ours: 'ours-memory', vs: 'floor-token', route: 'read', goal: 0.95 },
  { ours: 'ours-memory', vs: 'floor-signed', route: 'write', goal: 0.9 },
  { ours: 'ours-redis', vs: 'floor-redis', route: 'read', goal: 0.95 },
  { ours: 'ours-redis', vs: 'floor-redis', route: 'write', goal: 0.85 },
  { ours: 'ours-redis', vs: 'fastify-session-redis', route: 'read', goal: 1.5 },
  { ours: 'ours-redis', vs: 'fastify-session-redis', route: 'write', goal: 1.5 },
  { ours: 'ours-cookie', vs: 'secure-session', route: 'read', goal: 1.0 },
  { ours: 'ours-cookie', vs: 'secure-session', route: 'write', goal: 1.2 }
]
