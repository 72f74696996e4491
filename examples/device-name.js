import Bowser from 'bowser'

// How people name their devices: "Chrome on Windows", "Safari on iPhone", "curl · API token".
// The browser and its system come from bowser (MIT, maintained, no dependencies), which knows
// browsers' User-Agent strings and their quirks. A client it does not know (curl, an HTTP
// library, an app) is named by the first product of its User-Agent (RFC 9110: product/version).

const LONGEST = 40

function clientOf (userAgent) {
  const ua = userAgent?.trim() ?? ''
  if (ua === '') return 'Unknown device'
  const { browser, os, platform } = Bowser.parse(ua)
  // An iPhone or an iPad rather than "iOS"; otherwise the system: Windows, macOS, Linux, Android…
  const system = platform.model || os.name
  if (browser.name) return system ? `${browser.name} on ${system}` : browser.name
  const product = ua.split(/[/\s]/, 1)[0]
  return product.length > LONGEST ? product.slice(0, LONGEST) + '…' : product
}

/** A session's device as people name it; `transport` 'bearer': an API token, whoever holds it. */
export function deviceName (userAgent, transport) {
  const client = clientOf(userAgent)
  return transport === 'bearer' ? `${client} · API token` : client
}
