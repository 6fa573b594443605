/*
 * checkout_kit sandbox — the widget's payment frame, ES2020, no dependencies.
 *
 * Runs inside the iframe that widget.js opens, on the sandbox's origin, next to the
 * sandbox's checkout.js. It receives the payment intent from the shop's page, turns
 * the form into a cryptogram, pays through the public-id endpoint
 * (POST /payments/cards/charge|auth?publicId=…), runs 3-D Secure in a nested frame
 * (ACS page -> POST /payments/ThreeDSCallback -> redirect to /widget/3ds/…) and
 * reports back to the shop's page with postMessage. In cryptogram mode it only makes
 * the cryptogram and hands it to the shop's page, which has its server pay with it.
 *
 * The same file also runs on the 3-D Secure result page (body[data-page=3ds-result]),
 * where it only tells the frame that holds it how 3-D Secure ended.
 */
(function (global) {
  'use strict';

  const document = global.document;
  const body = document.body;
  const HERE = global.location.origin;

  // ------------------------------------------------------------------ 3-DS result page

  if (body.dataset.page === '3ds-result') {
    // The widget frame that holds us is on this same origin.
    if (global.parent !== global) {
      const d = body.dataset;
      global.parent.postMessage(
        {
          cp: '3ds',
          outcome: d.outcome,
          transactionId: Number(d.transactionId),
          reasonCode: d.reasonCode === '' ? null : Number(d.reasonCode),
          message: d.message,
        },
        HERE,
      );
    }
    return;
  }

  // ------------------------------------------------------------------ texts

  const TEXTS = {
    ru: {
      sandbox: 'Тестовый режим (песочница)',
      cardNumber: 'Номер карты',
      expDateMonthYear: 'Срок действия',
      cvv: 'CVV/CVC',
      email: 'E-mail для чека',
      pay: 'Оплатить',
      processing: 'Обработка…',
      retry: 'Повторить оплату',
      close: 'Закрыть',
      loading: 'Загрузка…',
      successTitle: 'Оплата прошла успешно',
      failTitle: 'Оплата не прошла',
      success: 'Оплата успешно проведена',
      cryptogram: 'Данные карты получены',
      emailRequired: 'Укажите e-mail адрес',
      emailInvalid: 'В e-mail адресе допущены ошибки',
      unknown: 'Нет ответа от платёжного шлюза: результат платежа неизвестен. Не платите повторно, пока магазин его не проверит.',
      standalone: 'Эту страницу открывает платёжный виджет.',
    },
    en: {
      sandbox: 'Test mode (sandbox)',
      cardNumber: 'Card number',
      expDateMonthYear: 'Expiry date',
      cvv: 'CVV/CVC',
      email: 'E-mail for the receipt',
      pay: 'Pay',
      processing: 'Processing…',
      retry: 'Try again',
      close: 'Close',
      loading: 'Loading…',
      successTitle: 'Payment successful',
      failTitle: 'Payment failed',
      success: 'Payment approved',
      cryptogram: 'Card details received',
      emailRequired: 'Enter your e-mail address',
      emailInvalid: 'The e-mail address is not valid',
      unknown: 'No answer from the payment gateway: the payment outcome is unknown. Do not pay again until the shop has checked it.',
      standalone: 'This page is opened by the payment widget.',
    },
  };

  const $ = (id) => document.getElementById(id);
  const query = new URLSearchParams(global.location.search);
  // The server chose the language (lang parameter, else Accept-Language) for <html lang>.
  let lang = document.documentElement.lang === 'en' ? 'en' : 'ru';
  const t = (key) => TEXTS[lang][key];

  function localize() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
    // Buttons whose visible text is a sign (×) are named in words.
    for (const el of document.querySelectorAll('[data-t-label]')) {
      el.setAttribute('aria-label', t(el.dataset.tLabel));
      el.title = t(el.dataset.tLabel);
    }
  }

  function show(id) {
    for (const el of document.querySelectorAll('.screen, #waiting')) el.hidden = el.id !== id;
  }

  // ------------------------------------------------------------------ talking to the shop

  // The shop page's origin, as widget.js declared it in our URL; we answer only there
  // and listen only to our parent window speaking from there.
  let parentOrigin = null;
  try {
    const declared = query.get('origin');
    if (declared && new URL(declared).origin === declared) parentOrigin = declared;
  } catch (_) {
    parentOrigin = null;
  }
  const embedded = global.parent !== global && parentOrigin !== null;
  const tell = (message) => embedded && global.parent.postMessage(message, parentOrigin);

  let intent = null;
  let checkout = null;
  let result = null; // the last WidgetResult
  let busy = false;
  let threeDs = null; // {frame, transactionId} while 3-D Secure runs

  global.addEventListener('message', (event) => {
    const msg = event.data;
    if (!msg || typeof msg !== 'object') return;
    if (event.source === global.parent && event.origin === parentOrigin && msg.cp === 'init' && !intent) {
      begin(msg.intent);
    } else if (threeDs && event.source === threeDs.frame.contentWindow && event.origin === HERE && msg.cp === '3ds') {
      finishThreeDs(msg);
    }
  });

  // ------------------------------------------------------------------ the form

  function formatAmount(amount, currency) {
    const value = typeof amount === 'string' ? Number(amount.replace(',', '.')) : amount;
    try {
      return new Intl.NumberFormat(lang === 'en' ? 'en-US' : 'ru-RU', { style: 'currency', currency }).format(value);
    } catch (_) {
      return `${amount} ${currency}`; // a currency Intl does not know
    }
  }

  // The only payment paths the frame may POST to: the intent names one by key, never
  // by text, so a page cannot steer the frame at another sandbox path (/_sandbox/…).
  const PAY_PATHS = { charge: '/payments/cards/charge', auth: '/payments/cards/auth' };

  function validIntent(x) {
    if (!x || typeof x !== 'object') return false;
    if (x.type !== 'charge' && x.type !== 'auth') return false;
    if (typeof x.publicId !== 'string' || !x.publicId) return false;
    const amount = typeof x.amount === 'string' ? Number(x.amount.replace(',', '.')) : x.amount;
    return typeof amount === 'number' && Number.isFinite(amount) && amount > 0;
  }

  function begin(received) {
    if (!validIntent(received)) {
      // widget.js checks the same before sending; only a foreign embedder gets here.
      const message = 'CloudPayments: invalid payment intent';
      $('waiting').textContent = message;
      tell({ cp: 'complete', result: { type: 'error', status: 'fail', data: {}, message } });
      return;
    }
    intent = received;
    lang = /^en/i.test(intent.culture || '') ? 'en' : 'ru';
    localize();
    $('amount').textContent = formatAmount(intent.amount, intent.currency);
    $('description').textContent = intent.description || '';
    $('pay').textContent = `${t('pay')} ${$('amount').textContent}`;
    $('email-row').hidden = !intent.requireEmail;
    if (intent.email) $('email').value = intent.email;
    checkout = new global.cp.Checkout({ publicId: intent.publicId, container: $('form') });
    show('form');
    $('card-number').focus();
  }

  function clearErrors() {
    for (const el of document.querySelectorAll('[data-error]')) el.textContent = '';
    for (const el of document.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    $('form-error').textContent = '';
  }

  function fieldError(field, text) {
    const slot = document.querySelector(`[data-error="${field}"]`);
    if (slot) slot.textContent = text;
    const input = field === 'email' ? $('email') : document.querySelector(`[data-cp="${field}"]`);
    if (input) input.setAttribute('aria-invalid', 'true');
  }

  function emailProblem() {
    const email = $('email').value.trim();
    if (!intent.requireEmail) return null;
    if (!email) return 'emailRequired';
    return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) ? null : 'emailInvalid';
  }

  $('card-number').addEventListener('input', (event) => {
    const id = global.cp.sandbox.detectBrand(event.target.value);
    const brand = id && global.cp.sandbox.brands().find((b) => b.id === id);
    $('brand').textContent = brand ? brand.name : '';
  });

  $('form').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy || !intent) return;
    clearErrors();
    const problem = emailProblem();
    if (problem) return fieldError('email', t(problem));
    let packet;
    try {
      packet = await checkout.createPaymentCryptogram();
    } catch (errors) {
      if (errors instanceof Error) throw errors;
      for (const field in errors) fieldError(field, global.cp.sandbox.messages[lang][errors[field]]);
      return;
    }
    if (intent.cryptogramMode) return handOver(packet);
    busy = true;
    $('pay').disabled = true;
    $('pay').textContent = t('processing');
    try {
      await charge(packet);
    } finally {
      busy = false;
      $('pay').disabled = false;
      $('pay').textContent = `${t('pay')} ${$('amount').textContent}`;
    }
  });

  // ------------------------------------------------------------------ paying

  const PAYER_FIELDS = ['firstName', 'lastName', 'middleName', 'birth', 'address', 'street', 'city', 'country', 'phone'];

  function payerOf(source) {
    if (!source || typeof source !== 'object') return undefined;
    const payer = {};
    for (const key of PAYER_FIELDS) if (source[key]) payer[key[0].toUpperCase() + key.slice(1)] = source[key];
    const postcode = source.postcode || source.postCode;
    if (postcode) payer.Postcode = postcode;
    return Object.keys(payer).length ? payer : undefined;
  }

  const requestId = () => Array.from(global.crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');

  async function charge(packet) {
    const email = $('email').value.trim() || intent.email;
    const payload = JSON.stringify({
      Amount: intent.amount,
      Currency: intent.currency,
      CardCryptogramPacket: packet,
      InvoiceId: intent.invoiceId,
      Description: intent.description,
      AccountId: intent.accountId,
      Email: email || undefined,
      JsonData: intent.jsonData,
      CultureName: intent.culture,
      IpAddress: body.dataset.ip || undefined,
      PaymentUrl: parentOrigin,
      SaveCard: intent.saveCard === true ? true : undefined,
      Payer: payerOf(intent.payer),
      scenario: 7,
    });
    const url = `${PAY_PATHS[intent.type]}?publicId=${encodeURIComponent(intent.publicId)}`;
    // One X-Request-ID per payment attempt, reused if the request is repeated after a
    // network failure, so the gateway answers a repeat with the first result.
    const headers = { 'Content-Type': 'application/json', 'X-Request-ID': requestId() };
    let envelope = null;
    for (let attempt = 0; attempt < 2 && envelope === null; attempt++) {
      try {
        const response = await fetch(url, { method: 'POST', headers, body: payload, credentials: 'omit' });
        envelope = await response.json();
      } catch (_) {
        envelope = null;
      }
    }
    if (envelope === null) {
      // Sent, maybe processed, no answer: say so instead of guessing.
      return failed({ type: 'error', status: 'fail', data: {}, message: t('unknown') });
    }
    const model = envelope.Model || {};
    if (envelope.Success) return succeeded(model.TransactionId);
    if (model.AcsUrl && model.PaReq) return startThreeDs(model);
    if (model.ReasonCode) {
      return failed({
        type: 'error',
        status: 'fail',
        data: { transactionId: model.TransactionId, ReasonCode: model.ReasonCode },
        message: model.CardHolderMessage || t('failTitle'),
      });
    }
    return failed({ type: 'error', status: 'fail', data: {}, message: envelope.Message || t('failTitle') });
  }

  function succeeded(transactionId) {
    result = { type: 'payment', status: 'success', data: { transactionId, ReasonCode: 0 }, message: t('success') };
    tell({ cp: 'complete', result });
    outcome(t('successTitle'), result.message, false);
    const seconds = Number(intent.autoClose);
    if (seconds > 0) setTimeout(close, Math.min(Math.max(seconds, 3), 10) * 1000);
  }

  // cryptogramMode: the card becomes a cryptogram for the shop's server, which pays
  // with it; the widget closes at once (nothing to show: no payment was made here).
  function handOver(packet) {
    result = { type: 'payment', status: 'success', data: { cryptogram: packet }, message: t('cryptogram') };
    tell({ cp: 'complete', result });
    close();
  }

  function failed(failure) {
    result = failure;
    tell({ cp: 'complete', result });
    outcome(t('failTitle'), failure.message, intent.retryPayment !== false);
  }

  function outcome(title, message, canRetry) {
    $('outcome-title').textContent = title;
    $('outcome-message').textContent = message;
    $('retry').hidden = !canRetry;
    show('outcome');
  }

  function close() {
    tell({ cp: 'close', result });
  }

  $('close').addEventListener('click', close);
  $('done').addEventListener('click', close);

  // ------------------------------------------------------------------ the dialog's keyboard

  // Escape closes the widget as its close button does.
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && embedded) {
      event.preventDefault();
      close();
    }
  });

  // Focus stays in the dialog: a sentinel at either end passes it round to the other.
  const FOCUSABLE = 'button, input, select, textarea, iframe, a[href], [tabindex]:not([tabindex="-1"])';
  function reachable() {
    return Array.from(document.querySelectorAll(FOCUSABLE)).filter(
      (el) => !el.dataset.trap && !el.disabled && el.getClientRects().length > 0,
    );
  }
  for (const sentinel of document.querySelectorAll('[data-trap]')) {
    sentinel.addEventListener('focus', () => {
      const controls = reachable();
      const target = sentinel.dataset.trap === 'end' ? controls[0] : controls[controls.length - 1];
      if (target) target.focus();
    });
  }
  $('retry').addEventListener('click', () => {
    clearErrors();
    show('form');
    $('card-number').focus();
  });

  // ------------------------------------------------------------------ 3-D Secure

  function startThreeDs(model) {
    const id = model.TransactionId;
    const back = `${HERE}/widget/3ds`;
    // The ThreeDSCallback MD as the web widget encodes it: base64(URI-encoded JSON).
    const md = btoa(
      encodeURIComponent(
        JSON.stringify({
          TransactionId: id,
          ThreeDsCallbackId: model.ThreeDsCallbackId,
          SuccessUrl: `${back}/success/${id}`,
          FailUrl: `${back}/fail/${id}`,
        }),
      ),
    );
    const name = `cp-3ds-${id}`;
    const frame = document.createElement('iframe');
    frame.name = name;
    frame.title = '3-D Secure';
    const form = document.createElement('form');
    form.method = 'POST';
    form.action = model.AcsUrl;
    form.target = name;
    const fields = { PaReq: model.PaReq, MD: md, TermUrl: `${HERE}/payments/ThreeDSCallback` };
    for (const key in fields) {
      const input = document.createElement('input');
      input.type = 'hidden';
      input.name = key;
      input.value = fields[key];
      form.appendChild(input);
    }
    $('threeds').replaceChildren(frame, form);
    threeDs = { frame, transactionId: id };
    show('threeds');
    form.submit();
  }

  function finishThreeDs(msg) {
    const id = threeDs.transactionId;
    if (msg.transactionId !== id) return; // a stale page from an earlier attempt
    threeDs = null;
    $('threeds').replaceChildren();
    if (msg.outcome === 'success') return succeeded(id);
    failed({
      type: 'error',
      status: 'fail',
      data: { transactionId: id, ReasonCode: msg.reasonCode },
      message: msg.message || t('failTitle'),
    });
  }

  // ------------------------------------------------------------------ start

  localize();
  if (embedded) {
    tell({ cp: 'ready' });
  } else {
    $('waiting').textContent = t('standalone');
  }
})(window);
