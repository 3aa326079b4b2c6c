"""PDF engine benchmark: the same invoice drawn by ReportLab, fpdf2 and WeasyPrint.

Every engine lays out the same A4 invoice from the same ``InvoiceDocument`` (header,
bill-to, dates, a lines table whose header repeats on every page, totals, notes, the
payment link beside a QR image, a page footer) with the same packaged DejaVu Sans font:

* ``reportlab``: invoicehub's own renderer, ``invoicehub.invoices.pdf.render_invoice_pdf``;
* ``fpdf2``: the same layout with fpdf2's ``table()`` (below);
* ``weasyprint``: the same layout as HTML + CSS (below), through Debian's pango.

Beside each engine, in the same process, its bare baseline: one text line with the same
embedded font, i.e. what the engine costs before any layout; and a common yardstick
(ReportLab drawing that one line) timed in every process, so engines measured at
different moments of a shared machine's load still compare ("× yardstick").

Each engine runs in a fresh Python process (so imports, caches and peak memory are its
own): the import, a cold first render (fonts loaded, caches empty), then ``--runs``
rounds of warm renders, invoice, baseline and yardstick interleaved (median and p90),
the tracemalloc peak of one warm render (Python heap only: WeasyPrint's Pango
memory is C and not in it), the process's peak RSS (the harness, pypdf and Pillow
included), the output's size and page count, and a read-back with pypdf: are the
Cyrillic and Kazakh strings and ₸ € £ in the extracted text, every line's description,
every total (whitespace folded), and every total character for character ("exact":
the U+00A0 and U+202F that babel puts into amounts).

    .venv/bin/python bench/bench_pdf.py                  # all engines, 3 and 60 lines
    .venv/bin/python bench/bench_pdf.py --runs 9 --engines reportlab fpdf2

Prints a markdown table. Benchmarks are never part of the test suite.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import importlib
import io
import json
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from importlib import resources
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invoicehub.invoices.pdf import InvoiceDocument

ENGINES = ("reportlab", "fpdf2", "weasyprint")
FONT_DIR = Path(str(resources.files("invoicehub") / "web" / "fonts"))
REGULAR = FONT_DIR / "DejaVuSans.ttf"
BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"

CUSTOMER = "Әйгерім Бекова"
KAZAKH = "ӘҒҚҢӨҰҮҺІ әғқңөұүһі"
CYRILLIC = "Счёт на оплату, Алматы"
# The amounts as babel formats them: U+00A0 groups KZT in kk_KZ, U+202F groups EUR in fr_FR.
TOTALS = [
    ("Подытог / Subtotal", "10\xa0000,00\xa0₸"),
    ("Скидка / Discount", "10\u202f000,00\xa0€"),
    ("Доставка / Shipping", "£1,250.50"),
    ("Итого к оплате / Amount due", "1\xa0250\xa0000,00\xa0₸"),
]
BASELINE_LINE = f"{CUSTOMER} {KAZAKH} {CYRILLIC} ₸ € £"


def fake_qr_png(modules: int = 29, scale: int = 8) -> bytes:
    """A QR-sized black-and-white PNG (random modules; the engines only place it)."""
    from PIL import Image, ImageDraw

    rng = random.Random(42)
    image = Image.new("1", (modules * scale, modules * scale), 1)
    draw = ImageDraw.Draw(image)
    for y in range(modules):
        for x in range(modules):
            if rng.random() < 0.5:
                box = (x * scale, y * scale, x * scale + scale - 1, y * scale + scale - 1)
                draw.rectangle(box, fill=0)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def sample_document(line_count: int) -> InvoiceDocument:
    from invoicehub.invoices.pdf import DocumentLine, InvoiceDocument

    words = ["разработка", "веб-сайта,", "поддержка", "и", "хостинг;", "қызмет", "көрсету"]
    lines = [
        DocumentLine(
            description=f"Позиция {index + 1}: " + " ".join(words[: 3 + (index * 7) % 9] * 2),
            quantity=str(1 + index % 5),
            unit_price="250\xa0000,00\xa0₸",
            tax_rate="12%",
            amount=f"{250 * (1 + index % 5)}\xa0000,00\xa0₸",
        )
        for index in range(line_count)
    ]
    return InvoiceDocument(
        merchant_name="ТОО «Алтын Дала»",
        number="INV-2026-0042",
        status_label="Открыт",
        issue_date_label="21 ноября 2026 г.",
        due_date_label="21 декабря 2026 г.",
        customer_lines=[CUSTOMER, KAZAKH, "client@example.com", "+7 700 123 45 67"],
        lines=lines,
        totals=TOTALS,
        notes=f"{CYRILLIC}. Рақмет!",
        payment_url="https://pay.example.com/i/inv_5f0c2b9e1d7a4c3b8e6f9a01",
        qr_png=fake_qr_png(),
        labels={"Invoice": "Счёт"},
        title="Премиум план",
    )


# --- ReportLab -------------------------------------------------------------------------


def reportlab_invoice(doc: InvoiceDocument) -> bytes:
    from invoicehub.invoices.pdf import render_invoice_pdf

    return render_invoice_pdf(doc)


def reportlab_baseline(_doc: InvoiceDocument) -> bytes:
    from reportlab.pdfgen.canvas import Canvas

    from invoicehub.invoices import pdf

    pdf._register_fonts()  # the font objects are shared, as in the renderer
    out = io.BytesIO()
    canvas = Canvas(out, initialFontName=pdf.FONT_REGULAR, invariant=1)
    canvas.setFont(pdf.FONT_REGULAR, 10)
    canvas.drawString(50, 780, BASELINE_LINE)
    canvas.save()
    return out.getvalue()


# --- fpdf2 -----------------------------------------------------------------------------


def _fpdf_new(title: str = "") -> Any:
    from fpdf import FPDF

    class InvoicePDF(FPDF):  # type: ignore[misc]
        def footer(self) -> None:
            if not title:
                return
            self.set_y(-14)
            self.set_font("dv", "", 8)
            self.set_text_color(101, 109, 118)
            self.cell(0, 5, title, align="L")
            self.set_x(self.l_margin)
            self.cell(0, 5, f"Page {self.page_no()}", align="R")

    pdf = InvoicePDF(format="A4")
    pdf.set_creation_date(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    # fpdf2 parses the TTF with fontTools for every document; there is no shared font object.
    pdf.add_font("dv", "", str(REGULAR))
    pdf.add_font("dv", "B", str(BOLD))
    return pdf


def fpdf2_baseline(_doc: InvoiceDocument) -> bytes:
    pdf = _fpdf_new()
    pdf.add_page()
    pdf.set_font("dv", "", 10)
    pdf.cell(0, 6, BASELINE_LINE)
    return bytes(pdf.output())


def fpdf2_invoice(doc: InvoiceDocument) -> bytes:
    from fpdf.fonts import FontFace

    label = doc.label
    pdf = _fpdf_new(f"{label('Invoice')} {doc.number}")
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    width = pdf.epw
    top = pdf.get_y()
    pdf.set_font("dv", "B", 15)
    pdf.multi_cell(width * 0.58, 7, doc.merchant_name)
    left_bottom = pdf.get_y()
    pdf.set_xy(pdf.l_margin + width * 0.58, top)
    pdf.set_font("dv", "B", 20)
    pdf.cell(width * 0.42, 9, label("Invoice"), align="R", new_x="LEFT", new_y="NEXT")
    pdf.set_font("dv", "", 10.5)
    pdf.cell(width * 0.42, 5, doc.number, align="R", new_x="LEFT", new_y="NEXT")
    pdf.set_font("dv", "B", 9)
    pdf.cell(width * 0.42, 5, doc.status_label, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(left_bottom, pdf.get_y()) + 3)
    pdf.set_draw_color(208, 215, 222)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.ln(4)
    top = pdf.get_y()
    pdf.set_font("dv", "B", 8.5)
    pdf.cell(width * 0.58, 5, label("Bill to"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("dv", "", 9.5)
    for line in doc.customer_lines:
        pdf.multi_cell(width * 0.58, 4.6, line, new_x="LMARGIN", new_y="NEXT")
    left_bottom = pdf.get_y()
    pdf.set_y(top)
    for key, value in (("Issue date", doc.issue_date_label), ("Due date", doc.due_date_label)):
        pdf.set_x(pdf.l_margin + width * 0.58)
        pdf.cell(width * 0.2, 5, label(key))
        pdf.cell(width * 0.22, 5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(left_bottom, pdf.get_y()) + 6)
    if doc.title:
        pdf.set_font("dv", "B", 11.5)
        pdf.multi_cell(0, 6, doc.title, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    pdf.set_font("dv", "", 9)
    heads = [label(key) for key in ("Description", "Qty", "Unit price", "Tax", "Amount")]
    with pdf.table(
        col_widths=(98, 10, 28, 11, 28),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=FontFace(emphasis="BOLD", fill_color=(243, 244, 246)),
        borders_layout="HORIZONTAL_LINES",
        line_height=4.1,
        padding=1.4,
        v_align="TOP",
    ) as table:
        table.row(heads)
        for item in doc.lines:
            table.row(
                [item.description, item.quantity, item.unit_price, item.tax_rate, item.amount]
            )
    pdf.ln(3)
    for index, (name, amount) in enumerate(doc.totals):
        last = index == len(doc.totals) - 1
        pdf.set_font("dv", "B" if last else "", 11 if last else 9.5)
        pdf.set_x(pdf.l_margin + width * 0.5)
        pdf.cell(width * 0.25, 6, name)
        pdf.cell(width * 0.25, 6, amount, align="R", new_x="LMARGIN", new_y="NEXT")
    if doc.notes:
        pdf.ln(4)
        pdf.set_font("dv", "B", 8.5)
        pdf.cell(0, 5, label("Notes"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("dv", "", 9.5)
        pdf.multi_cell(0, 4.6, doc.notes, new_x="LMARGIN", new_y="NEXT")
    if doc.payment_url or doc.qr_png:
        pdf.ln(4)
        if pdf.get_y() + 36 > pdf.h - pdf.b_margin:
            pdf.add_page()
        top = pdf.get_y()
        if doc.qr_png:
            pdf.image(io.BytesIO(doc.qr_png), x=pdf.l_margin + 3, y=top + 3, w=30, h=30)
        pdf.set_xy(pdf.l_margin + 36, top + 10)
        pdf.set_font("dv", "B", 9.5)
        pdf.cell(0, 5, label("Pay online"), new_x="LEFT", new_y="NEXT")
        pdf.set_font("dv", "", 9.5)
        pdf.cell(0, 5, label("Scan to pay"), new_x="LEFT", new_y="NEXT")
        if doc.payment_url:
            pdf.set_text_color(11, 87, 208)
            pdf.multi_cell(width - 36, 5, doc.payment_url, link=doc.payment_url)
            pdf.set_text_color(0, 0, 0)
        pdf.rect(pdf.l_margin, top, width, 36)
    return bytes(pdf.output())


# --- WeasyPrint ------------------------------------------------------------------------

_CSS = """
@font-face { font-family: DV; src: url("%(regular)s"); }
@font-face { font-family: DV; font-weight: bold; src: url("%(bold)s"); }
@page { size: A4; margin: 16mm 18mm 20mm 18mm;
  @bottom-left { content: "%(footer)s"; font: 8pt DV; color: #656d76; }
  @bottom-right { content: "Page " counter(page); font: 8pt DV; color: #656d76; } }
body { font: 9.5pt/1.3 DV; color: #1f2328; margin: 0; }
.head { display: flex; justify-content: space-between; border-bottom: .75pt solid #d0d7de;
  padding-bottom: 10pt; }
.merchant { font-weight: bold; font-size: 15pt; }
.right { text-align: right; } .doc-title { font-weight: bold; font-size: 20pt; }
.muted { color: #656d76; } .small { font-size: 8.5pt; font-weight: bold; color: #656d76; }
.parties { display: flex; justify-content: space-between; margin: 12pt 0 16pt; }
table.lines { width: 100%%; border-collapse: collapse; font-size: 9pt; }
table.lines th { background: #f3f4f6; text-align: right; }
table.lines td, table.lines th { padding: 4pt; border-bottom: .5pt solid #d0d7de;
  vertical-align: top; }
table.lines td + td, table.lines th + th { text-align: right; white-space: nowrap; }
table.lines th:first-child { text-align: left; }
table.totals { margin: 8pt 0 0 auto; border-collapse: collapse; }
table.totals td { padding: 2.5pt 4pt; } table.totals td + td { text-align: right; }
table.totals tr:last-child td { font-weight: bold; font-size: 11pt; border-top: 1pt solid; }
.pay { display: flex; align-items: center; border: .5pt solid #d0d7de; padding: 3mm;
  margin-top: 14pt; page-break-inside: avoid; }
.pay img { width: 30mm; height: 30mm; margin-right: 6mm; } a { color: #0b57d0; }
"""


def _weasy_html(doc: InvoiceDocument, body: str) -> str:
    from html import escape

    css = _CSS % {
        "regular": REGULAR.as_uri(),
        "bold": BOLD.as_uri(),
        "footer": escape(f"{doc.label('Invoice')} {doc.number}"),
    }
    return f"<!doctype html><html><head><meta charset=utf-8><style>{css}</style></head><body>{body}</body></html>"


def weasyprint_baseline(doc: InvoiceDocument) -> bytes:
    from weasyprint import HTML

    html = _weasy_html(doc, f"<p>{BASELINE_LINE}</p>")
    return bytes(HTML(string=html).write_pdf())


def weasyprint_invoice(doc: InvoiceDocument) -> bytes:
    from html import escape

    from weasyprint import HTML

    label = doc.label
    customer = "".join(f"<div>{escape(line)}</div>" for line in doc.customer_lines)
    heads = "".join(
        f"<th>{escape(label(key))}</th>"
        for key in ("Description", "Qty", "Unit price", "Tax", "Amount")
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(value)}</td>"
            for value in (
                item.description,
                item.quantity,
                item.unit_price,
                item.tax_rate,
                item.amount,
            )
        )
        + "</tr>"
        for item in doc.lines
    )
    totals = "".join(
        f"<tr><td class=muted>{escape(name)}</td><td>{escape(amount)}</td></tr>"
        for name, amount in doc.totals
    )
    qr = ""
    if doc.qr_png:
        qr = f'<img src="data:image/png;base64,{base64.b64encode(doc.qr_png).decode()}">'
    url = escape(doc.payment_url or "")
    body = f"""
<div class=head><div class=merchant>{escape(doc.merchant_name)}</div>
<div class=right><div class=doc-title>{escape(label("Invoice"))}</div>
<div>{escape(doc.number)}</div><div class=small>{escape(doc.status_label)}</div></div></div>
<div class=parties><div><div class=small>{escape(label("Bill to"))}</div>{customer}</div>
<div><span class=muted>{escape(label("Issue date"))}</span> {escape(doc.issue_date_label)}<br>
<span class=muted>{escape(label("Due date"))}</span> {escape(doc.due_date_label)}</div></div>
<h3>{escape(doc.title or "")}</h3>
<table class=lines><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>
<table class=totals>{totals}</table>
<p><span class=small>{escape(label("Notes"))}</span><br>{escape(doc.notes or "")}</p>
<div class=pay>{qr}<div><b>{escape(label("Pay online"))}</b><br>
<span class=muted>{escape(label("Scan to pay"))}</span><br><a href="{url}">{url}</a></div></div>
"""
    return bytes(HTML(string=_weasy_html(doc, body)).write_pdf())


RENDERERS: dict[str, Callable[[InvoiceDocument], bytes]] = {  # engine and its baseline
    "reportlab": reportlab_invoice,
    "reportlab-baseline": reportlab_baseline,
    "fpdf2": fpdf2_invoice,
    "fpdf2-baseline": fpdf2_baseline,
    "weasyprint": weasyprint_invoice,
    "weasyprint-baseline": weasyprint_baseline,
}
PACKAGES = {"reportlab": "reportlab", "fpdf2": "fpdf2", "weasyprint": "weasyprint"}
# What each engine's first use imports; timed before anything else in a fresh process.
IMPORTS = {
    "reportlab": ("invoicehub.invoices.pdf",),
    "fpdf2": ("fpdf", "fpdf.fonts"),
    "weasyprint": ("weasyprint",),
}


# --- measuring -------------------------------------------------------------------------


def read_back(pdf: bytes, doc: InvoiceDocument, baseline: bool) -> dict[str, Any]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    # Extraction splits a wrapped description over lines: compare with whitespace folded.
    folded = " ".join(text.replace("\xa0", " ").split())

    def has(value: str) -> bool:
        return " ".join(value.replace("\xa0", " ").split()) in folded

    probes = [CUSTOMER, KAZAKH, "₸", "€", "£"] + ([] if baseline else [CYRILLIC])
    result: dict[str, Any] = {
        "pages": len(reader.pages),
        "glyphs_ok": all(has(probe) for probe in probes),
    }
    if not baseline:
        result["descriptions_ok"] = all(has(line.description) for line in doc.lines)
        result["totals_ok"] = all(has(amount) and has(name) for name, amount in doc.totals)
        # Exact: the amount's own characters (U+00A0, U+202F) come back unchanged.
        result["totals_exact"] = all(amount in text for _name, amount in doc.totals)
    return result


def _timed(render: Callable[[InvoiceDocument], bytes], doc: InvoiceDocument) -> float:
    started = time.perf_counter()
    render(doc)
    return time.perf_counter() - started


def _python_peak(render: Callable[[InvoiceDocument], bytes], doc: InvoiceDocument) -> int:
    tracemalloc.start()
    render(doc)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def worker(engine: str, line_count: int, runs: int, save: Path | None) -> list[dict[str, Any]]:
    """One engine in this fresh process: its invoice and its baseline, runs interleaved."""
    started = time.perf_counter()
    for module in IMPORTS[engine]:
        importlib.import_module(module)
    import_s = time.perf_counter() - started
    doc = sample_document(line_count)
    renders = {engine: RENDERERS[engine], f"{engine}-baseline": RENDERERS[f"{engine}-baseline"]}
    rows: dict[str, dict[str, Any]] = {}
    for name, render in renders.items():  # the invoice first: it pays for loading fonts
        first_started = time.perf_counter()
        pdf = render(doc)
        first_s = time.perf_counter() - first_started
        if save:
            save.mkdir(parents=True, exist_ok=True)
            (save / f"{name}-{line_count}.pdf").write_bytes(pdf)
        rows[name] = {
            "engine": name,
            "lines": line_count,
            "runs": runs,
            "first_s": first_s,
            "size_bytes": len(pdf),
            **read_back(pdf, doc, baseline=name != engine),
        }
    # The yardstick, timed in every process: ReportLab drawing one line. Engines measured in
    # different processes (and so at different moments of a shared machine's load) compare
    # through it. Alternating all renders keeps a load change from favouring any of them.
    timed = {**renders, "yardstick": reportlab_baseline}
    times: dict[str, list[float]] = {name: [] for name in timed}
    for _ in range(runs):
        for name, render in timed.items():
            times[name].append(_timed(render, doc))
    yardstick_s = statistics.median(times["yardstick"])
    for name, render in renders.items():
        ordered = sorted(times[name])
        rows[name]["median_s"] = statistics.median(ordered)
        rows[name]["p90_s"] = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        rows[name]["py_peak_bytes"] = _python_peak(render, doc)
        rows[name]["yardstick_s"] = yardstick_s
    rows[engine]["import_s"] = import_s
    rows[engine]["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return [rows[f"{engine}-baseline"], rows[engine]]


def run_worker(engine: str, line_count: int, runs: int, save: Path | None) -> list[dict[str, Any]]:
    command = [sys.executable, __file__, "--worker", engine, "--lines", str(line_count)]
    command += ["--runs", str(runs)] + (["--save", str(save)] if save else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        return [{"engine": engine, "lines": line_count, "error": done.stderr.strip()[-400:]}]
    return list(json.loads(done.stdout))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _yes(value: Any) -> str:
    return "–" if value is None else ("yes" if value else "**no**")


def markdown(results: list[dict[str, Any]]) -> str:
    head = (
        "| engine | lines | median ms | p90 ms | import ms | first render ms "
        "| × own baseline | × yardstick | Python peak KiB | max RSS MiB | size KiB | pages "
        "| Cyrillic/Kazakh/₸€£ | every description | totals | totals exact |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|"
    )
    baselines = {
        (r["engine"].removesuffix("-baseline"), r["lines"]): r["median_s"]
        for r in results
        if r["engine"].endswith("-baseline") and "error" not in r
    }
    rows = [head]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['engine']} | {r['lines']} | failed: {r['error']} |")
            continue
        base = baselines.get((r["engine"].removesuffix("-baseline"), r["lines"]))
        ratio = f"{r['median_s'] / base:.1f}" if base else "–"
        import_ms = _ms(r["import_s"]) if "import_s" in r else "–"
        rss_mib = f"{r['max_rss_bytes'] / 2**20:.0f}" if "max_rss_bytes" in r else "–"
        rows.append(
            f"| {r['engine']} | {r['lines']} | {_ms(r['median_s'])} | {_ms(r['p90_s'])} "
            f"| {import_ms} | {_ms(r['first_s'])} | {ratio} "
            f"| {r['median_s'] / r['yardstick_s']:.1f} "
            f"| {r['py_peak_bytes'] / 1024:.0f} | {rss_mib} "
            f"| {r['size_bytes'] / 1024:.1f} | {r['pages']} | {_yes(r['glyphs_ok'])} "
            f"| {_yes(r.get('descriptions_ok'))} | {_yes(r.get('totals_ok'))} "
            f"| {_yes(r.get('totals_exact'))} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--line-counts", nargs="+", type=int, default=[3, 60])
    parser.add_argument("--runs", type=int, default=25, help="warm renders per measurement")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--save", type=Path, help="also write every engine's PDFs into this folder")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--lines", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.lines, args.runs, args.save)))
        return

    results = []
    for line_count in args.line_counts:
        for engine in args.engines:
            results += run_worker(engine, line_count, args.runs, args.save)
            print(f"  {engine} {line_count} lines: done", file=sys.stderr)
    versions = ", ".join(f"{PACKAGES[e]} {version(PACKAGES[e])}" for e in args.engines)
    print(
        f"Python {platform.python_version()}, {versions}, pypdf {version('pypdf')}; "
        f"{args.runs} warm runs each; one fresh process per engine and size, its invoice and "
        "baseline renders interleaved\n"
    )
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
