import { createHash } from 'node:crypto'

/** A Lua script and its SHA-1, for EVALSHA with EVAL as the fallback. */
export interface Script {
  readonly lua: string
  readonly sha: string
}

export function script (lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}
