"""The printable invoice: render with ReportLab, read the text back with pypdf.

Amounts are formatted the way a caller will format them, with babel from the invoice's
JSON decimal strings, so the no-break spaces (U+00A0 for KZT in kk_KZ, U+202F for EUR in
fr_FR) and the ₸ € £ signs go through the renderer as they will in production.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import replace
from decimal import Decimal

import pytest
from babel.numbers import format_currency, parse_decimal
from fontTools.ttLib import TTFont
from PIL import Image
from pypdf import PdfReader

from invoicehub.invoices.pdf import DocumentLine, InvoiceDocument, render_invoice_pdf

CUSTOMER_NAME = "Әйгерім Бекова"
KAZAKH_LETTERS = "ӘҒҚҢӨҰҮҺІ әғқңөұүһі"
PAYMENT_URL = "https://pay.example.com/i/inv_5f0c2b9e1d7a4c3b8e6f9a01"

# The totals of one invoice as the native API's JSON gives them (decimal strings).
INVOICE_JSON = {
    "number": "INV-2026-0042",
    "subtotal": "10000.00",
    "tax": "1200.00",
    "shipping": "250.50",
    "discount": "0.00",
    "total": "11450.50",
    "amount_paid": "1000.00",
    "amount_due": "10450.50",
}
TOTAL_FIELDS = {  # JSON field -> the label printed beside it
    "subtotal": "Жалпы сомасы",
    "tax": "ҚҚС",
    "shipping": "Жеткізу",
    "total": "Барлығы",
    "amount_paid": "Төленді",
    "amount_due": "Төлеуге",
}


def qr_png() -> bytes:
    image = Image.new("1", (29, 29), 1)
    for x in range(0, 29, 2):
        image.putpixel((x, x), 0)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def document(
    *,
    currency: str = "KZT",
    locale: str = "kk_KZ",
    line_count: int = 3,
    labels: dict[str, str] | None = None,
    qr: bytes | None = None,
) -> InvoiceDocument:
    def money(amount: str) -> str:
        return format_currency(Decimal(amount), currency, locale=locale)

    lines = [
        DocumentLine(
            description=f"Позиция {index + 1}: веб-сайт әзірлеу, қызмет көрсету",
            quantity=str(index % 4 + 1),
            unit_price=money("2500.00"),
            tax_rate="12%",
            amount=money(str(2500 * (index % 4 + 1))),
        )
        for index in range(line_count)
    ]
    return InvoiceDocument(
        merchant_name="ТОО «Алтын Дала»",
        number=INVOICE_JSON["number"],
        status_label="Ашық",
        issue_date_label="21 қараша 2026 ж.",
        due_date_label="21 желтоқсан 2026 ж.",
        customer_lines=[CUSTOMER_NAME, KAZAKH_LETTERS, "г. Алматы, ул. Абая 1"],
        lines=lines,
        totals=[(label, money(INVOICE_JSON[key])) for key, label in TOTAL_FIELDS.items()],
        notes="Рақмет!\nСпасибо за покупку.",
        payment_url=PAYMENT_URL,
        qr_png=qr_png() if qr is None else qr,
        labels={"Invoice": "Шот", "Description": "Сипаттама"} if labels is None else labels,
        title="Премиум жоспар",
    )


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def fold(text: str) -> str:
    """Whitespace folded to single spaces.

    A wrapped description comes back over several lines, and ReportLab writes U+00A0 with
    the space glyph's code, so it reads back as a plain space. (U+202F reads back as
    itself; folding turns it into a space as well.)
    """
    return " ".join(text.replace("\xa0", " ").split())


@pytest.mark.parametrize(
    ("currency", "locale"), [("KZT", "kk_KZ"), ("EUR", "fr_FR"), ("GBP", "en_GB")]
)
def test_text_reads_back_and_totals_are_the_json_totals(currency: str, locale: str) -> None:
    doc = document(currency=currency, locale=locale)
    pdf = render_invoice_pdf(doc)

    assert pdf.startswith(b"%PDF-")
    texts = page_texts(pdf)
    assert len(texts) == 1
    text = fold(texts[0])
    for expected in [
        doc.number,
        CUSTOMER_NAME,
        KAZAKH_LETTERS,
        "ТОО «Алтын Дала»",
        "Шот",
        "Премиум жоспар",
        "Рақмет!",
        PAYMENT_URL,
        *(line.description for line in doc.lines),
        *(line.unit_price for line in doc.lines),
        *(line.amount for line in doc.lines),
    ]:
        assert fold(expected) in text, expected
    symbol = {"KZT": "₸", "EUR": "€", "GBP": "£"}[currency]
    assert symbol in text

    raw = "\n".join(texts)
    labels = [label for label, _amount in doc.totals]
    totals_text = text[text.index(labels[0]) : text.index(" Notes ")]
    for index, ((label, amount), key) in enumerate(zip(doc.totals, TOTAL_FIELDS, strict=True)):
        # Exact apart from U+00A0, which ReportLab writes as a space (see fold()).
        assert amount.replace("\xa0", " ") in raw, (label, amount)
        # Read the amount printed after the label back into a number: the JSON's decimal.
        start = totals_text.index(label) + len(label)
        end = totals_text.index(labels[index + 1]) if index + 1 < len(labels) else None
        printed = totals_text[start:end].replace(symbol, "").replace(" ", "")
        assert parse_decimal(printed, locale=locale) == Decimal(INVOICE_JSON[key]), label


def test_the_last_total_is_the_amount_due_and_comes_last() -> None:
    doc = document()
    text = fold(page_texts(render_invoice_pdf(doc))[0])
    label, amount = doc.totals[-1]
    positions = [text.index(f"{name} {fold(value)}") for name, value in doc.totals]
    assert positions == sorted(positions)
    assert text.index(f"{label} {fold(amount)}") > text.index(doc.lines[-1].description)


def test_sixty_lines_flow_over_pages_with_the_header_repeated() -> None:
    doc = document(line_count=60)
    texts = page_texts(render_invoice_pdf(doc))

    assert len(texts) > 1
    for number, page in enumerate(texts, start=1):
        # The lines table's header row is on every page the table reaches.
        if number < len(texts) or "Позиция" in page:
            assert "Сипаттама" in page, f"no table header on page {number}"
        assert f"Шот {doc.number}" in page  # the footer
    text = fold("\n".join(texts))
    for line in doc.lines:
        assert line.description in text
    assert text.index("Позиция 60:") > text.index("Позиция 59:") > text.index("Позиция 1:")
    label, amount = doc.totals[-1]
    assert f"{label} {fold(amount)}" in fold(texts[-1])


def test_long_descriptions_wrap_instead_of_running_off_the_page() -> None:
    long = " ".join(f"сөз{index}" for index in range(150))  # ~1000 characters
    doc = replace(document(), lines=[DocumentLine(long, "1", "1", "0%", "1")])
    page = page_texts(render_invoice_pdf(doc))[0]

    assert fold(long) in fold(page)
    lines_of_description = [line for line in page.splitlines() if "сөз" in line]
    assert len(lines_of_description) > 5


def test_text_is_printed_literally_not_as_markup() -> None:
    doc = replace(
        document(),
        merchant_name="R&D <b>Labs</b>",
        lines=[DocumentLine("<i>Design</i> & build", "1", "1", "0%", "1")],
        payment_url='https://pay.example.com/?a=1&b="2"',
    )
    text = page_texts(render_invoice_pdf(doc))[0]
    assert "R&D <b>Labs</b>" in text
    assert "<i>Design</i> & build" in text
    assert 'https://pay.example.com/?a=1&b="2"' in text


def test_missing_labels_fall_back_to_english() -> None:
    text = page_texts(render_invoice_pdf(document(labels={"Invoice": "Шот"})))[0]
    for word in ("Шот", "Bill to", "Issue date", "Due date", "Description", "Qty", "Amount"):
        assert word in text
    assert "Pay online" in text


def test_payment_link_is_clickable_and_the_qr_code_is_on_the_same_page() -> None:
    reader = PdfReader(io.BytesIO(render_invoice_pdf(document())))
    page = reader.pages[0]

    uris = [
        annotation.get_object()["/A"]["/URI"]
        for annotation in page.get("/Annots", [])
        if annotation.get_object().get("/Subtype") == "/Link"
    ]
    assert PAYMENT_URL in uris
    assert len(page.images) == 1


def test_a_qr_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(ValueError, match="qr_png"):
        render_invoice_pdf(document(qr=b"not a png"))


def test_a_naive_creation_date_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render_invoice_pdf(document(), created_at=dt.datetime(2026, 11, 21, 9, 30))


def test_same_document_same_bytes_apart_from_the_creation_date() -> None:
    moment = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
    first = render_invoice_pdf(document(), created_at=moment)

    assert render_invoice_pdf(document(), created_at=moment) == first
    later = render_invoice_pdf(document(), created_at=moment + dt.timedelta(hours=1))
    assert later != first
    assert later.replace(b"20261121103000", b"20261121093000") == first
    assert PdfReader(io.BytesIO(first)).metadata.creation_date == moment  # type: ignore[union-attr]


def test_only_the_packaged_font_is_used_and_it_is_embedded() -> None:
    page = PdfReader(io.BytesIO(render_invoice_pdf(document()))).pages[0]
    fonts = [font.get_object() for font in page["/Resources"]["/Font"].values()]

    assert {str(font["/BaseFont"]).split("+")[-1] for font in fonts} == {
        "DejaVuSans",
        "DejaVuSans-Bold",
    }
    for font in fonts:
        assert "/FontFile2" in font["/FontDescriptor"].get_object()


@pytest.mark.parametrize("filename", ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"])
def test_packaged_font_has_every_glyph_an_invoice_needs(filename: str) -> None:
    # Read-back alone cannot prove this: a missing glyph prints as an empty box but still
    # extracts as its character.
    from importlib import resources

    fonts = resources.files("invoicehub") / "web" / "fonts"
    with (fonts / filename).open("rb") as file:
        cmap = TTFont(file).getBestCmap()
    russian = "".join(map(chr, range(ord("А"), ord("я") + 1))) + "Ёё"
    needed = russian + "ӘҒҚҢӨҰҮҺІәғқңөұүһі" + "₸€£$¥" + "\u00a0\u202f«»—№"
    assert [char for char in needed if ord(char) not in cmap] == []
    assert (fonts / "LICENSE").read_text().startswith("DejaVu Sans")
