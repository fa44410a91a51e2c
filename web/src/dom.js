// Tiny DOM helpers.

// el('div', {class: 'x', onclick: f}, child, 'text', ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'value') node.value = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === '') continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

// Rewrites the hash (#/page?params) without triggering a re-render.
export function setHashParams(page, params) {
  const hash = `#/${page}${params.toString() ? `?${params}` : ''}`;
  if (location.hash !== hash) history.replaceState(null, '', hash);
}
