// The dashboard's entry point: hash routing between pages, and the theme.
import './style.css';
import { el } from './dom.js';
import { renderExplore } from './explore.js';
import { renderLive } from './live.js';
import { renderOverview } from './overview.js';

function renderUptime(view) {
  view.replaceChildren(
    el('h1', {}, 'Uptime'),
    el('div', { class: 'panel placeholder' },
      el('div', { class: 'big' }, '⏱'),
      el('h2', {}, 'Website and API checks are coming'),
      el('p', { class: 'muted' }, 'Probes of websites and JSON APIs, their status history and response times will show here.')),
  );
}

const PAGES = { explore: renderExplore, live: renderLive, overview: renderOverview, uptime: renderUptime };

let cleanup = null;
function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [page, query] = hash.split('?');
  const name = PAGES[page] ? page : 'explore';
  if (cleanup) cleanup();
  cleanup = null;
  const view = document.getElementById('view');
  cleanup = PAGES[name](view, new URLSearchParams(query || '')) || null;
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === name);
  }
  document.title = `Espy · ${name[0].toUpperCase()}${name.slice(1)}`;
}

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  window.dispatchEvent(new Event('espy-theme'));
}
const saved = localStorage.getItem('espy-theme');
applyTheme(saved || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
document.getElementById('theme').addEventListener('click', () => {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem('espy-theme', next);
  applyTheme(next);
});

window.addEventListener('hashchange', route);
route();
