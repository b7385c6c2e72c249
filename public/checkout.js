// paymail checkout: progressive enhancement only. The form works without this file (the server
// checks everything); with it, the card number is grouped as it is typed and the detected brand is
// shown (and announced politely to screen readers). Served from /assets/ so the CSP ('self', no
// inline script) allows it. Nothing typed leaves the page except by the form's own POST; the one
// other request is the "viewed" beacon below, which carries only the form's CSRF token.
(function () {
  'use strict';

  // Leading digits → brand, most specific first (the server's card-validator has the final word).
  var BRANDS = [
    { name: 'American Express', re: /^3[47]/, groups: [4, 6, 5], max: 15 },
    { name: 'Diners Club', re: /^3(0[0-5]|09|[689])/, groups: [4, 6, 4], max: 14 },
    { name: 'JCB', re: /^35(2[89]|[3-8])/, groups: [4, 4, 4, 4, 3], max: 19 },
    { name: 'Mir', re: /^220[0-4]/, groups: [4, 4, 4, 4, 3], max: 19 },
    { name: 'Mastercard', re: /^(5[1-5]|222[1-9]|22[3-9]|2[3-6]|27[01]|2720)/, groups: [4, 4, 4, 4], max: 16 },
    { name: 'Discover', re: /^(6011|64[4-9]|65)/, groups: [4, 4, 4, 4, 3], max: 19 },
    { name: 'UnionPay', re: /^62/, groups: [4, 4, 4, 4, 3], max: 19 },
    { name: 'Maestro', re: /^(50|5[6-9]|6[0-9])/, groups: [4, 4, 4, 4, 3], max: 19 },
    { name: 'Visa', re: /^4/, groups: [4, 4, 4, 4, 3], max: 19 },
  ];
  var DEFAULT = { name: '', groups: [4, 4, 4, 4, 3], max: 19 };

  function detect(digits) {
    for (var i = 0; i < BRANDS.length; i++) if (BRANDS[i].re.test(digits)) return BRANDS[i];
    return DEFAULT;
  }

  function group(digits, groups) {
    var out = [];
    var at = 0;
    for (var i = 0; i < groups.length && at < digits.length; i++) {
      out.push(digits.slice(at, at + groups[i]));
      at += groups[i];
    }
    return out.join(' ');
  }

  function enhance(form) {
    var input = form.querySelector('input[name="number"]');
    var shown = form.querySelector('#number-brand');
    if (!input) return;
    var label = (shown && shown.getAttribute('data-label')) || '{brand}';
    // The formatted number needs room for the spaces.
    input.setAttribute('maxlength', '23');

    function update() {
      var value = input.value;
      var caret = input.selectionStart === null ? value.length : input.selectionStart;
      var digitsBeforeCaret = value.slice(0, caret).replace(/\D/g, '').length;
      var brand = detect(value.replace(/\D/g, ''));
      var digits = value.replace(/\D/g, '').slice(0, brand.max);
      var formatted = group(digits, brand.groups);
      if (formatted !== value) {
        input.value = formatted;
        // Put the caret back after the same number of digits.
        var pos = 0;
        var seen = 0;
        while (pos < formatted.length && seen < digitsBeforeCaret) {
          if (/\d/.test(formatted.charAt(pos))) seen++;
          pos++;
        }
        if (document.activeElement === input) input.setSelectionRange(pos, pos);
      }
      if (shown) {
        var text = brand.name && digits.length >= 1 ? label.replace('{brand}', brand.name) : '';
        if (shown.textContent !== text) shown.textContent = text;
      }
      input.setAttribute('data-brand', brand.name);
    }

    input.addEventListener('input', update);
    if (input.value) update();
  }

  // Tells the server, once, that a person uses the form: on the first focus, input, pointerdown or
  // keydown in it, never on load (mail scanners load pages; they do not type). Same origin, with
  // the pay-link's signed query (in the URL) and the form's CSRF token, as the form itself posts.
  function announceViewed(form) {
    var url = form.getAttribute('data-viewed');
    var token = form.querySelector('input[name="_csrf"]');
    if (!url || !token) return;
    var events = ['focusin', 'input', 'pointerdown', 'keydown'];
    var sent = false;
    function send() {
      if (sent) return;
      sent = true;
      for (var i = 0; i < events.length; i++) form.removeEventListener(events[i], send, true);
      var body = new URLSearchParams();
      body.append('_csrf', token.value);
      try {
        if (navigator.sendBeacon && navigator.sendBeacon(url, body)) return;
      } catch (e) {
        // Fall back to fetch below.
      }
      if (window.fetch) fetch(url, { method: 'POST', body: body, credentials: 'same-origin', keepalive: true }).catch(function () {});
    }
    for (var i = 0; i < events.length; i++) form.addEventListener(events[i], send, true);
  }

  function start() {
    var forms = document.querySelectorAll('form[data-checkout]');
    for (var i = 0; i < forms.length; i++) {
      enhance(forms[i]);
      announceViewed(forms[i]);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
