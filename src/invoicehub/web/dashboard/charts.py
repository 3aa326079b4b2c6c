"""Bar charts drawn on the server as SVG: no script, no library, nothing fetched.

Every label passes through markupsafe's escape, so text typed by a person (a customer's
name) can never become markup."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 220
TOP = 16
BOTTOM = 40  # room for the labels under the bars
LEFT = 8


def bar_chart(
    bars: Sequence[tuple[str, int]],
    *,
    title: str,
    describe: Callable[[int], str],
) -> Markup:
    """``bars``: (label, value) pairs, values in minor units (negative drawn as zero height);
    ``describe`` formats a value for the bar's tooltip and the accessible description."""
    if not bars:
        return Markup("")
    highest = max(max(value for _, value in bars), 1)
    slot = (WIDTH - LEFT * 2) / len(bars)
    bar_width = max(slot * 0.7, 1)
    plot_height = HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - LEFT}" y2="{HEIGHT - BOTTOM}" '
        'class="axis"/>',
    ]
    for index, (label, value) in enumerate(bars):
        height = plot_height * max(value, 0) / highest
        x = LEFT + index * slot + (slot - bar_width) / 2
        y = HEIGHT - BOTTOM - height
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" '
            f'height="{height:.1f}"><title>{escape(label)}: {escape(describe(value))}</title>'
            "</rect>"
        )
        if len(bars) <= 16 or index % 2 == 0:
            parts.append(
                f'<text x="{x + bar_width / 2:.1f}" y="{HEIGHT - BOTTOM + 14}" '
                f'class="label" text-anchor="middle">{escape(label[-3:] if "-W" in label else label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text part above went through escape()
