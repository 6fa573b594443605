/*
 * checkout_kit's card-brand detection: the one routine of the browser side.
 *
 * The shop's card form loads this file before checkout_kit.js; the sandbox splices
 * it into its checkout.js at serve time (checkout_kit/sandbox/web/browser.py). Both
 * hand it Python's data: cards.brand_table() and cards.prefix_table(), the very
 * index cards.detect_brand looks up. So no brand, prefix or tie rule is written in
 * JavaScript, and a brand added to cards.BRANDS is detected here as it is there.
 */

/**
 * A detector over `brands` (cards.brand_table()) and `prefixes`
 * (cards.prefix_table(): [[width, [[lo, hi, brandId], ...]], ...], longest first).
 * The detector takes a number as typed, separators already dropped, and returns the
 * brand's row, or null while no brand is certain.
 */
function checkoutKitBrandDetector(brands, prefixes) {
  'use strict';
  const byId = new Map(brands.map((brand) => [brand.id, brand]));
  return function detectBrand(number) {
    // Python's index holds ASCII digits only, so only the leading run of them can
    // match there (a "4x…" is Visa, a "٤…" nothing): read exactly that run here.
    const lead = /^[0-9]*/.exec(number)[0];
    for (const [width, ranges] of prefixes) {
      if (lead.length < width) continue;
      const prefix = +lead.slice(0, width);
      for (const [lo, hi, id] of ranges) {
        if (lo <= prefix && prefix <= hi) return byId.get(id) || null;
      }
    }
    return null;
  };
}
