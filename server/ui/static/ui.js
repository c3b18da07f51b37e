// Cloner web interface: the little the pages need beyond htmx (no inline script: the CSP
// allows only files from /ui/static/). The header checkbox of the nodes table ticks every
// row shown; delegated from the document, so it works after htmx swaps the table.
document.addEventListener('change', (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.hasAttribute('data-check-all')) return;
  const table = box.closest('table');
  if (!table) return;
  for (const row of table.querySelectorAll('input[name="nodes"]')) row.checked = box.checked;
});
