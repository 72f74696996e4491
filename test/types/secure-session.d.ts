// The type checks of this repository see @fastify/secure-session as an app that does not install
// it sees it: @fastify/flash's types (which @fastify/passport's load) import its SessionData,
// and its own types also declare `request.session`, which this plugin declares. See docs/plugins.md,
// "With other plugins", on TypeScript.
export interface SessionData {
  [key: string]: any
}
