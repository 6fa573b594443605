/*
 * checkout_kit sandbox — the home page's "create a test order" button.
 *
 * POSTs JSON to the button's data-url, the test-order control (the controls take
 * JSON only, so no cross-site form can do the same) and opens the order's payment page.
 */
(function (global) {
  'use strict';

  const button = global.document.getElementById('create-order');
  const status = global.document.getElementById('order-status');
  if (!button || !status) return;

  button.addEventListener('click', async () => {
    button.disabled = true;
    status.textContent = 'Creating…';
    try {
      const response = await global.fetch(button.dataset.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
        credentials: 'same-origin',
      });
      const envelope = await response.json();
      const url = envelope && envelope.Success && envelope.Model && envelope.Model.Url;
      if (typeof url === 'string' && new URL(url, global.location.href).origin === global.location.origin) {
        global.location.assign(url);
        return;
      }
      status.textContent = (envelope && envelope.Message) || `HTTP ${response.status}`;
    } catch (error) {
      status.textContent = String(error);
    }
    button.disabled = false;
  });
})(window);
