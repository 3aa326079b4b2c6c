"""The printable invoice: an A4 PDF drawn with ReportLab from already-formatted values.

The renderer holds no business rules. Whoever calls it (the API's ``/pdf`` route, the pay
page's download) formats every amount, date, quantity and label in the customer's language
first and hands over an ``InvoiceDocument``; this module only lays the strings out. Why
ReportLab, and what the alternatives measured: docs/pdf.md.

Text is set in DejaVu Sans, shipped inside the package (``invoicehub/web/fonts``, with its
license), so Cyrillic, the Kazakh letters (ә ғ қ ң ө ұ ү һ і) and the ₸ € £ signs print on
any machine without a system font.

Output is deterministic: the same document gives the same bytes apart from the creation
date in the PDF's info dictionary (pass ``created_at`` to fix that too).
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

__all__ = ["DEFAULT_LABELS", "DocumentLine", "InvoiceDocument", "render_invoice_pdf"]

DEFAULT_LABELS: dict[str, str] = {
    "Invoice": "Invoice",
    "Bill to": "Bill to",
    "Issue date": "Issue date",
    "Due date": "Due date",
    "Description": "Description",
    "Qty": "Qty",
    "Unit price": "Unit price",
    "Tax": "Tax",
    "Amount": "Amount",
    "Notes": "Notes",
    "Pay online": "Pay online",
    "Scan to pay": "Scan the code or open the link to pay.",
    "Page": "Page",
}
"""Every word the renderer prints on its own; ``InvoiceDocument.labels`` overrides any of them."""


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """One row of the lines table; every field is printed exactly as given."""

    description: str
    quantity: str
    unit_price: str
    tax_rate: str
    amount: str


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """Everything the printed invoice shows, already formatted for its reader."""

    merchant_name: str
    number: str
    status_label: str
    issue_date_label: str
    due_date_label: str
    customer_lines: list[str]
    lines: list[DocumentLine]
    # (label, formatted amount) in display order; the last pair is the total / amount due
    # and is printed in bold.
    totals: list[tuple[str, str]]
    notes: str | None = None
    payment_url: str | None = None
    qr_png: bytes | None = None
    labels: dict[str, str] = field(default_factory=dict)
    title: str | None = None

    def label(self, key: str) -> str:
        return self.labels.get(key) or DEFAULT_LABELS.get(key, key)


FONT_REGULAR = "InvoiceHub-DejaVuSans"
FONT_BOLD = "InvoiceHub-DejaVuSans-Bold"
_FONT_FILES = {FONT_REGULAR: "DejaVuSans.ttf", FONT_BOLD: "DejaVuSans-Bold.ttf"}

_PAGE_WIDTH, _PAGE_HEIGHT = A4
_MARGIN_X = 18 * mm
_MARGIN_TOP = 16 * mm
_MARGIN_BOTTOM = 20 * mm
_CONTENT_WIDTH = _PAGE_WIDTH - 2 * _MARGIN_X
_TABLE_FONT_SIZE = 9.0
_TABLE_MIN_FONT_SIZE = 6.0
_CELL_PADDING = 4.0
_MIN_DESCRIPTION_WIDTH = 55 * mm
_QR_SIZE = 30 * mm

_INK = colors.HexColor("#1f2328")
_MUTED = colors.HexColor("#656d76")
_RULE = colors.HexColor("#d0d7de")
_HEADER_FILL = colors.HexColor("#f3f4f6")
_LINK = colors.HexColor("#0b57d0")

# ReportLab keeps per-document state inside the shared font objects and does not promise
# thread safety; FastAPI runs sync endpoints in a thread pool. Rendering is CPU-bound under
# the GIL anyway, so one render at a time costs no throughput.
_render_lock = threading.Lock()
_fonts_registered = False


def _register_fonts() -> None:
    global _fonts_registered
    if _fonts_registered:
        return
    font_dir = resources.files("invoicehub") / "web" / "fonts"
    for name, filename in _FONT_FILES.items():
        data = (font_dir / filename).read_bytes()
        pdfmetrics.registerFont(TTFont(name, io.BytesIO(data)))
    _fonts_registered = True


def _style(name: str, **overrides: Any) -> ParagraphStyle:
    base: dict[str, Any] = {
        "fontName": FONT_REGULAR,
        "fontSize": 9.5,
        "leading": 12.5,
        "textColor": _INK,
        "splitLongWords": 1,
    }
    base.update(overrides)
    return ParagraphStyle(name, **base)


_BODY = _style("body")
_MUTED_TEXT = _style("muted", textColor=_MUTED)
_SMALL_HEADING = _style("small-heading", fontName=FONT_BOLD, fontSize=8.5, textColor=_MUTED)
_MERCHANT = _style("merchant", fontName=FONT_BOLD, fontSize=15, leading=19)
_DOC_TITLE = _style("doc-title", fontName=FONT_BOLD, fontSize=20, leading=24, alignment=TA_RIGHT)
_DOC_NUMBER = _style("doc-number", fontSize=10.5, leading=14, alignment=TA_RIGHT)
_STATUS = _style("status", fontName=FONT_BOLD, fontSize=9, textColor=_MUTED, alignment=TA_RIGHT)
_INVOICE_TITLE = _style("invoice-title", fontName=FONT_BOLD, fontSize=11.5, leading=15)


def _text(value: str) -> str:
    """Paragraph markup for plain text: escaped, with its line breaks kept."""
    return "<br/>".join(escape(part) for part in value.splitlines()) if value else ""


def _paragraph(value: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(_text(value), style)


_TableCommand = tuple[Any, ...]
_NO_PADDING: list[_TableCommand] = [
    ("LEFTPADDING", (0, 0), (-1, -1), 0),
    ("RIGHTPADDING", (0, 0), (-1, -1), 0),
    ("TOPPADDING", (0, 0), (-1, -1), 0),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
]


def _table(
    data: list[list[Any]],
    col_widths: Sequence[float],
    commands: Sequence[_TableCommand],
    *,
    repeat_rows: int = 0,
    h_align: Literal["LEFT", "CENTER", "RIGHT"] = "CENTER",
) -> Table:
    # ReportLab sets each cell's font before drawing it, Helvetica unless told otherwise,
    # which would put an unembedded font into every file; so every table names ours first.
    base: list[_TableCommand] = [
        ("FONT", (0, 0), (-1, -1), FONT_REGULAR, 9.5, 12.5),
        ("TEXTCOLOR", (0, 0), (-1, -1), _INK),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    table = Table(data, colWidths=list(col_widths), repeatRows=repeat_rows, hAlign=h_align)
    table.setStyle(TableStyle([*base, *commands]))
    return table


def _header(doc: InvoiceDocument) -> Table:
    right: list[Flowable] = [
        _paragraph(doc.label("Invoice"), _DOC_TITLE),
        _paragraph(doc.number, _DOC_NUMBER),
    ]
    if doc.status_label:
        right.append(_paragraph(doc.status_label, _STATUS))
    return _table(
        [[_paragraph(doc.merchant_name, _MERCHANT), right]],
        [_CONTENT_WIDTH * 0.58, _CONTENT_WIDTH * 0.42],
        [
            *_NO_PADDING,
            ("LINEBELOW", (0, 0), (-1, 0), 0.75, _RULE),
            ("BOTTOMPADDING", (0, 0), (-1, 0), 10),
        ],
    )


def _parties(doc: InvoiceDocument) -> Table:
    bill_to: list[Flowable] = [_paragraph(doc.label("Bill to"), _SMALL_HEADING)]
    bill_to.extend(_paragraph(line, _BODY) for line in doc.customer_lines if line)
    dates = _table(
        [
            [
                _paragraph(doc.label("Issue date"), _MUTED_TEXT),
                _paragraph(doc.issue_date_label, _BODY),
            ],
            [
                _paragraph(doc.label("Due date"), _MUTED_TEXT),
                _paragraph(doc.due_date_label, _BODY),
            ],
        ],
        [_CONTENT_WIDTH * 0.2, _CONTENT_WIDTH * 0.22],
        [*_NO_PADDING, ("BOTTOMPADDING", (0, 0), (-1, -1), 3)],
    )
    return _table(
        [[bill_to, dates]],
        [_CONTENT_WIDTH * 0.58, _CONTENT_WIDTH * 0.42],
        [*_NO_PADDING, ("TOPPADDING", (0, 0), (-1, -1), 12)],
    )


def _numeric_widths(rows: Sequence[Sequence[str]], font_size: float) -> list[float]:
    """Natural widths of the number columns at ``font_size``; the first row is the bold header."""
    widths: list[float] = []
    for column in range(len(rows[0])):
        natural = max(
            pdfmetrics.stringWidth(
                row[column], FONT_BOLD if index == 0 else FONT_REGULAR, font_size
            )
            for index, row in enumerate(rows)
        )
        widths.append(natural + 2 * _CELL_PADDING + 1)
    return widths


def _lines_table(doc: InvoiceDocument) -> Table:
    # Numbers go into cells as plain strings, never Paragraphs: a Paragraph treats U+202F
    # (the narrow no-break space some locales group digits with) as a breaking space, and
    # a number must neither wrap nor print differently from the string it was given.
    header = [doc.label(key) for key in ("Qty", "Unit price", "Tax", "Amount")]
    numbers = [header] + [
        [line.quantity, line.unit_price, line.tax_rate, line.amount] for line in doc.lines
    ]
    font_size = _TABLE_FONT_SIZE
    widths = _numeric_widths(numbers, font_size)
    budget = _CONTENT_WIDTH - _MIN_DESCRIPTION_WIDTH
    if sum(widths) > budget:
        # Huge amounts: shrink the table's type rather than let numbers overflow the page.
        font_size = max(_TABLE_MIN_FONT_SIZE, font_size * budget / sum(widths))
        widths = _numeric_widths(numbers, font_size)
    leading = font_size * 1.3
    cell = _style("cell", fontSize=font_size, leading=leading)
    head = _style("cell-head", fontName=FONT_BOLD, fontSize=font_size, leading=leading)

    data: list[list[Any]] = [[_paragraph(doc.label("Description"), head), *header]]
    data.extend(
        [_paragraph(line.description, cell), *values]
        for line, values in zip(doc.lines, numbers[1:], strict=True)
    )
    return _table(
        data,
        [_CONTENT_WIDTH - sum(widths), *widths],
        [
            ("FONT", (0, 0), (-1, -1), FONT_REGULAR, font_size, leading),
            ("FONT", (0, 0), (-1, 0), FONT_BOLD, font_size, leading),
            ("BACKGROUND", (0, 0), (-1, 0), _HEADER_FILL),
            ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
            ("LEFTPADDING", (0, 0), (-1, -1), _CELL_PADDING),
            ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PADDING),
            ("TOPPADDING", (0, 0), (-1, -1), 4),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ("LINEBELOW", (0, 0), (-1, -1), 0.5, _RULE),
        ],
        repeat_rows=1,
    )


def _totals_table(doc: InvoiceDocument) -> Table:
    last = len(doc.totals) - 1
    return _table(
        [[label, amount] for label, amount in doc.totals],
        [_CONTENT_WIDTH * 0.25, _CONTENT_WIDTH * 0.25],
        [
            ("TEXTCOLOR", (0, 0), (0, -1), _MUTED),
            ("ALIGN", (1, 0), (1, -1), "RIGHT"),
            ("LEFTPADDING", (0, 0), (-1, -1), _CELL_PADDING),
            ("RIGHTPADDING", (0, 0), (-1, -1), _CELL_PADDING),
            ("TOPPADDING", (0, 0), (-1, -1), 2.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
            ("FONT", (0, last), (-1, last), FONT_BOLD, 11, 14),
            ("TEXTCOLOR", (0, last), (-1, last), _INK),
            ("LINEABOVE", (0, last), (-1, last), 1, _INK),
            ("TOPPADDING", (0, last), (-1, last), 5),
        ],
        h_align="RIGHT",
    )


def _payment_block(doc: InvoiceDocument) -> list[Flowable]:
    text: list[Flowable] = [
        _paragraph(doc.label("Pay online"), _style("pay-heading", fontName=FONT_BOLD)),
        _paragraph(doc.label("Scan to pay"), _MUTED_TEXT),
    ]
    if doc.payment_url:
        href = escape(doc.payment_url, {'"': "&quot;"})
        text.append(
            Paragraph(
                f'<a href="{href}">{escape(doc.payment_url)}</a>',
                _style("pay-link", textColor=_LINK, spaceBefore=3),
            )
        )
    if doc.qr_png is None:
        return [Spacer(1, 14), *text]
    try:
        qr: Flowable = Image(io.BytesIO(doc.qr_png), width=_QR_SIZE, height=_QR_SIZE)
    except Exception as exc:  # ReportLab passes on whatever its image reader raised
        raise ValueError("qr_png is not an image ReportLab can read") from exc
    box = _table(
        [[qr, text]],
        [_QR_SIZE + 6 * mm, _CONTENT_WIDTH - _QR_SIZE - 6 * mm],
        [
            *_NO_PADDING,
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("BOX", (0, 0), (-1, -1), 0.5, _RULE),
            ("LEFTPADDING", (0, 0), (0, 0), 3 * mm),
            ("TOPPADDING", (0, 0), (-1, -1), 3 * mm),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3 * mm),
        ],
        h_align="LEFT",
    )
    return [Spacer(1, 14), box]


def _story(doc: InvoiceDocument) -> list[Flowable]:
    story: list[Flowable] = [_header(doc), _parties(doc), Spacer(1, 16)]
    if doc.title:
        story += [_paragraph(doc.title, _INVOICE_TITLE), Spacer(1, 6)]
    story.append(_lines_table(doc))
    if doc.totals:
        story += [Spacer(1, 8), KeepTogether([_totals_table(doc)])]
    if doc.notes:
        story += [
            Spacer(1, 14),
            KeepTogether(
                [
                    _paragraph(doc.label("Notes"), _SMALL_HEADING),
                    Spacer(1, 2),
                    _paragraph(doc.notes, _BODY),
                ]
            ),
        ]
    if doc.payment_url or doc.qr_png is not None:
        story.append(KeepTogether(_payment_block(doc)))
    return story


def _pdf_date(moment: dt.datetime) -> str:
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("D:%Y%m%d%H%M%S+00'00'")


def render_invoice_pdf(doc: InvoiceDocument, *, created_at: dt.datetime | None = None) -> bytes:
    """The invoice as an A4 PDF. ``created_at`` (aware) is the PDF's creation date; now by default.

    Raises ValueError when ``qr_png`` is not a readable image or ``created_at`` is naive.
    """
    if created_at is not None and created_at.utcoffset() is None:
        raise ValueError("created_at must be timezone-aware")
    creation_date = _pdf_date(created_at or dt.datetime.now(dt.UTC))
    footer_left = f"{doc.label('Invoice')} {doc.number}"
    page_word = doc.label("Page")

    def decorate(canvas: Canvas, _template: BaseDocTemplate) -> None:
        canvas.saveState()
        # With invariant=1 ReportLab derives the file ID from the content alone and dates
        # the file 2000-01-01; the formatter puts the real creation date back.
        canvas.setDateFormatter(lambda *_parts: creation_date)
        canvas.setFont(FONT_REGULAR, 8)
        canvas.setFillColor(_MUTED)
        baseline = _MARGIN_BOTTOM / 2
        canvas.drawString(_MARGIN_X, baseline, footer_left)
        canvas.drawRightString(
            _PAGE_WIDTH - _MARGIN_X, baseline, f"{page_word} {canvas.getPageNumber()}"
        )
        canvas.restoreState()

    buffer = io.BytesIO()
    with _render_lock:
        _register_fonts()
        template = BaseDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=_MARGIN_X,
            rightMargin=_MARGIN_X,
            topMargin=_MARGIN_TOP,
            bottomMargin=_MARGIN_BOTTOM,
            title=f"{doc.label('Invoice')} {doc.number}",
            author=doc.merchant_name,
            subject=doc.title or "",
            creator="invoicehub",
            initialFontName=FONT_REGULAR,
            invariant=1,
        )
        # A frame without ReportLab's default 6 pt padding, so tables and text share one edge.
        frame = Frame(
            _MARGIN_X,
            _MARGIN_BOTTOM,
            _CONTENT_WIDTH,
            _PAGE_HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM,
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
            id="content",
        )
        template.addPageTemplates([PageTemplate(id="invoice", frames=[frame], onPage=decorate)])
        template.build(_story(doc))
    return buffer.getvalue()
