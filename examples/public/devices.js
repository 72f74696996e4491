/* global EventSource */
// The devices page, live: when this session ends on another device or tab, go to the sign-in
// page at once. Served as a file (the CSP allows scripts from this origin only, none inline);
// without it the page works the same, a page load at a time, with its times in UTC.
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

// Times in the viewer's terms: "2 minutes ago", "in 29 days", in the page's language; the date
// and time in the viewer's time zone and conventions when pointed at. The server's text (UTC)
// stays for whoever runs no script.
const relative = new Intl.RelativeTimeFormat(document.documentElement.lang, { numeric: 'auto' })
const local = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short'
})
const UNITS = [['year', 365 * 86400], ['month', 30 * 86400], ['day', 86400], ['hour', 3600], ['minute', 60]]

function ago (date) {
  const seconds = (date.getTime() - Date.now()) / 1000
  if (Math.abs(seconds) < 60) return seconds < 0 ? 'just now' : 'in a moment'
  const [unit, size] = UNITS.find(([, size]) => Math.abs(seconds) >= size)
  return relative.format(Math.round(seconds / size), unit)
}

function showTimes () {
  for (const element of document.querySelectorAll('time[datetime]')) {
    const date = new Date(element.dateTime)
    if (Number.isNaN(date.getTime())) continue
    element.textContent = ago(date)
    element.title = local.format(date)
  }
}

showTimes()
setInterval(showTimes, 30_000)
