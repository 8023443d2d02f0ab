"""The police and insurer's report of a lost case as a PDF, drawn with fpdf2.

fpdf2 because it is pure Python (WeasyPrint needs the system's Pango and Cairo, which a district's
server may not have), well kept, and writes Unicode text with a TrueType font: DejaVu Sans where
the system has it (Debian's fonts-dejavu-core), else the PDF core font, with what Latin-1 cannot
hold replaced. The page says the same as the HTML report (templates/lost_report.html).
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

from server.lost.listing import CaseRow
from server.terminal import printable

FONTS = Path("/usr/share/fonts/truetype/dejavu")


def _when(text: str | None) -> str:
    return (text or "—")[:16].replace("T", " ")


class _Report:
    def __init__(self) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_auto_page_break(True, margin=15)
        self.pdf.set_title("Homeroom: lost or stolen laptop")
        regular, bold = FONTS / "DejaVuSans.ttf", FONTS / "DejaVuSans-Bold.ttf"
        self.unicode = regular.exists() and bold.exists()
        if self.unicode:
            self.pdf.add_font("DejaVu", "", str(regular))
            self.pdf.add_font("DejaVu", "B", str(bold))
        self.family = "DejaVu" if self.unicode else "Helvetica"
        self.pdf.add_page()

    def _text(self, value: object) -> str:
        text = printable(value).replace("\\n", "\n") if value is not None else "—"
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def heading(self, text: str, size: int = 13) -> None:
        self.pdf.set_font(self.family, "B", size)
        self.pdf.multi_cell(0, 8, self._text(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font(self.family, "", 10)

    def line(self, text: object) -> None:
        self.pdf.multi_cell(0, 5.5, self._text(text), new_x="LMARGIN", new_y="NEXT")

    def field(self, label: str, value: object) -> None:
        self.line(f"{label}: {'—' if value in (None, '') else value}")

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def case_pdf(case: CaseRow) -> bytes:
    report = _Report()
    report.heading(f"Lost or stolen laptop: case {case.case_id}", 16)
    report.line("Prepared for the police and the insurer by the school district's IT department.")
    report.line("")
    report.field("Status", f"{case.status.replace('_', ' ')} ({case.kind})")
    report.field("Serial number", case.serial)
    report.field("Asset tag", case.asset_tag)
    report.field("Make and model", " ".join(x for x in (case.manufacturer, case.model) if x))
    report.field("Hostname", case.hostname)
    report.field("School", case.school)
    report.field("Owner (user)", case.assigned_user)
    report.field("Case opened", _when(case.opened_at))
    report.field("Case closed", _when(case.closed_at) if case.closed_at else None)
    report.heading("The report")
    if not case.reports:
        report.line(f"Marked {case.kind} by IT; no user report.")
    for filed in case.reports:
        report.line(
            f"{filed['reporter_name']} ({filed['reporter']}, {filed['contact']}) reported it "
            f"{filed['kind']} on "
            f"{_when(filed['made_at'])} UTC. Last seen {filed['last_seen_where'] or '—'} "
            f"{_when(filed['last_seen_at']) if filed['last_seen_at'] else ''}. "
            f"Police report: {filed['police_report'] or '—'}."
        )
        report.line(filed["what_happened"] or "")
    report.heading("Evidence timeline")
    if not case.evidence_records:
        report.line("No evidence was collected.")
    for record in case.evidence_records:
        networks = (
            ", ".join(f"{w.get('ssid', '')} ({w.get('bssid', '')})" for w in record["wifi"][:5]) or "no Wi-Fi"
        )
        near = f" — {record['seen_near']}" if record["seen_near"] else ""
        report.line(
            f"{_when(record['collected_at'])} UTC from {record['public_address'] or '—'}; {networks}{near}"
        )
    report.heading("Case timeline")
    for event in case.timeline:
        report.line(
            f"{_when(event['at'])} UTC  {event['event'].replace('_', ' ')}: "
            f"{event['status'].replace('_', ' ')}, by {event['actor']}"
        )
    return report.output()
