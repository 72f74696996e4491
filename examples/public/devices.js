/* global EventSource */
// The devices page, live: when this session ends on another device or tab, go to the sign-in
// page at once. Served as a file (the CSP allows scripts from this origin only, none inline);
// without it the page works the same, a page load at a time.
const source = new EventSource('/devices/events')
let opened = false

source.addEventListener('open', () => { opened = true })

source.addEventListener('signed-out', (event) => {
  source.close()
  // replace: Back does not lead to a page of a session that is gone.
  window.location.replace(event.data === 'expired' ? '/?out=expired' : '/?out=elsewhere')
})

source.addEventListener('error', () => {
  // A stream that was open and is now refused (signed out while the connection was down, or
  // the server restarted): reload once and let the server decide. A page whose stream never
  // opened does not reload, so a failing server cannot start a reload loop.
  if (source.readyState === EventSource.CLOSED && opened) window.location.reload()
})

// This page's own forms sign out or reload it: stop listening first, so that its own
// "Log out everywhere" or "Log out" is not taken for a sign-out from elsewhere.
document.addEventListener('submit', () => { source.close() })
