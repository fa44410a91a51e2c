// The dashboard's entry point: hash routing between pages, and the theme.
import './style.css';
import { renderExplore } from './explore.js';
import { renderLive } from './live.js';
import { renderOverview } from './overview.js';
import { initTheme } from './theme.js';
import { renderUptime } from './uptime.js';

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

initTheme(document.getElementById('theme'));

window.addEventListener('hashchange', route);
route();
