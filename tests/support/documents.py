"""Real small documents built in code: a minimal valid PDF, a docx, a noisy HTML page."""

from __future__ import annotations

import io

import docx


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text line per string, xref offsets computed."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
        ops += [f"({line.replace('(', '[').replace(')', ']')}) Tj T*" for line in lines]
        stream = "\n".join([*ops, "ET"]).encode("latin-1")
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i}"
            f" 0 R /Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    if title:
        objs.append(f"<< /Title ({title}) >>".encode())
    return pdf_file(objs, info=len(objs) if title else None)


def pdf_file(objs: list[bytes], info: int | None = None) -> bytes:
    """Objects 1..n (1 is the catalog) written out as a PDF file: header, bodies, the
    xref table of their offsets, the trailer (with object `info` as /Info)."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    ref = f" /Info {info} 0 R" if info is not None else ""
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R{ref} >>\n".encode()
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Employee Handbook", 0)
    document.add_paragraph("Welcome aboard, new colleague.")
    document.add_heading("Leave policy", 1)
    document.add_paragraph("Everyone gets 25 vacation days.")
    document.add_heading("Sick leave", 2)
    table = document.add_table(rows=2, cols=2)
    for (row, col), text in {(0, 0): "Type", (0, 1): "Days", (1, 0): "Sick", (1, 1): "10"}.items():
        table.cell(row, col).text = text
    document.add_paragraph("Report sickness before 9am.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


NOISY_HTML = b"""<!DOCTYPE html>
<html><head><title>Reset password - ACME Help</title>
<style>.menu { color: red } /* stylenoise */</style>
<script>var scriptnoise = "trackme";</script></head>
<body>
<header><a href="/">headernoise logo</a></header>
<nav><ul><li><a href="/a">navnoise one</a></li></ul></nav>
<div class="cookie-banner">cookienoise: we use cookies</div>
<main>
  <h1 id="reset">Reset your password</h1>
  <p>Open <b>Settings</b> and choose
     <i>Security</i>.</p>
  <noscript>noscriptnoise</noscript>
  <section id="two-factor"><h2>Two-factor <em>login</em></h2>
    <p>Install an authenticator app.</p>
    <form><label>formnoise</label><input name="q"></form>
    <table><tr><th>Plan</th><th>Methods</th></tr><tr><td>Free</td><td>SMS</td></tr></table>
  </section>
  <h3><a name="legacy"></a>Legacy accounts</h3>
  <pre>reset --user  alice
    --force</pre>
  <div style="display: none">hiddennoise</div>
</main>
<aside>asidenoise related links</aside>
<footer>footernoise copyright</footer>
<svg><text>svgnoise</text></svg><iframe src="x">iframenoise</iframe>
</body></html>"""
