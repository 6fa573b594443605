/*
 * checkout_kit sandbox — checkout script (cp.Checkout), ES2020, no dependencies.
 *
 * The same JavaScript API as CloudPayments' checkout.js, for offline work against the
 * checkout_kit sandbox. In production pages load the official script instead.
 *
 *   new cp.Checkout({publicId, container}).createPaymentCryptogram(cardData?)
 *       -> Promise<string>, rejected with {field: code} on invalid card data
 *   new cp.Checkout(publicId, container?, mode?).createCryptogramPacket(cardData?)
 *       -> {success, packet, messages}   (legacy; messages are localized text)
 *
 * The sandbox injects, at serve time, the brand table of checkout_kit.cards (with its
 * prefix index, cards.prefix_table) and its own public key (PEM + version) in place of
 * the CONFIG marker below, and the brand-detection routine it shares with
 * checkout_kit's card form (static/checkout_kit/brands.js) in place of the brands
 * marker, so validation here and in Python read the same data. Validation mirrors
 * checkout_kit.cards rule for rule (Python's notion of whitespace and digits
 * included); the shared vector file tests/vectors/validation.json is run through both.
 *
 * The cryptogram is format "01": "01" + first6 + last4 + YYMM + keyVersion(2) +
 * base64(RSA-PKCS#1-v1.5(PAN@YYMM@CVV@PublicId)). WebCrypto cannot do PKCS#1 v1.5
 * encryption, so it is done here with BigInt: one modular exponentiation.
 */
(function (global) {
  'use strict';

  const cp = (global.cp = global.cp || {});
  // Replaced by the sandbox with
  // {"brands": [...], "prefixes": [...], "rules": {...}, "key": {"pem": "...", "version": n}}.
  const CONFIG = /*@config*/ null;

  // ------------------------------------------------------------------ brand table

  // The validation constants of checkout_kit.cards (browser.checkout_rules), served
  // as data so that the script cannot drift from Python: unknownLengths,
  // unknownCvvSizes, maxYearsAhead, minExpiryYear, nameMin, nameMax, and the two rule
  // sets cards.MODERN (createPaymentCryptogram) and cards.LEGACY (createCryptogramPacket).
  const rules = () => config().rules;

  // checkout_kit's one brand-detection routine (static/checkout_kit/brands.js, the
  // card form's too), spliced in by the sandbox at serve time in place of the marker
  // below; it defines checkoutKitBrandDetector, local to this script.
  /*@brands*/

  let detector = null;
  /** The brand of an all-digit (possibly partial) number, or null. */
  function detectBrand(digits) {
    if (!detector) {
      const { brands, prefixes } = config();
      detector = checkoutKitBrandDetector(brands, prefixes);
    }
    return detector(digits);
  }

  // ------------------------------------------------------------------ validation

  // Python's str.strip() whitespace, which differs from String.prototype.trim()
  // (\x1c-\x1f and \x85 are whitespace to Python, \ufeff is not).
  const PY_WS = '[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
  const PY_STRIP = new RegExp(`^${PY_WS}+|${PY_WS}+$`, 'g');
  const pyStrip = (s) => s.replace(PY_STRIP, '');
  const DIGITS = /^[0-9]+$/;
  const pad2 = (n) => String(n).padStart(2, '0');

  function luhn(digits) {
    let sum = 0;
    for (let i = digits.length - 1, dbl = false; i >= 0; i--, dbl = !dbl) {
      let v = digits.charCodeAt(i) - 48;
      if (dbl && (v *= 2) > 9) v -= 9;
      sum += v;
    }
    return sum > 0 && sum % 10 === 0; // an all-zero number is invalid
  }

  const monthOf = (v) => (v.length <= 2 && DIGITS.test(v) ? +v : 0);
  // cards._year: YY or YYYY.
  function yearOf(v) {
    if (!DIGITS.test(v)) return null;
    if (v.length <= 2) return 2000 + +v;
    return v.length === 4 ? +v : null;
  }
  // cards._year_modulo_100 (legacy rules): any integer, carried modulo 100.
  const yearModulo100 = (v) => (DIGITS.test(v) ? 2000 + +v.slice(-2) : null);

  // cards._expiry_from_parts: [year, month] or the errors.
  function fromParts(month, year, yearFn = yearOf) {
    const m = monthOf(pyStrip(month));
    const y = yearFn(pyStrip(year));
    const monthOk = m >= 1 && m <= 12;
    if (monthOk && y !== null) return y < rules().minExpiryYear ? { expDateYear: 'ExpDateYear_Invalid' } : [y, m];
    const errors = {};
    if (!monthOk) errors.expDateMonth = 'ExpDateMonth_Invalid';
    if (y === null) errors.expDateYear = 'ExpDateYear_Invalid';
    return errors;
  }

  // Digits left -> digits of the month (checkout.js expDateMonthYear rule).
  const MONTH_DIGITS = { 2: 1, 3: 1, 4: 2, 5: 1, 6: 2 };

  // cards.parse_expiry. Python keeps non-ASCII decimal digits here and then rejects
  // them, so any such digit makes the value invalid.
  function parseCombined(value) {
    let digits = value.replace(/[/ ]/g, '');
    if (!DIGITS.test(digits)) digits = value.replace(/\P{Nd}/gu, '');
    const split = MONTH_DIGITS[digits.length];
    if (split && DIGITS.test(digits)) {
      const parsed = fromParts(digits.slice(0, split), digits.slice(split));
      if (Array.isArray(parsed)) return parsed;
    }
    return { expDateMonthYear: 'ExpDateMonthYear_Invalid' };
  }

  // cards._parse_expiry_fields
  function expiryFields(d, ruleset) {
    if (d.expDateMonthYear !== undefined) {
      if (!pyStrip(d.expDateMonthYear)) return { expDateMonthYear: 'ExpDateMonthYear_Empty' };
      return parseCombined(d.expDateMonthYear);
    }
    const month = pyStrip(d.expDateMonth ?? '');
    const year = pyStrip(d.expDateYear ?? '');
    if (month && year) return fromParts(month, year, ruleset.anyYear ? yearModulo100 : yearOf);
    const errors = {};
    if (!month) errors.expDateMonth = 'ExpDateMonth_Empty';
    if (!year) errors.expDateYear = 'ExpDateYear_Empty';
    return errors;
  }

  // cards._expiry_window_errors: past, or more than maxYearsAhead years ahead (UTC calendar).
  function windowErrors([y, m], now, combined) {
    const card = y * 12 + m;
    const nowY = now.getUTCFullYear();
    const today = nowY * 12 + now.getUTCMonth() + 1;
    if (today <= card && card <= today + 12 * rules().maxYearsAhead) return {};
    if (combined) return { expDateMonthYear: 'ExpDateMonthYear_Invalid' };
    if (y === nowY && card < today) return { expDateMonth: 'ExpDateMonth_Invalid' };
    return { expDateYear: 'ExpDateYear_Invalid' };
  }

  // cards._cvv_error
  function cvvError(cvv, brand, digits, ruleset) {
    if (ruleset.cvvWaivers && brand && !brand.cvv.required) {
      return cvv === '' || (DIGITS.test(cvv) && cvv.length <= 4) ? null : 'Cvv_Invalid';
    }
    if (cvv === '') return 'Cvv_Empty';
    const patterns = ruleset.cvvPatterns;
    if (patterns) {
      const ok = patterns.prefixes.some((p) => digits.startsWith(p))
        ? new RegExp(`^(?:${patterns.matching})$`).test(cvv)
        : new RegExp(patterns.other).test(cvv);
      return ok ? null : 'Cvv_Invalid';
    }
    const sizes = brand ? brand.cvv.sizes : rules().unknownCvvSizes;
    return DIGITS.test(cvv) && sizes.includes(cvv.length) ? null : 'Cvv_Invalid';
  }

  // cards._name_error (nameMin-nameMax characters not counting spaces)
  function nameError(name, ruleset) {
    const text = pyStrip(name);
    if (!text) return 'Name_Empty';
    if (!new RegExp(`^${ruleset.nameCharacterClass}+$`).test(text)) return 'Name_Invalid';
    const length = text.replace(/ /g, '').length;
    if (length < rules().nameMin) return 'Name_TooShort';
    return length > rules().nameMax ? 'Name_TooLong' : null;
  }

  /**
   * cards.validate_card with require_cvv=True. `d` maps checkout.js field names to
   * strings (absent = not given); `now` is a Date; `ruleset` is rules().modern or
   * rules().legacy. Returns {errors, brand, expiry, digits}.
   */
  function validate(d, now = new Date(), ruleset = rules().modern) {
    const errors = {};
    const separators = new Set(ruleset.numberSeparators);
    const digits = Array.from(d.cardNumber ?? '').filter((c) => !separators.has(c)).join('');
    let brand = null;
    if (!digits) errors.cardNumber = 'CardNumber_Empty';
    else if (!DIGITS.test(digits)) errors.cardNumber = 'CardNumber_Invalid';
    else {
      brand = detectBrand(digits);
      const lengths = brand ? brand.lengths : rules().unknownLengths;
      const lengthOk = !ruleset.numberLengths || lengths.includes(digits.length);
      if (!lengthOk || !luhn(digits)) errors.cardNumber = 'CardNumber_Invalid';
    }
    let expiry = expiryFields(d, ruleset);
    if (!Array.isArray(expiry)) {
      Object.assign(errors, expiry);
      expiry = null;
    } else if (ruleset.expiryWindow) {
      Object.assign(errors, windowErrors(expiry, now, d.expDateMonthYear !== undefined));
    }
    const cvv = cvvError(pyStrip(d.cvv ?? ''), brand, digits, ruleset);
    if (cvv) errors.cvv = cvv;
    if (d.name !== undefined) {
      const name = nameError(d.name, ruleset);
      if (name) errors.name = name;
    }
    return { errors, brand, expiry, digits };
  }

  // ------------------------------------------------------------------ RSA

  function b64decode(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function b64encode(bytes) {
    let bin = '';
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin); // standard alphabet, '=' padding, no line breaks
  }

  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  const toBigInt = (bytes) => BigInt('0x' + (hex(bytes) || '0'));

  // One DER element of the expected tag at `at`: [contentStart, contentEnd].
  function der(bytes, at, tag) {
    if (bytes[at] !== tag) throw new Error('checkout: malformed public key');
    let len = bytes[at + 1];
    let p = at + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 3) throw new Error('checkout: malformed public key');
      for (len = 0; p < at + 2 + n; p++) len = len * 256 + bytes[p];
    }
    if (p + len > bytes.length) throw new Error('checkout: malformed public key');
    return [p, p + len];
  }

  const RSA_OID = '2a864886f70d010101'; // 1.2.840.113549.1.1.1 rsaEncryption

  /** n, e and the modulus size k (bytes) from a SubjectPublicKeyInfo PEM. */
  function parsePublicKey(pem) {
    const bytes = b64decode(pem.replace(/-----[^-]+-----|\s+/g, ''));
    const [spki] = der(bytes, 0, 0x30);
    const [alg, algEnd] = der(bytes, spki, 0x30);
    const [oid, oidEnd] = der(bytes, alg, 0x06);
    if (hex(bytes.subarray(oid, oidEnd)) !== RSA_OID) throw new Error('checkout: not an RSA key');
    const [bits] = der(bytes, algEnd, 0x03);
    if (bytes[bits] !== 0) throw new Error('checkout: malformed public key');
    const [seq] = der(bytes, bits + 1, 0x30);
    const [ns, ne] = der(bytes, seq, 0x02);
    const [es, ee] = der(bytes, ne, 0x02);
    const n = toBigInt(bytes.subarray(ns, ne));
    const k = Math.ceil(n.toString(16).length / 2);
    return { n, e: toBigInt(bytes.subarray(es, ee)), k };
  }

  function modPow(base, exp, mod) {
    let result = 1n;
    base %= mod;
    for (; exp > 0n; exp >>= 1n) {
      if (exp & 1n) result = (result * base) % mod;
      base = (base * base) % mod;
    }
    return result;
  }

  const random = (n) => global.crypto.getRandomValues(new Uint8Array(n));

  /** RSAES-PKCS1-v1_5 (RFC 8017 §7.2.1): 00 02 PS 00 M, PS >= 8 non-zero random bytes. */
  function rsaEncrypt(key, message) {
    const { n, e, k } = key;
    if (message.length > k - 11) throw new Error('checkout: message too long for the key');
    const em = new Uint8Array(k);
    em[1] = 2;
    const ps = em.subarray(2, k - message.length - 1);
    ps.set(random(ps.length));
    for (let i = 0; i < ps.length; i++) {
      while (ps[i] === 0) ps[i] = random(1)[0]; // redraw zeros: stays uniform over 1..255
    }
    em.set(message, k - message.length); // em[k - len - 1] stays the 0x00 separator
    const c = modPow(toBigInt(em), e, n).toString(16).padStart(2 * k, '0');
    const out = new Uint8Array(k); // always full length: leading zero bytes kept
    for (let i = 0; i < k; i++) out[i] = parseInt(c.slice(2 * i, 2 * i + 2), 16);
    return b64encode(out);
  }

  // ------------------------------------------------------------------ packets

  function config() {
    if (!CONFIG) throw new Error('checkout: this script must be served by the checkout_kit sandbox');
    return CONFIG;
  }

  let parsedKey = null;
  function publicKey() {
    if (!parsedKey) {
      const { pem, version } = config().key;
      if (!(Number.isInteger(version) && version >= 0 && version <= 99)) {
        throw new Error('checkout: key version must be 0-99');
      }
      parsedKey = { ...parsePublicKey(pem), version };
    }
    return parsedKey;
  }

  const utf8 = (text) => new TextEncoder().encode(text);

  /** Format "01" card packet; `v` is a successful validate() result. */
  function cardPacket(v, cvv, publicId) {
    const key = publicKey();
    const yymm = pad2(v.expiry[0] % 100) + pad2(v.expiry[1]);
    const pan = v.digits;
    const sealed = rsaEncrypt(key, utf8(`${pan}@${yymm}@${cvv}@${publicId}`));
    return '01' + pan.slice(0, 6) + pan.slice(-4) + yymm + pad2(key.version) + sealed;
  }

  /** Format "03" CVV-only packet (legacy mode "cvv"). */
  function cvvPacket(cvv) {
    const key = publicKey();
    return '03' + pad2(key.version) + rsaEncrypt(key, utf8(cvv));
  }

  // ------------------------------------------------------------------ the form

  const CARD_FIELDS = ['cardNumber', 'expDateMonth', 'expDateYear', 'expDateMonthYear', 'cvv'];
  const FIELDS = [...CARD_FIELDS, 'name'];

  /** {field: element} for the data-cp elements in `container`; throws on misuse. */
  function boundFields(container) {
    const map = {};
    if (!container) return map;
    for (const el of container.querySelectorAll('input[data-cp], textarea[data-cp], select[data-cp]')) {
      const field = el.getAttribute('data-cp');
      if (!FIELDS.includes(field)) continue;
      // Every card field is checked (the legacy script skipped cvv); the cardholder
      // name is not card data and may keep its name attribute.
      if (CARD_FIELDS.includes(field) && el.hasAttribute('name')) {
        throw new Error(`Private card data elements must not contain attribute 'name' (data-cp="${field}")`);
      }
      if (map[field]) throw new Error(`checkout: more than one element has data-cp="${field}"`);
      map[field] = el;
    }
    return map;
  }

  function collect(container, cardData) {
    const elements = boundFields(container);
    const data = {};
    for (const field in elements) data[field] = elements[field].value;
    if (cardData != null) {
      if (typeof cardData !== 'object') throw new TypeError('checkout: cardData must be an object');
      for (const field of FIELDS) {
        if (cardData[field] == null) continue;
        if (field in elements) throw new Error(`checkout: ${field} is given both in the form and in cardData`);
        data[field] = String(cardData[field]);
      }
    }
    return { data, elements };
  }

  function clearCardFields(elements) {
    for (const field of CARD_FIELDS) if (elements[field]) elements[field].value = '';
  }

  // Legacy messages, by code; the language follows <html lang> (ru unless "en…").
  const MESSAGES = {
    ru: {
      CardNumber_Empty: 'Введите номер карты',
      CardNumber_Invalid: 'В номере карты допущены ошибки',
      ExpDateMonth_Empty: 'Укажите месяц',
      ExpDateMonth_Invalid: 'Некорректное значение месяца',
      ExpDateYear_Empty: 'Укажите год',
      ExpDateYear_Invalid: 'Некорректное значение года',
      ExpDateMonthYear_Empty: 'Укажите год/месяц',
      ExpDateMonthYear_Invalid: 'Некорректное значение года/месяца',
      Cvv_Empty: 'Введите CVC код',
      Cvv_Invalid: 'Неверный CVV код',
      Name_Empty: 'Введите имя',
      Name_Invalid: 'В имени допущены ошибки',
      Name_TooLong: 'Слишком много символов',
      Name_TooShort: 'Слишком мало символов',
    },
    en: {
      CardNumber_Empty: 'Enter the card number',
      CardNumber_Invalid: 'The card number is not valid',
      ExpDateMonth_Empty: 'Enter the month',
      ExpDateMonth_Invalid: 'The month is not valid',
      ExpDateYear_Empty: 'Enter the year',
      ExpDateYear_Invalid: 'The year is not valid',
      ExpDateMonthYear_Empty: 'Enter the month/year',
      ExpDateMonthYear_Invalid: 'The month/year is not valid',
      Cvv_Empty: 'Enter the CVC code',
      Cvv_Invalid: 'The CVV code is not valid',
      Name_Empty: 'Enter the name',
      Name_Invalid: 'The name is not valid',
      Name_TooLong: 'Too many characters',
      Name_TooShort: 'Too few characters',
    },
  };

  function messagesFor(errors) {
    const lang = /^en/i.test(global.document?.documentElement?.lang || '') ? 'en' : 'ru';
    const out = {};
    for (const field in errors) out[field] = MESSAGES[lang][errors[field]];
    return out;
  }

  // ------------------------------------------------------------------ cp.Checkout

  class Checkout {
    /**
     * new Checkout({publicId, container}) (current) or
     * new Checkout(publicId, container = document.body, mode = 'default' | 'cvv') (legacy).
     */
    constructor(publicIdOrOptions, container, mode) {
      let publicId = publicIdOrOptions;
      if (publicIdOrOptions && typeof publicIdOrOptions === 'object') {
        ({ publicId, container } = publicIdOrOptions);
        mode = 'default';
      } else if (container === undefined) {
        container = global.document?.body;
      }
      if (typeof publicId !== 'string' || !publicId) throw new TypeError('checkout: publicId is required');
      if (container != null && !(container instanceof global.HTMLElement)) {
        throw new TypeError('checkout: container must be an HTMLElement');
      }
      if (mode !== undefined && mode !== 'default' && mode !== 'cvv') throw new TypeError('checkout: unknown mode');
      this.publicId = publicId;
      this.container = container || null;
      this.mode = mode || 'default';
      boundFields(this.container); // refuse named card inputs from the start
    }

    // {packet} or {errors} under `ruleset`; throws on misuse (named inputs, a field
    // given twice).
    _build(cardData, ruleset) {
      const { data, elements } = collect(this.container, cardData);
      let packet;
      if (this.mode === 'cvv') {
        const cvv = pyStrip(data.cvv ?? '');
        const error = cvvError(cvv, null, '', ruleset);
        if (error) return { errors: { cvv: error } };
        packet = cvvPacket(cvv);
      } else {
        const v = validate(data, new Date(), ruleset);
        if (Object.keys(v.errors).length) return { errors: v.errors };
        packet = cardPacket(v, pyStrip(data.cvv ?? ''), this.publicId);
      }
      clearCardFields(elements);
      return { packet };
    }

    /** Promise of the cryptogram; rejects with {field: code}. Misuse throws at once. */
    createPaymentCryptogram(cardData) {
      const result = this._build(cardData, rules().modern);
      return result.packet ? Promise.resolve(result.packet) : Promise.reject(result.errors);
    }

    /**
     * Legacy: {success, packet, messages} with localized messages keyed by field,
     * under the legacy script's rules (cards.LEGACY), as a page written for it expects.
     */
    createCryptogramPacket(cardData) {
      const result = this._build(cardData, rules().legacy);
      if (result.packet) return { success: true, packet: result.packet, messages: null };
      return { success: false, packet: null, messages: messagesFor(result.errors) };
    }
  }

  cp.Checkout = Checkout;

  // Not part of the CloudPayments API: hooks the sandbox's own pages and the
  // checkout_kit test-suite use (validation with a fixed clock, brand detection).
  cp.sandbox = Object.assign(cp.sandbox || {}, {
    validate(data, now, ruleset = 'modern') {
      const v = validate(data, now ? new Date(now) : new Date(), rules()[ruleset]);
      return { errors: v.errors, brand: v.brand ? v.brand.id : null, expiry: v.expiry };
    },
    detectBrand: (number) => {
      const brand = detectBrand(String(number).replace(/[ -]/g, ''));
      return brand ? brand.id : null;
    },
    brands: () => config().brands,
    messages: MESSAGES,
  });
})(typeof window !== 'undefined' ? window : globalThis);
