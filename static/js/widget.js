/*
 * checkout_kit sandbox — payment widget (cp.CloudPayments), ES2020, no dependencies.
 *
 * The same JavaScript API as CloudPayments' widget, for offline work against the
 * checkout_kit sandbox; in production pages load the official script instead.
 *
 *   const widget = new cp.CloudPayments({language});
 *   widget.start(intentParams)                       -> Promise<WidgetResult> (current)
 *   widget.pay('charge' | 'auth', options, {onSuccess, onFail, onComplete}) -> Promise
 *   widget.charge(options, onSuccess, onFail) / widget.auth(...)               (older)
 *
 * tokenize: true (legacy: tokenize or saveCard in the options) asks the gateway to
 * save the card (SaveCard): the Pay notification and the API answer carry the token,
 * as the account's "save cards" option allows. cryptogramMode: true (start() only)
 * pays nothing: the promise resolves with
 * {type: 'payment', status: 'success', data: {cryptogram}, message}, and the shop's
 * server charges that cryptogram through the API.
 *
 * This file runs in the shop's page. It opens a modal holding an iframe served by
 * the sandbox (the origin this script came from); the payment form, the cryptogram,
 * the API call and 3-D Secure all happen inside that frame. The two talk only by
 * postMessage, each side checking the other's window and origin.
 *
 * The modal is a dialog (role=dialog, aria-modal): the rest of the page is inert while
 * it is open, focus moves into the frame (which keeps it, widget_frame.js), Escape
 * closes it, and on closing focus goes back to the element that had it when the
 * widget opened (the shop's Pay button).
 */
(function (global) {
  'use strict';

  const cp = (global.cp = global.cp || {});
  const document = global.document;
  // The sandbox origin: wherever this script was served from. Without a current
  // <script src> (eval, a module, an inline copy) that origin is unknown; guessing the
  // page's own origin would open the frame on the wrong site, so refuse to load.
  const SCRIPT = document.currentScript;
  if (!SCRIPT || !SCRIPT.src) {
    throw new Error('CloudPayments: load the widget with <script src="<sandbox>/bundles/cloudpayments.js">; document.currentScript is unavailable, so the sandbox origin is unknown');
  }
  const ORIGIN = new URL(SCRIPT.src, global.location.href).origin;
  const FRAME_PATH = '/widget/frame';

  const CANCEL_MESSAGE = { ru: 'Платёж отменён', en: 'Payment cancelled' };
  const LEGACY_CANCEL_REASON = 'User has cancelled';

  const lang = (culture) => (/^en/i.test(culture || '') ? 'en' : 'ru');
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

  function requirePositiveAmount(amount) {
    const value = typeof amount === 'string' ? Number(amount.replace(',', '.')) : amount;
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
      throw new TypeError('CloudPayments: amount must be a number greater than 0');
    }
  }

  function requireText(value, what) {
    if (typeof value !== 'string' || !value) throw new TypeError(`CloudPayments: ${what} is required`);
  }

  // JsonData with the recurrent instruction the gateway reads (data.CloudPayments.recurrent).
  function withRecurrent(data, recurrent, receipt) {
    if (!recurrent && !receipt) return data;
    const json = isObject(data) ? { ...data } : {};
    const key = Object.keys(json).find((k) => k.toLowerCase() === 'cloudpayments') || 'CloudPayments';
    const block = isObject(json[key]) ? { ...json[key] } : {};
    if (recurrent) {
      const { receipt: recurrentReceipt, ...rest } = recurrent;
      block.recurrent = recurrentReceipt ? { ...rest, customerReceipt: recurrentReceipt } : rest;
    }
    if (receipt) block.customerReceipt = receipt;
    json[key] = block;
    return json;
  }

  /** The frame's payment intent from legacy pay()/charge()/auth() options. */
  function legacyIntent(type, options, language) {
    if (type !== 'charge' && type !== 'auth') throw new TypeError("CloudPayments: type must be 'charge' or 'auth'");
    if (!isObject(options)) throw new TypeError('CloudPayments: options are required');
    requireText(options.publicId, 'publicId');
    requirePositiveAmount(options.amount);
    const common = (options.configuration && options.configuration.common) || {};
    return {
      publicId: options.publicId,
      type,
      amount: options.amount,
      currency: options.currency || 'RUB',
      description: options.description || '',
      invoiceId: options.invoiceId,
      accountId: options.accountId,
      email: options.email,
      requireEmail: !!options.requireEmail,
      jsonData: options.data,
      culture: options.language || language || 'ru-RU',
      skin: options.skin || 'classic',
      autoClose: options.autoClose,
      retryPayment: true,
      saveCard: options.tokenize === true || options.saveCard === true,
      cryptogramMode: false,
      payer: options.payer,
      successRedirectUrl: common.successRedirectUrl || options.successRedirectUrl,
      failRedirectUrl: common.failRedirectUrl || options.failRedirectUrl,
    };
  }

  const SCHEMAS = { Single: 'charge', Dual: 'auth' };

  /** The frame's payment intent from start(intentParams). */
  function modernIntent(p, language) {
    if (!isObject(p)) throw new TypeError('CloudPayments: intentParams are required');
    requireText(p.publicTerminalId, 'publicTerminalId');
    requirePositiveAmount(p.amount);
    requireText(p.currency, 'currency');
    const type = SCHEMAS[p.paymentSchema];
    if (!type) throw new TypeError("CloudPayments: paymentSchema must be 'Single' or 'Dual'");
    const user = isObject(p.userInfo) ? p.userInfo : {};
    if (p.recurrent && !user.accountId) {
      throw new TypeError('CloudPayments: userInfo.accountId is required for a recurrent payment');
    }
    return {
      publicId: p.publicTerminalId,
      type,
      amount: p.amount,
      currency: p.currency,
      description: p.description || '',
      invoiceId: p.externalId,
      accountId: user.accountId,
      email: p.receiptEmail || user.email,
      requireEmail: p.emailBehavior === 'Required',
      jsonData: withRecurrent(p.metadata, p.recurrent, p.receipt),
      culture: p.culture || language || 'ru-RU',
      skin: p.skin || 'classic',
      autoClose: p.autoClose,
      retryPayment: p.retryPayment !== false,
      saveCard: p.tokenize === true,
      cryptogramMode: p.cryptogramMode === true,
      payer: user,
      successRedirectUrl: p.successRedirectUrl,
      failRedirectUrl: p.failRedirectUrl,
    };
  }

  // ------------------------------------------------------------------ the modal

  const OVERLAY_STYLE =
    'position:fixed;inset:0;z-index:2147483647;background:rgba(0,0,0,.55);' +
    'display:flex;align-items:center;justify-content:center';
  const FRAME_STYLE =
    'width:420px;max-width:100vw;height:600px;max-height:100vh;border:0;border-radius:8px;background:#fff';

  class CloudPayments {
    /** Legacy constructor options: {language}; the current API takes culture per start(). */
    constructor(options) {
      this.language = isObject(options) ? options.language : undefined;
      this.oncomplete = null; // current API: called with the final WidgetResult
      this._session = null;
    }

    /** Current API. Resolves with the WidgetResult when the payment ends. */
    start(intentParams) {
      try {
        return this._open(modernIntent(intentParams, this.language), {});
      } catch (error) {
        return Promise.reject(error);
      }
    }

    /** Legacy API; also returns a Promise of the WidgetResult. */
    pay(type, options, callbacks) {
      const intent = legacyIntent(type, options, this.language);
      return this._open(intent, isObject(callbacks) ? callbacks : {}, options);
    }

    charge(options, onSuccess, onFail) {
      return this.pay('charge', options, { onSuccess, onFail });
    }

    auth(options, onSuccess, onFail) {
      return this.pay('auth', options, { onSuccess, onFail });
    }

    /** Close the open widget, if any (the payment, if still running, counts as cancelled). */
    close() {
      if (this._session) this._session.close(null);
    }

    _open(intent, callbacks, legacyOptions = intent) {
      if (this._session) throw new Error('CloudPayments: the widget is already open');
      return new Promise((resolve) => {
        // Focus returns there when the widget closes.
        const opener = document.activeElement !== document.body ? document.activeElement : null;
        const overlay = document.createElement('div');
        overlay.setAttribute('style', OVERLAY_STYLE);
        overlay.setAttribute('data-cp-widget', '');
        overlay.setAttribute('role', 'dialog');
        overlay.setAttribute('aria-modal', 'true');
        overlay.setAttribute('aria-label', 'CloudPayments');
        const frame = document.createElement('iframe');
        const query = new URLSearchParams({ origin: global.location.origin, lang: lang(intent.culture) });
        frame.src = `${ORIGIN}${FRAME_PATH}?${query}`;
        frame.title = 'CloudPayments';
        frame.setAttribute('style', FRAME_STYLE);
        frame.setAttribute('allow', 'payment');
        overlay.appendChild(frame);

        let settled = null; // the WidgetResult once known
        let last = null; // the last result the frame reported (what its close button sends)
        const settle = (result) => {
          if (settled) return;
          settled = result;
          const ok = result.status === 'success';
          try {
            if (ok && callbacks.onSuccess) callbacks.onSuccess(legacyOptions);
            if (!ok && callbacks.onFail) {
              callbacks.onFail(result.type === 'cancel' ? LEGACY_CANCEL_REASON : result.message, legacyOptions);
            }
            if (typeof this.oncomplete === 'function') this.oncomplete(result);
          } finally {
            resolve(result);
          }
        };

        const onMessage = (event) => {
          // Only our frame, from the sandbox origin, may speak.
          if (event.source !== frame.contentWindow || event.origin !== ORIGIN) return;
          const msg = event.data;
          if (!isObject(msg) || typeof msg.cp !== 'string') return;
          if (msg.cp === 'ready') {
            frame.contentWindow.postMessage({ cp: 'init', intent }, ORIGIN);
          } else if (msg.cp === 'complete' && isObject(msg.result)) {
            // Every API outcome, as soon as it is known (legacy onComplete).
            const result = msg.result;
            last = result;
            if (callbacks.onComplete) {
              callbacks.onComplete({ ...result, success: result.status === 'success', code: result.data.ReasonCode }, legacyOptions);
            }
            if (result.status === 'success') settle(result);
          } else if (msg.cp === 'close') {
            session.close(isObject(msg.result) ? msg.result : null);
          }
        };

        // Escape with the focus in the page (on the backdrop); in the frame, the frame's.
        const onKey = (event) => {
          if (event.key === 'Escape') session.close(last);
        };

        // Out of reach while the dialog is open: keyboard, pointer and screen readers.
        const behind = Array.from(document.body.children).filter((el) => !el.inert);

        const session = {
          close: (lastFailure) => {
            global.removeEventListener('message', onMessage);
            document.removeEventListener('keydown', onKey);
            overlay.remove();
            for (const el of behind) el.inert = false;
            if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
            this._session = null;
            settle(
              lastFailure || {
                type: 'cancel',
                status: 'cancel',
                data: {},
                message: CANCEL_MESSAGE[lang(intent.culture)],
              },
            );
            const url = settled.status === 'success' ? intent.successRedirectUrl : intent.failRedirectUrl;
            // In cryptogram mode nothing was paid yet: the page carries on with the result.
            if (url && settled.type !== 'cancel' && !intent.cryptogramMode) global.location.assign(url);
          },
        };
        this._session = session;
        global.addEventListener('message', onMessage);
        document.addEventListener('keydown', onKey);
        for (const el of behind) el.inert = true;
        document.body.appendChild(overlay);
        frame.focus();
      });
    }
  }

  cp.CloudPayments = CloudPayments;
})(window);
