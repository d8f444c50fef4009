// The browser side of tests/browser.rs: JsSIP registers over WSS with a Bearer token
// (authorization_jwt, `token=`) or with Digest (`password=`, answering sipreg's 401),
// then subscribes to a presentity; every step is reported to the page's own server
// (POST /report?event=...) where the test reads it. `ua=` sets the User-Agent (JsSIP's
// own, "JsSIP <version>", when absent).
import JsSIP from 'jssip';

const params = new URLSearchParams(location.search);

function report(event, detail) {
  return fetch(`/report?event=${encodeURIComponent(event)}`, {
    method: 'POST',
    body: detail === undefined ? '' : String(detail),
  }).catch(() => {});
}

window.addEventListener('error', (e) => report('error', e.message));

const socket = new JsSIP.WebSocketInterface(params.get('wss'));
const config = {
  sockets: [socket],
  uri: params.get('uri'),
  register: true,
  register_expires: 600,
  // One connection, no reconnection storms if the server goes away.
  connection_recovery_min_interval: 30,
  connection_recovery_max_interval: 60,
};
if (params.get('token')) config.authorization_jwt = `Bearer ${params.get('token')}`;
if (params.get('password')) config.password = params.get('password');
if (params.get('ua')) config.user_agent = params.get('ua');
const ua = new JsSIP.UA(config);

ua.on('connected', () => report('connected'));
ua.on('disconnected', () => report('disconnected'));
ua.on('registrationFailed', (e) => report('registrationFailed', e.cause));
ua.on('registered', (e) => {
  report('registered', e.response ? e.response.status_code : '');
  const watch = params.get('watch');
  if (!watch) return;
  const sub = ua.subscribe(watch, 'presence', 'application/pidf+xml', { expires: 600 });
  sub.on('accepted', () => report('subscribed'));
  sub.on('notify', (isFinal, request, body) => report('notify', body));
  sub.on('terminated', (code, reason) => report('terminated', `${code} ${reason || ''}`));
  sub.subscribe();
});

ua.start();
report('started');
