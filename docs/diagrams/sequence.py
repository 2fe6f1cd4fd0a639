"""Render the ``*.seq`` sequence diagrams beside this file to SVG (no network, no graphviz).

Run ``python docs/diagrams/sequence.py`` after editing a ``.seq`` file and commit both; a
test (tests/test_docs_diagrams.py) fails when a committed SVG is not what its source renders.

The format, one statement per line (``#`` starts a comment)::

    title: Authorization code with PAR and DPoP
    participants: Browser | Client | AS | API
    Client -> AS: POST /oauth/par
    AS --> Client: 201 request_uri          (a dashed arrow: a response)
    note AS: claims the DPoP jti            (a note under a participant)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMN = 270
CHAR = 6.6  # the average width of a 12px character, for the bounding box
MARGIN = 40
ROW = 34
TOP = 90
FONT = "font-family:system-ui,sans-serif;font-size:12px"
HALO = ";paint-order:stroke;stroke:#ffffff;stroke-width:3px"


@dataclass(frozen=True)
class Step:
    kind: str  # "arrow", "reply" or "note"
    source: int
    target: int
    text: str


def parse(text: str) -> tuple[str, list[str], list[Step]]:
    title = ""
    names: list[str] = []
    steps: list[Step] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("  #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        head, _, rest = line.partition(":")
        rest = rest.strip()
        if head == "title":
            title = rest
        elif head == "participants":
            names = [n.strip() for n in rest.split("|")]
        elif head.startswith("note "):
            who = names.index(head[5:].strip())
            steps.append(Step("note", who, who, rest))
        elif "-->" in head or "->" in head:
            arrow = "-->" if "-->" in head else "->"
            left, right = (part.strip() for part in head.split(arrow))
            kind = "reply" if arrow == "-->" else "arrow"
            steps.append(Step(kind, names.index(left), names.index(right), rest))
        else:
            raise ValueError(f"line {number}: cannot read {raw!r}")
    return title, names, steps


def render(text: str) -> str:
    title, names, steps = parse(text)
    height = TOP + ROW * (len(steps) + 1) + 50
    x = [MARGIN + 60 + COLUMN * i for i in range(len(names))]
    left, right = 0.0, float(x[-1] + 60 + MARGIN)
    right = max(right, MARGIN + CHAR * 1.3 * len(title))
    for step in steps:
        half = CHAR * len(step.text) / 2 + 12
        if step.kind == "note":
            center = float(x[step.source])
        elif step.source == step.target:
            center = x[step.source] + 46 + half
        else:
            center = (x[step.source] + x[step.target]) / 2
        left = min(left, center - half - MARGIN / 2)
        right = max(right, center + half + MARGIN / 2)
    left, width = int(left), int(right - left)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="{left} 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="head" markerWidth="10" markerHeight="8" refX="9" refY="4" '
        'orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#1b1b1f"/></marker></defs>',
        f'<rect x="{left}" width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{MARGIN}" y="28" style="{FONT};font-size:15px;font-weight:600">'
        f"{escape(title)}</text>",
    ]
    bottom = height - 30
    for i, name in enumerate(names):
        box = max(120, int(CHAR * 1.1 * len(name)) + 20)
        out.append(
            f'<rect x="{x[i] - box // 2}" y="44" width="{box}" height="28" rx="4" '
            'fill="#e8eefc" stroke="#0b57d0"/>'
        )
        out.append(
            f'<text x="{x[i]}" y="62" text-anchor="middle" style="{FONT};font-weight:600">'
            f"{escape(name)}</text>"
        )
        out.append(
            f'<line x1="{x[i]}" y1="72" x2="{x[i]}" y2="{bottom}" stroke="#8a8a8a" '
            'stroke-dasharray="4 4"/>'
        )
    for row, step in enumerate(steps):
        y = TOP + ROW * row + 20
        if step.kind == "note":
            w = max(140, int(CHAR * len(step.text)) + 16)
            out.append(
                f'<rect x="{x[step.source] - w // 2}" y="{y - 16}" width="{w}" height="22" '
                'fill="#fff8d6" stroke="#b39700"/>'
            )
            out.append(
                f'<text x="{x[step.source]}" y="{y - 1}" text-anchor="middle" '
                f'style="{FONT}">{escape(step.text)}</text>'
            )
            continue
        dash = ' stroke-dasharray="6 3"' if step.kind == "reply" else ""
        if step.source == step.target:
            x0 = x[step.source]
            out.append(
                f'<path d="M{x0},{y - 6} h40 v14 h-38" fill="none" stroke="#1b1b1f"{dash} '
                'marker-end="url(#head)"/>'
            )
            out.append(
                f'<text x="{x0 + 46}" y="{y + 4}" style="{FONT}{HALO}">{escape(step.text)}</text>'
            )
            continue
        x0, x1 = x[step.source], x[step.target]
        out.append(
            f'<line x1="{x0}" y1="{y}" x2="{x1}" y2="{y}" stroke="#1b1b1f"{dash} '
            'marker-end="url(#head)"/>'
        )
        out.append(
            f'<text x="{(x0 + x1) // 2}" y="{y - 5}" text-anchor="middle" style="{FONT}{HALO}">'
            f"{escape(step.text)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    for source in sorted(HERE.glob("*.seq")):
        source.with_suffix(".svg").write_text(render(source.read_text("utf-8")), "utf-8")
        print(f"rendered {source.with_suffix('.svg').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
