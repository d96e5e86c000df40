"""Deterministic demo files and a generator of realistic npaths."""

from __future__ import annotations

import datetime
import random
import struct
import zlib

# npath prefixes: N_ is a permanent file, TN_ a temporary file, ALIOSS_ a large file.
NPATH_KINDS = ("N", "TN", "ALIOSS")

# The span of days that generated N_ paths fall in.
_FIRST_DAY = datetime.date(2019, 1, 1)
_LAST_DAY = datetime.date(2025, 12, 31)


def make_npath(
    kind: str = "N",
    rng: random.Random | None = None,
    ext: str | None = None,
    day: datetime.date | None = None,
) -> str:
    """
    Generate an npath of the shape the file service uses.

    Shapes: ``N_YYYYMM_DD_<32 hex>[.ext]`` (permanent file), ``TN_<32 hex>[.ext]`` (temporary file) and
    ``ALIOSS_<32 hex>[.ext]`` (large file). Pass a seeded ``rng`` to get the same paths on every run.

    :param kind: "N", "TN" or "ALIOSS".
    :param rng: source of the hex digits and of the day; None draws from a fresh, unseeded generator.
    :param ext: file extension without the dot, e.g. "pdf"; None leaves it off, as older npaths do.
    :param day: the day in an N_ path; None draws one from ``rng`` between 2019 and 2025.
    """
    if kind not in NPATH_KINDS:
        raise ValueError(f"npath kind must be one of {', '.join(NPATH_KINDS)}, got {kind!r}")
    generator = rng if rng is not None else random.Random()
    if kind == "N":
        if day is None:
            day = _FIRST_DAY + datetime.timedelta(days=generator.randrange((_LAST_DAY - _FIRST_DAY).days + 1))
        path = f"N_{day:%Y%m}_{day:%d}_{generator.getrandbits(128):032x}"
    else:
        path = f"{kind}_{generator.getrandbits(128):032x}"
    if ext is not None:
        suffix = ext.removeprefix(".")
        if not suffix.isalnum():
            raise ValueError(f"file extension must be letters and digits only, got {ext!r}")
        path = f"{path}.{suffix}"
    return path


def _demo_pdf() -> bytes:
    """Build a one-page PDF with a correct cross-reference table."""
    text = b"BT /F1 18 Tf 72 720 Td (Fxiaoke emulator demo invoice 2024-10-22) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    document = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(document))
        document += b"%d 0 obj\n%s\nendobj\n" % (number, content)
    xref_offset = len(document)
    document += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        document += b"%010d 00000 n \n" % offset
    document += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_offset,
    )
    return bytes(document)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _demo_png(width: int = 48, height: int = 48) -> bytes:
    """Build an RGB gradient PNG; its pixel data is stored uncompressed, so the bytes never depend on zlib."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows += bytes((x * 255 // (width - 1), y * 255 // (height - 1), 128))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 0))
        + _png_chunk(b"IEND", b"")
    )


def _demo_csv(rows: int = 200) -> bytes:
    rng = random.Random(1022)
    lines = ["_id,name,owner,amount,last_modified_time"]
    for index in range(rows):
        record_id = f"{rng.getrandbits(96):024x}"
        amount = rng.randrange(100, 1_000_000) / 100
        modified_ms = 1_729_555_200_000 + index * 61_000
        lines.append(f"{record_id},Demo account {index + 1},1000,{amount:.2f},{modified_ms}")
    return ("\n".join(lines) + "\n").encode()


_DEMO_NOTE = (
    b"Fxiaoke emulator demo note\n"
    b"\n"
    b"This text file is served by the local Open API emulator. Its npath carries the .txt extension,\n"
    b"so a pipeline can keep the original file name when it downloads it.\n"
)

#: Fixed demo files by npath, for tests and the demo pipeline: a PDF, a PNG, a CSV, a text file,
#: an older npath without extension and a 200 KB large file (``ALIOSS_``). The content is the same on every run.
DEMO_FILES: dict[str, bytes] = {
    "N_202410_22_d0b3bb728c327017b09aa09c93e86e89.pdf": _demo_pdf(),
    "N_202410_22_a92a8edfc7df2be3e53d0f9d6a76a80f.png": _demo_png(),
    "N_202410_22_4f32ed51cd92236c9dbd6b4b5788fc85.csv": _demo_csv(),
    "N_202410_22_3a9a081576f6f27fa0e93929f385549c.txt": _DEMO_NOTE,
    "N_202410_22_0c36e9d0a4aab6035b66f776a1a6b553": random.Random(202410).randbytes(24 * 1024),
    "ALIOSS_b76aa83b15197631dcf992451e7574d1": random.Random(20241022).randbytes(200 * 1024),
}

#: The demo npaths, in a fixed order.
DEMO_PATHS: list[str] = list(DEMO_FILES)
