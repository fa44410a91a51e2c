// Light/dark theme, shared by the dashboard and the status page: the saved
// choice, else the system's; a button toggles and remembers it. Charts
// listen for the 'espy-theme' event to redraw in the new colours.
const KEY = 'espy-theme';

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  window.dispatchEvent(new Event('espy-theme'));
}

export function initTheme(button) {
  const saved = localStorage.getItem(KEY);
  applyTheme(saved || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
  button.addEventListener('click', () => {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem(KEY, next);
    applyTheme(next);
  });
}
