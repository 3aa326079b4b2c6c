// The dashboard's little bit of behaviour; every page works without it.
"use strict";
document.documentElement.classList.add("js");

document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const field = document.getElementById(copy.dataset.copy);
    field.select();
    const done = () => { copy.textContent = copy.dataset.copied; };
    if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, () => { document.execCommand("copy"); done(); });
    else { document.execCommand("copy"); done(); }
  }
  const confirmable = event.target.closest("[data-confirm]");
  if (confirmable && !window.confirm(confirmable.dataset.confirm)) event.preventDefault();
});

document.addEventListener("change", (event) => {
  if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
});

// ---- the invoice form: lines added and removed in place, totals as you type.
// The arithmetic is the server's (invoicehub.kit.money): each line's amount is
// quantity x unit price and its tax amount x rate / 100, each rounded half-up to the
// currency's minor unit; totals are sums of those. Integers of minor units (BigInt) and
// decimal strings throughout, never floating point, so the page agrees to the cent.
const form = document.querySelector("form.invoice-form");
if (form) {
  const minorUnits = JSON.parse(form.dataset.minorUnits);
  const lines = document.getElementById("lines");
  const template = lines.querySelector("tr.line").cloneNode(true);

  // "12.5" -> {digits: 125n, scale: 1}; null when not a plain non-negative decimal.
  const decimal = (text) => {
    const clean = text.trim().replace(/\s/g, "").replace(",", ".");
    if (clean === "") return { digits: 0n, scale: 0 };
    const match = /^(\d*)(?:\.(\d*))?$/.exec(clean);
    if (!match || (match[1] === "" && !match[2])) return null;
    const fraction = match[2] || "";
    return { digits: BigInt((match[1] || "0") + fraction), scale: fraction.length };
  };
  const pow10 = (n) => 10n ** BigInt(n);
  // round_half_up(numerator / denominator) for non-negative values
  const divideHalfUp = (numerator, denominator) => (2n * numerator + denominator) / (2n * denominator);
  const toMinor = (value, exponent) => {
    if (value === null || value.scale > exponent) return null; // more decimals than the currency has
    return value.digits * pow10(exponent - value.scale);
  };
  // Money is written exactly as the server writes it (babel, in the page's language): the
  // page carries each currency's rendering of one sample amount, and its prefix, suffix,
  // group and decimal marks are reused here.
  const samples = JSON.parse(form.dataset.moneySamples);
  const format = (minor, code, exponent) => {
    const sample = samples[code];
    const digits = [...sample].map((c, i) => (/\d/.test(c) ? i : -1)).filter((i) => i >= 0);
    const prefix = sample.slice(0, digits[0]);
    const suffix = sample.slice(digits[digits.length - 1] + 1);
    const core = sample.slice(digits[0], digits[digits.length - 1] + 1);
    const decimalMark = exponent > 0 ? core[core.length - 1 - exponent] : "";
    const whole = exponent > 0 ? core.slice(0, core.length - 1 - exponent) : core;
    const groupMark = (whole.match(/\D/) || [""])[0];
    const negative = minor < 0n;
    const text = (negative ? -minor : minor).toString().padStart(exponent + 1, "0");
    const major = (exponent ? text.slice(0, -exponent) : text).replace(/\B(?=(\d{3})+(?!\d))/g, groupMark);
    return (negative ? "−" : "") + prefix + major + (exponent ? decimalMark + text.slice(-exponent) : "") + suffix;
  };

  const recalculate = () => {
    const code = form.querySelector("#currency").value;
    const exponent = minorUnits[code] ?? 2;
    let subtotal = 0n, tax = 0n, problem = false;
    for (const row of lines.querySelectorAll("tr.line")) {
      const quantity = decimal(row.querySelector("[name=line_quantity]").value || "1");
      const unit = toMinor(decimal(row.querySelector("[name=line_unit_price]").value || "0"), exponent);
      const rate = decimal(row.querySelector("[name=line_tax_rate]").value || "0");
      const cell = row.querySelector("[data-line-amount]");
      if (quantity === null || unit === null || rate === null) { cell.textContent = "?"; problem = true; continue; }
      const amount = divideHalfUp(quantity.digits * unit, pow10(quantity.scale));
      const lineTax = divideHalfUp(amount * rate.digits, 100n * pow10(rate.scale));
      subtotal += amount; tax += lineTax;
      cell.textContent = format(amount, code, exponent);
    }
    const discount = toMinor(decimal(form.querySelector("#discount").value), exponent);
    const shipping = toMinor(decimal(form.querySelector("#shipping").value), exponent);
    if (discount === null || shipping === null) problem = true;
    const total = subtotal + tax + (shipping ?? 0n) - (discount ?? 0n);
    form.querySelector("#total-subtotal").textContent = format(subtotal, code, exponent);
    form.querySelector("#total-tax").textContent = format(tax, code, exponent);
    form.querySelector("#total-total").textContent = problem ? "?" : format(total, code, exponent);
    form.querySelector("#totals-problem").hidden = !problem;
  };

  document.getElementById("add-line").addEventListener("click", () => {
    const row = template.cloneNode(true);
    row.querySelectorAll("input").forEach((input) => { input.value = input.name === "line_quantity" ? "1" : input.name === "line_tax_rate" ? "0" : ""; });
    lines.appendChild(row);
    row.querySelector("input").focus();
    recalculate();
  });
  lines.addEventListener("click", (event) => {
    const remove = event.target.closest(".remove-line");
    if (!remove) return;
    if (lines.querySelectorAll("tr.line").length > 1) remove.closest("tr").remove();
    else remove.closest("tr").querySelectorAll("input").forEach((input) => { input.value = ""; });
    recalculate();
  });
  form.addEventListener("input", recalculate);
  form.addEventListener("change", recalculate);
  recalculate();
}
