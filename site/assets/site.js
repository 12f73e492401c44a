// Vitae: the live parts of the site. The pages are complete without this
// file (the blog's pages are rendered by the server); it adds the theme
// toggle, the widgets, the contact form's checks and the view counts. Each
// widget stays hidden until its endpoint answers with data, so a failing,
// slow or unconfigured endpoint leaves no trace on the page.
// Nothing here uses innerHTML on API text.

const root = document.documentElement;
const API = (root.dataset.api || '/api').replace(/\/$/, '');
const TIMEOUT = Number(root.dataset.timeout) || 8000;
const LANG = root.lang || 'en';
const widgets = new Set((document.body.dataset.widgets || '').split(' ').filter(Boolean));
const byId = (id) => document.getElementById(id);

// --- theme: the system's unless the visitor picked one (remembered) ----------

const THEME_KEY = 'vitae-theme';

function storedTheme() {
  try { return localStorage.getItem(THEME_KEY); } catch { return null; }
}

function applyTheme(theme) {
  if (theme === 'light' || theme === 'dark') root.dataset.theme = theme;
  else delete root.dataset.theme;
}

applyTheme(storedTheme());

function setupThemeToggle() {
  const button = byId('theme-toggle');
  if (!button) return;
  const system = matchMedia('(prefers-color-scheme: dark)');
  const current = () => root.dataset.theme || (system.matches ? 'dark' : 'light');
  const sync = () => button.setAttribute('aria-pressed', String(current() === 'dark'));
  button.addEventListener('click', () => {
    const next = current() === 'dark' ? 'light' : 'dark';
    applyTheme(next);
    try { localStorage.setItem(THEME_KEY, next); } catch { /* private mode: not remembered */ }
    sync();
  });
  system.addEventListener('change', sync);
  sync();
  button.classList.add('ready');
}

// --- small helpers -------------------------------------------------------------

/** Call the API; never throws. Resolves to {ok, status, data, headers}; status 0 on network error or timeout. */
async function api(path, { method = 'GET', body, timeout = TIMEOUT } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    const response = await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: controller.signal,
    });
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    return { ok: response.ok, status: response.status, data, headers: response.headers };
  } catch {
    return { ok: false, status: 0, data: null, headers: new Headers() };
  } finally {
    clearTimeout(timer);
  }
}

/** An element with attributes (text via `text`) and children; strings become text nodes, never HTML. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') node.textContent = value;
    else if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** `value` if it is an absolute http(s) URL, else null (keeps javascript: and data: out of links). */
function webUrl(value) {
  if (typeof value !== 'string') return null;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch { return null; }
}

const numberFormat = new Intl.NumberFormat(LANG);
const count = (n) => numberFormat.format(Number(n) || 0);
const dateFormat = new Intl.DateTimeFormat(LANG, { year: 'numeric', month: 'short', day: 'numeric' });
const relativeFormat = new Intl.RelativeTimeFormat(LANG, { numeric: 'auto' });
const UNITS = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600],
  ['minute', 60], ['second', 1]];

function timeEl(iso, text) {
  const time = Date.parse(iso);
  if (Number.isNaN(time)) return null;
  return el('time', { datetime: new Date(time).toISOString(), title: dateFormat.format(time), text });
}

function ago(iso) {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  if (Number.isNaN(seconds)) return '';
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') {
      return relativeFormat.format(Math.round(seconds / size), unit);
    }
  }
  return '';
}

function relative(iso) { return timeEl(iso, ago(iso)); }
function dated(iso) { const t = Date.parse(iso); return Number.isNaN(t) ? null : timeEl(iso, dateFormat.format(t)); }

function duration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, '0')}`;
}

function plural(n, one, many) { return `${count(n)} ${Number(n) === 1 ? one : many}`; }

const postUrl = (post) => `/blog/${encodeURIComponent(post.number)}/${encodeURIComponent(post.slug || 'post')}`;

/** "All posts" links keep the tag filter in the query string: /blog/?tag=x&page=2. */
function blogUrl({ tag, page } = {}) {
  const params = new URLSearchParams();
  if (tag) params.set('tag', tag);
  if (page && page > 1) params.set('page', String(page));
  const query = params.toString();
  return `/blog/${query ? `?${query}` : ''}`;
}

// --- visitor counter -----------------------------------------------------------

let counted = null;
// Waits (ms) before sending a view again when it got no answer or a 503: the server may have counted it
// anyway, so every try carries the same view id and the server counts the id once.
const VIEW_RETRIES = [1000, 3000];

/** A random id for one page view (a UUID). */
function newViewId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** POST one view, sent again with the same id while it gets no answer or a 503. */
async function sendView(body) {
  let result = await api('/visitors', { method: 'POST', body });
  for (const wait of VIEW_RETRIES) {
    if (result.status !== 0 && result.status !== 503) break;
    await new Promise((resolve) => { setTimeout(resolve, wait); });
    result = await api('/visitors', { method: 'POST', body });
  }
  return result;
}

/**
 * Whether this browser's views and beacons count: false in the owner's own browser, which signing in on
 * /stats (or its switch) marks with the first-party cookie vitae_ignore=1. Visitors carry no cookie.
 */
function countsThisBrowser() {
  return !/(?:^|;\s*)vitae_ignore=1(?:;|$)/.test(document.cookie);
}

/** Count this page view once per load and show the counts; resolves to the API's answer or null. */
function countView(path) {
  if (!widgets.has('visitors') || !path) return Promise.resolve(null);
  // the referrer's host and the page's utm_* parameters feed the owner's stats (reduced on the server)
  const body = { path, referrer: document.referrer, query: window.location.search, view_id: newViewId() };
  // the viewport's width gives the owner's stats a screen size class (phone, tablet, laptop, desktop)
  if (window.innerWidth > 0) body.width = Math.round(window.innerWidth);
  // the owner's browser only reads the counts, and sends no events or reading
  const counts = countsThisBrowser();
  if (counts) watchPage(path, body.view_id);
  const send = () => (counts ? sendView(body) : api(`/visitors?path=${encodeURIComponent(path)}`));
  counted ??= send().then((result) => {
    const box = byId('visitor-counter');
    if (!result.ok || !result.data || typeof result.data.page_views !== 'number') return null;
    const d = result.data;
    if (box) {
      box.replaceChildren(
        el('span', { class: 'count-page', text: plural(d.page_views, 'view', 'views') }), ' of this page · ',
        el('span', { class: 'count-total', text: plural(d.total_views, 'view', 'views') }), ' in total · ',
        el('span', { class: 'count-unique', text: plural(d.unique_visitors, 'visitor', 'visitors') }),
      );
      box.hidden = false;
    }
    return d;
  });
  return counted;
}

// --- events and reading: sent with navigator.sendBeacon when the page is hidden ------------------

// Visitors who ask not to be tracked send none; nothing is stored in the browser.
const OPTED_OUT = navigator.doNotTrack === '1' || navigator.globalPrivacyControl === true;
const DOWNLOAD = /\.(pdf|zip|gz|tgz|7z|rar|tar|docx?|xlsx?|pptx?|odt|ods|csv|epub|mp3|mp4|dmg|exe|apk)$/i;
const beacon = { path: null, view: null, seq: 0, events: [], visible: 0, since: null, scroll: 0 };

/** Queue an event for the page's next beacon; the name is reduced to what the server accepts. */
function track(name) {
  const clean = String(name || '').toLowerCase().replace(/[^a-z0-9._:/-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 48);
  if (beacon.view && clean && beacon.events.length < 8) beacon.events.push(clean);
}

/** The event a click on ``target`` fires: its data-vitae-event, or a link's kind (mail, download, outbound). */
function eventOf(target) {
  const marked = target.closest('[data-vitae-event]');
  if (marked) return marked.dataset.vitaeEvent;
  const link = target.closest('a[href]');
  if (!link) return null;
  let url;
  try { url = new URL(link.href, location.href); } catch { return null; } // an href no browser can follow
  if (url.protocol === 'mailto:') return 'email';
  if (!/^https?:$/.test(url.protocol)) return null;
  const file = url.pathname.split('/').pop();
  if (DOWNLOAD.test(file) || link.hasAttribute('download')) return `download:${file}`;
  return url.host === location.host ? null : `outbound:${url.hostname.replace(/^www\./, '')}`;
}

function scrolled() {
  const page = document.documentElement.scrollHeight;
  beacon.scroll = Math.max(beacon.scroll, page ? Math.min(100, ((window.scrollY + window.innerHeight) / page) * 100) : 100);
}

/** Send what is new: the events since the last beacon and, in the view's first beacon, the reading. */
function sendBeacon() {
  if (beacon.since !== null) beacon.visible += performance.now() - beacon.since;
  beacon.since = null;
  const body = { path: beacon.path, view_id: beacon.view, seq: beacon.seq };
  if (beacon.events.length) body.events = beacon.events.splice(0);
  if (beacon.seq === 0) body.reading = { seconds: Math.min(86400, Math.round(beacon.visible / 1000)), scroll: Math.round(beacon.scroll) };
  if ((!body.events && !body.reading) || beacon.seq > 7 || !navigator.sendBeacon) return;
  beacon.seq += 1;
  navigator.sendBeacon(`${API}/visitors/events`, JSON.stringify(body));
}

/** Watch the counted view ``view`` of ``path``: clicks that are events, visible time and scroll depth. */
function watchPage(path, view) {
  if (OPTED_OUT || beacon.view) return;
  Object.assign(beacon, { path, view, since: document.visibilityState === 'visible' ? performance.now() : null });
  scrolled();
  window.addEventListener('scroll', scrolled, { passive: true });
  document.addEventListener('click', (event) => { if (event.target instanceof Element) track(eventOf(event.target)); }, true);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') sendBeacon();
    else beacon.since = performance.now();
  });
  window.addEventListener('pagehide', () => { if (beacon.since !== null || beacon.events.length) sendBeacon(); });
}

// --- Spotify -------------------------------------------------------------------

const spotifyState = { timer: null, refreshes: 0 };

/** Fill the Spotify card; resolves to whether there is something to show. */
async function spotify() {
  clearInterval(spotifyState.timer);
  const result = await api('/spotify');
  const d = result.ok && result.data;
  if (!d || typeof d.title !== 'string' || !d.title) return false;
  byId('spotify-title').textContent = d.is_playing ? 'Now playing' : 'Last played';
  const link = byId('spotify-link');
  link.textContent = d.title;
  const url = webUrl(d.url);
  if (url) link.href = url; else link.removeAttribute('href');
  const by = Array.isArray(d.artists) ? d.artists.filter((a) => typeof a === 'string').join(', ') : '';
  byId('spotify-artists').textContent = [by, d.album].filter(Boolean).join(' · ');
  const image = webUrl(d.image_url);
  const cover = image ? el('img', { class: 'cover', src: image, alt: '', width: 64, height: 64 })
    : el('span', { class: 'cover', hidden: true });
  cover.id = 'spotify-cover';
  byId('spotify-cover').replaceWith(cover);

  const when = byId('spotify-when');
  const row = byId('spotify-progress-row');
  if (d.is_playing && d.duration_ms > 0) {
    when.replaceChildren(d.type === 'episode' ? 'Podcast episode' : '');
    // the answer may have waited in a cache for `age` seconds while the track played on
    showProgress(row, (Number(d.progress_ms) || 0) + (Number(d.age) || 0) * 1000, Number(d.duration_ms));
  } else {
    row.hidden = true;
    const played = relative(d.played_at);
    when.replaceChildren(...(played ? ['Played ', played] : []));
  }
  return true;
}

function showProgress(row, progress, total) {
  const bar = byId('spotify-progress');
  const label = byId('spotify-time');
  const started = Date.now();
  bar.max = total;
  const tick = () => {
    const position = Math.min(total, progress + (Date.now() - started));
    bar.value = position;
    label.textContent = `${duration(position)} / ${duration(total)}`;
    if (position >= total) {
      clearInterval(spotifyState.timer);
      // The track has ended: ask what plays next (bounded, so a stuck answer cannot loop).
      if (spotifyState.refreshes++ < 30) {
        setTimeout(async () => { byId('spotify').hidden = !(await spotify()); }, 3000);
      }
    }
  };
  tick();
  row.hidden = false;
  spotifyState.timer = setInterval(tick, 1000);
}

// --- GitHub activity -------------------------------------------------------------

function describeEvent(e) {
  const repo = e.repo || '';
  switch (e.type) {
    case 'push': {
      const commits = typeof e.commits === 'number' ? plural(e.commits, 'commit', 'commits') : 'commits';
      return `Pushed ${commits} to ${repo}${e.branch ? ` (${e.branch})` : ''}`;
    }
    case 'pull_request':
      return `${capital(e.action || 'updated')} pull request${e.title ? `: ${e.title}` : ` in ${repo}`}`;
    case 'issue':
      return `${capital(e.action || 'updated')} issue${e.title ? `: ${e.title}` : ` in ${repo}`}`;
    case 'release':
      return `Released ${e.name || e.tag || 'a version'} of ${repo}`;
    case 'create':
      return e.ref_type === 'repository' || !e.ref ? `Created ${repo}` : `Created ${e.ref_type || 'ref'} ${e.ref} in ${repo}`;
    case 'fork':
      return `Forked ${repo}`;
    case 'star':
      return `Starred ${repo}`;
    default:
      return null;
  }
}

function capital(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

/** Fill the GitHub card; resolves to whether there is something to show. */
async function github() {
  const result = await api('/github?limit=5');
  const events = result.ok && result.data && Array.isArray(result.data.events) ? result.data.events : [];
  const items = [];
  for (const event of events) {
    const text = event && describeEvent(event);
    if (!text) continue;
    const url = webUrl(event.url);
    const detail = Array.isArray(event.messages) && event.messages[0] ? el('span', { class: 'muted', text: event.messages[0] }) : null;
    const when = relative(event.created_at);
    items.push(el('li', {}, url ? el('a', { href: url, text }) : text, detail,
      when ? el('span', { class: 'muted' }, when) : null));
  }
  byId('github-events').replaceChildren(...items);
  return items.length > 0;
}

// --- blog ---------------------------------------------------------------------------

function postMeta(post, views) {
  const parts = [];
  const date = dated(post.created_at);
  if (date) parts.push(date);
  if (post.reading_minutes) parts.push(`${count(post.reading_minutes)} min read`);
  if (typeof views === 'number') parts.push(plural(views, 'view', 'views'));
  return parts.flatMap((part, i) => (i ? [' · ', part] : [part]));
}

function tagList(tags, label) {
  if (!Array.isArray(tags) || !tags.length) return null;
  return el('ul', { class: 'tags tag-links', 'aria-label': label },
    tags.filter((t) => typeof t === 'string').map((t) => el('li', {}, el('a', { href: blogUrl({ tag: t }), text: t }))));
}

const validPost = (p) => p && Number.isInteger(p.number) && typeof p.title === 'string';

/** Fill the latest-posts card; resolves to whether there is something to show. */
async function latestPosts() {
  const result = await api('/blog?per_page=3');
  const posts = result.ok && result.data && Array.isArray(result.data.posts) ? result.data.posts.filter(validPost) : [];
  if (!posts.length) return false;
  byId('latest-list').replaceChildren(...posts.map((post) => el('li', {},
    el('a', { href: postUrl(post), text: post.title }),
    el('span', { class: 'muted' }, postMeta(post, post.views)),
    tagList(post.tags, 'Tags'))));
  return true;
}

/** On a server-rendered post, add the live view count to the meta line. */
async function postViews() {
  const slot = byId('post-views');
  const counts = await countView(document.body.dataset.count);
  if (!slot || !counts || typeof counts.page_views !== 'number') return;
  slot.textContent = ` · ${plural(counts.page_views, 'view', 'views')}`;
  slot.hidden = false;
}

// --- contact form ---------------------------------------------------------------------

const TURNSTILE_FIELD = 'cf-turnstile-response';
const CONTROL = /[\u0000-\u0009\u000B\u000C\u000E-\u001F\u007F]/;
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
const REQUIRED = { name: 'Please enter your name.', email: 'Please enter your email address.',
  message: 'Please write a message.' };

/** The problem with one field as the API would see it (trimmed, counted in code points), or ''. */
function problem(field) {
  const value = field.value.trim();
  const length = [...value].length;
  const max = Number(field.getAttribute('maxlength')) || 0;
  if (field.required && !length) return REQUIRED[field.name] || 'Please fill in this field.';
  if (max && length > max) return `Please keep this to ${count(max)} characters (now ${count(length)}).`;
  if (CONTROL.test(value)) return 'Please remove the control characters from this field.';
  if (field.type === 'email' && length && !EMAIL.test(value)) return 'Please enter an email address like name@example.com.';
  return '';
}

function showFieldError(field, message) {
  const slot = byId(`${field.id}-error`);
  if (slot) slot.textContent = message;
  if (message) field.setAttribute('aria-invalid', 'true'); else field.removeAttribute('aria-invalid');
}

function retryText(seconds) {
  if (!(seconds > 0)) return 'later';
  if (seconds < 90) return `in ${plural(Math.ceil(seconds), 'second', 'seconds')}`;
  if (seconds < 5400) return `in ${plural(Math.ceil(seconds / 60), 'minute', 'minutes')}`;
  return `in ${plural(Math.ceil(seconds / 3600), 'hour', 'hours')}`;
}

function setupContact() {
  const form = byId('contact-form');
  if (!form) return;
  form.noValidate = true;
  // the Turnstile widget adds its own hidden field (its token), read when sending
  const fields = [...form.querySelectorAll('input, textarea')].filter((f) => f.name !== 'website' && f.type !== 'hidden');
  const widget = byId('cf-turnstile');
  const status = byId('cf-status');
  const submit = byId('cf-submit');
  const fallback = form.dataset.fallback;
  const say = (text, kind) => { status.textContent = text; status.className = `form-status ${kind || ''}`.trim(); };

  for (const field of fields) {
    field.addEventListener('blur', () => { if (field.value) showFieldError(field, problem(field)); });
    field.addEventListener('input', () => { if (field.getAttribute('aria-invalid')) showFieldError(field, problem(field)); });
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    let first = null;
    for (const field of fields) {
      const message = problem(field);
      showFieldError(field, message);
      if (message && !first) first = field;
    }
    if (first) {
      say('Please correct the marked fields.', 'error');
      first.focus();
      return;
    }
    const body = Object.fromEntries(fields.map((f) => [f.name, f.value.trim()]));
    body.website = form.elements.website ? form.elements.website.value : '';
    body.page = location.pathname;
    if (widget) body[TURNSTILE_FIELD] = form.elements[TURNSTILE_FIELD] ? form.elements[TURNSTILE_FIELD].value : '';
    submit.disabled = true;
    form.setAttribute('aria-busy', 'true');
    const label = submit.textContent;
    submit.textContent = 'Sending…';
    say('');
    const result = await api('/contact', { method: 'POST', body, timeout: Math.max(TIMEOUT, 15000) });
    submit.disabled = false;
    form.removeAttribute('aria-busy');
    submit.textContent = label;
    // a Turnstile token counts once: the next message needs a fresh one
    if (widget && window.turnstile) {
      try { window.turnstile.reset(widget); } catch { /* the widget is gone: the API will say so */ }
    }
    const code = result.data && typeof result.data.error === 'string' ? result.data.error : '';
    if (result.status === 202 || (result.ok && result.data && result.data.status === 'accepted')) {
      form.reset();
      fields.forEach((f) => showFieldError(f, ''));
      track('contact-sent');
      say('Thank you! Your message has been sent.', 'ok');
    } else if (result.status === 400 && result.data && result.data.fields) {
      let target = null;
      for (const field of fields) {
        const message = result.data.fields[field.name];
        showFieldError(field, typeof message === 'string' ? capital(message) : '');
        if (message && !target) target = field;
      }
      say('Please correct the marked fields.', 'error');
      if (target) target.focus();
    } else if (result.status === 400 && code.startsWith('turnstile_') && typeof result.data.message === 'string') {
      say(`${capital(result.data.message)}.${fallback ? ` You can also write to ${fallback}.` : ''}`, 'error');
    } else if (result.status === 429) {
      const seconds = Number(result.headers.get('Retry-After')) || Number(result.data && result.data.retry_after);
      say(`Too many messages were sent from here. Please try again ${retryText(seconds)}.`, 'error');
    } else if (result.status === 413) {
      say('The message is too long to send. Please shorten it.', 'error');
    } else {
      const detail = result.status === 400 && result.data && typeof result.data.message === 'string'
        ? ` (${result.data.message})` : '';
      say(`The message could not be sent right now${detail}. Please try again later${fallback ? ` or write to ${fallback}` : ''}.`, 'error');
    }
  });
}

/**
 * Load the side cards at once but show each only when every card above it
 * has settled, so a late answer never pushes a visible card down.
 */
async function revealInOrder(cards) {
  const loads = cards.filter(([id]) => byId(id)).map(([id, load]) => [id, load().catch(() => false)]);
  for (const [id, loading] of loads) byId(id).hidden = !(await loading);
}

// --- start ------------------------------------------------------------------------------

function start() {
  setupThemeToggle();
  const page = document.body.dataset.page;
  const tasks = [];
  if (document.body.dataset.count) tasks.push(countView(document.body.dataset.count));
  if (page === 'home') {
    tasks.push(revealInOrder([['spotify', spotify], ['github', github], ['latest-posts', latestPosts]]));
    setupContact();
  } else if (page === 'post') {
    tasks.push(postViews());
  }
  // Every task handles its own failures; this keeps a bug in one from reaching the console as unhandled.
  Promise.allSettled(tasks).then((results) => {
    document.body.dataset.ready = 'true';
    for (const r of results) if (r.status === 'rejected') console.warn('vitae widget failed:', r.reason);
  });
}

start();
