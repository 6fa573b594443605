/*
 * checkout_kit's page script: the card form, the 3-D Secure hand-off, the widget
 * opener and the framed 3-D Secure exit. One file, loaded with the page's CSP nonce;
 * it reads its data from <script type="application/json" id="checkout-kit-data">.
 *
 * Card data stays in this page: the card inputs have no name attribute, the checkout
 * script turns them into a cryptogram, and only the cryptogram, the cardholder name
 * and the e-mail are posted.
 */
(function () {
  'use strict';

  const dataElement = document.getElementById('checkout-kit-data');
  const DATA = dataElement ? JSON.parse(dataElement.textContent) : {};
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ card numbers

  function luhn(digits) {
    let sum = 0;
    for (let i = 0; i < digits.length; i++) {
      let d = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  /** "4242424242424242" with gaps [4, 8, 12] -> "4242 4242 4242 4242". */
  function spaced(digits, gaps) {
    let out = '';
    for (let i = 0; i < digits.length; i++) {
      if (i && gaps.includes(i)) out += ' ';
      out += digits[i];
    }
    return out;
  }

  // ------------------------------------------------------------------ the card form

  function cardForm() {
    const form = $('ck-form');
    const number = $('ck-number');
    const exp = $('ck-exp');
    const cvv = $('ck-cvv');
    const cvvLabel = $('ck-cvv-label');
    const brandBadge = $('ck-brand');
    const pay = $('ck-pay');
    const payLabel = $('ck-pay-label');
    const status = $('ck-status');
    // The one detection routine (brands.js, loaded before this script).
    // A shop's own form template may leave brands.js out: the form still pays, with no
    // brand badge, rather than stopping at a ReferenceError.
    const detect = typeof checkoutKitBrandDetector === "function"
        ? checkoutKitBrandDetector(DATA.brands, DATA.prefixes) : function () { return null; };
    const touched = new Set();
    let brand = null;

    // [year, month] of a typed MM/YY (or MM/YYYY) with a real month, else null.
    function typedExpiry() {
      const digits = exp.value.replace(/\D/g, '');
      if (digits.length !== 4 && digits.length !== 6) return null;
      const month = +digits.slice(0, 2);
      const year = +digits.slice(2) + (digits.length === 4 ? 2000 : 0);
      return month >= 1 && month <= 12 ? [year, month] : null;
    }

    function isPast([year, month]) {
      const now = new Date();
      return year * 12 + month < now.getFullYear() * 12 + now.getMonth() + 1;
    }

    // checkout.js has one code for a malformed date and a past one (docs/gateway.md
    // §2.7); a well-formed past date is told as expired, whoever found it.
    function textFor(field, code) {
      if (!code) return '';
      if (field === 'expDateMonthYear' && code === 'ExpDateMonthYear_Invalid') {
        const typed = typedExpiry();
        if (typed && isPast(typed)) return DATA.expired;
      }
      return DATA.messages[code] || code;
    }

    function show(field, code) {
      const slot = form.querySelector(`[data-error-for="${field}"]`);
      const input = form.querySelector(`[data-cp="${field}"]`) || (field === 'name' ? $('ck-name') : null);
      const text = textFor(field, code);
      if (slot) { slot.textContent = text; slot.dataset.code = code || ''; }
      if (input) input.setAttribute('aria-invalid', code ? 'true' : 'false');
    }

    function numberCode() {
      const digits = number.value.replace(/\D/g, '');
      if (!digits) return 'CardNumber_Empty';
      const lengths = brand ? brand.lengths : [12, 13, 14, 15, 16, 17, 18, 19];
      return lengths.includes(digits.length) && luhn(digits) ? null : 'CardNumber_Invalid';
    }

    function expCode() {
      if (!exp.value.replace(/\D/g, '')) return 'ExpDateMonthYear_Empty';
      const typed = typedExpiry();
      return typed && !isPast(typed) ? null : 'ExpDateMonthYear_Invalid';
    }

    function cvvCode() {
      const digits = cvv.value;
      const rule = brand ? brand.cvv : { sizes: [3, 4], required: true };
      if (!digits) return rule.required ? 'Cvv_Empty' : null;
      return /^[0-9]+$/.test(digits) && rule.sizes.includes(digits.length) ? null : 'Cvv_Invalid';
    }

    const checks = { cardNumber: numberCode, expDateMonthYear: expCode, cvv: cvvCode };

    function check(field) {
      const code = checks[field]();
      show(field, code);
      return code;
    }

    function onNumber() {
      const caretDigits = number.value.slice(0, number.selectionStart || 0).replace(/\D/g, '').length;
      let digits = number.value.replace(/\D/g, '');
      brand = detect(digits);
      const longest = brand ? Math.max(...brand.lengths) : 19;
      digits = digits.slice(0, longest);
      const gaps = brand ? brand.gaps : [4, 8, 12, 16];
      number.value = spaced(digits, gaps);
      // Keep the caret after the same digit once spaces move.
      let pos = 0;
      for (let seen = 0; pos < number.value.length && seen < caretDigits; pos++) {
        if (/\d/.test(number.value[pos])) seen++;
      }
      number.setSelectionRange(pos, pos);
      brandBadge.textContent = brand ? brand.name : '';
      brandBadge.dataset.brand = brand ? brand.id : '';
      number.dataset.brand = brand ? brand.id : '';
      cvvLabel.textContent = brand ? brand.cvv.name : DATA.cvvLabel;
      cvv.maxLength = brand ? Math.max(...brand.cvv.sizes) : 4;
      if (cvv.value.length > cvv.maxLength) cvv.value = cvv.value.slice(0, cvv.maxLength);
      if (touched.has('cardNumber')) check('cardNumber');
      if (touched.has('cvv')) check('cvv');
    }

    function onExp(event) {
      let digits = exp.value.replace(/\D/g, '').slice(0, 4);
      if (digits.length === 1 && digits > '1') digits = '0' + digits;  // "5" -> "05/"
      const deleting = event && event.inputType && event.inputType.startsWith('delete');
      exp.value = digits.length > 2 || (digits.length === 2 && !deleting)
        ? digits.slice(0, 2) + '/' + digits.slice(2) : digits;
      if (touched.has('expDateMonthYear')) check('expDateMonthYear');
    }

    function onCvv() {
      cvv.value = cvv.value.replace(/\D/g, '').slice(0, cvv.maxLength);
      if (touched.has('cvv')) check('cvv');
    }

    number.addEventListener('input', onNumber);
    exp.addEventListener('input', onExp);
    cvv.addEventListener('input', onCvv);
    for (const [input, field] of [[number, 'cardNumber'], [exp, 'expDateMonthYear'], [cvv, 'cvv']]) {
      input.addEventListener('blur', () => { if (input.value) { touched.add(field); check(field); } });
    }

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      let first = null;
      for (const field of Object.keys(checks)) {
        touched.add(field);
        if (check(field) && !first) first = form.querySelector(`[data-cp="${field}"]`);
      }
      if (first) { first.focus(); return; }
      const label = payLabel.textContent;
      const shown = masked();
      busy(true, DATA.busy);
      new cp.Checkout({ publicId: DATA.publicId, container: form })
        .createPaymentCryptogram()
        .then((cryptogram) => {
          // The checkout script empties the card inputs once it has the cryptogram;
          // the form keeps showing what was typed, masked (no card number stays in
          // the page), while the charge runs.
          number.value = shown.number;
          exp.value = shown.exp;
          cvv.value = shown.cvv;
          $('ck-cryptogram').value = cryptogram;
          form.submit();
        })
        .catch((errors) => {
          busy(false, label);
          const fields = errors && typeof errors === 'object' ? errors : {};
          for (const [field, code] of Object.entries(fields)) show(field, code);
        });
    });

    /** The card inputs as the waiting form shows them: "•••• •••• •••• 3055". */
    function masked() {
      const digits = number.value.replace(/\D/g, '');
      const hidden = '•'.repeat(Math.max(digits.length - 4, 0)) + digits.slice(-4);
      return {
        number: spaced(hidden, brand ? brand.gaps : [4, 8, 12, 16]),
        exp: exp.value,
        cvv: '•'.repeat(cvv.value.length),
      };
    }

    // Waiting: Pay disabled with a spinner, the form read-only and aria-busy, the
    // status line saying so. Read-only, not disabled: name and e-mail must be posted.
    function busy(on, label) {
      pay.disabled = on;
      payLabel.textContent = label;
      status.textContent = on ? DATA.busy : '';
      if (on) form.setAttribute('aria-busy', 'true');
      else form.removeAttribute('aria-busy');
      for (const input of form.querySelectorAll('input:not([type=hidden])')) input.readOnly = on;
    }
  }

  // ------------------------------------------------------------------ other pages

  function threeDS() {
    // Posts PaReq, MD and TermUrl to the bank (into the frame when there is one).
    $('ck-acs').submit();
  }

  function widget() {
    const open = () => {
      new cp.CloudPayments({ language: DATA.language }).start(DATA.intent).then((result) => {
        // The widget's word is not trusted: the result page asks the ledger, which
        // asks the gateway.
        if (result && result.type !== 'cancel') window.location.assign(DATA.resultUrl);
      });
    };
    $('ck-open').addEventListener('click', open);
    open();
  }

  function breakout() {
    if (window.top !== window.self) window.top.location.href = DATA.url;
    else window.location.replace(DATA.url);
  }

  const pages = { form: cardForm, threeds: threeDS, widget, breakout };
  const start = pages[document.body.dataset.page];
  if (start) start();
})();
