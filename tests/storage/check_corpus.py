"""A corpus for the structural check's parity test: hand-encoded data sets that reach every
branch of the walk (implicit/explicit VR, both byte orders, defined and undefined lengths,
sequences, items, delimiters, UN sequences, encapsulated fragments, private and repeater tags,
Image Pixel sizes, deep nesting, File Meta variants), and seeded mutations (truncations, bytes
overwritten, lengths changed) of those and of real files."""

from __future__ import annotations

import random
import struct
from io import BytesIO

from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

UNDEFINED = 0xFFFFFFFF
SOP_INSTANCE = "1.2.826.0.1.3680043.8.498.1"
LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


class Encoder:
    """Elements, items and delimiters in one VR encoding and byte order."""

    def __init__(self, implicit: bool, little: bool = True):
        self.implicit, self.order = implicit, "<" if little else ">"

    def tag(self, tag: int) -> bytes:
        return struct.pack(self.order + "HH", tag >> 16, tag & 0xFFFF)

    def el(self, tag: int, vr: str, value: bytes, length: int | None = None) -> bytes:
        length = len(value) if length is None else length
        if self.implicit:
            return self.tag(tag) + struct.pack(self.order + "L", length) + value
        if vr in LONG_VRS:
            return (self.tag(tag) + vr.encode() + b"\0\0" + struct.pack(self.order + "L", length)
                    + value)
        return self.tag(tag) + vr.encode() + struct.pack(self.order + "H", length) + value

    def us(self, tag: int, value: int) -> bytes:
        return self.el(tag, "US", struct.pack(self.order + "H", value))

    def item(self, body: bytes, undefined: bool = False) -> bytes:
        if undefined:
            return self.tag(0xFFFEE000) + struct.pack(self.order + "L", UNDEFINED) + body + \
                self.tag(0xFFFEE00D) + b"\0\0\0\0"
        return self.tag(0xFFFEE000) + struct.pack(self.order + "L", len(body)) + body

    def sq(self, tag: int, items: bytes, undefined: bool = False, vr: str = "SQ") -> bytes:
        if undefined:
            return self.el(tag, vr, items + self.tag(0xFFFEE0DD) + b"\0\0\0\0", UNDEFINED)
        return self.el(tag, vr, items)


def uid(value: str) -> bytes:
    raw = value.encode()
    return raw + b"\0" if len(raw) % 2 else raw


def file_bytes(body: bytes, syntax: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = SOP_INSTANCE
    meta.TransferSyntaxUID = syntax
    out = BytesIO()
    out.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    return out.getvalue() + body


def header(enc: Encoder) -> bytes:
    return (enc.el(0x00080016, "UI", uid(CTImageStorage))
            + enc.el(0x00080018, "UI", uid(SOP_INSTANCE)) + enc.el(0x00080060, "CS", b"CT")
            + enc.el(0x00100010, "PN", b"Doe^Jane")
            + enc.el(0x00100020, "LO", b"PID 7 "))


def image(enc: Encoder, frames: bytes | None = b"2 ", photometric: bytes = b"MONOCHROME2 ",
          pixels: int | None = None, rows: int = 4, columns: int = 4) -> bytes:
    count = rows * columns * 2 * 2 if pixels is None else pixels
    return (enc.us(0x00280002, 1) + enc.el(0x00280004, "CS", photometric)
            + (enc.el(0x00280008, "IS", frames) if frames is not None else b"")
            + enc.us(0x00280010, rows) + enc.us(0x00280011, columns) + enc.us(0x00280100, 16)
            + enc.el(0x7FE00010, "OW", bytes(count)))


def nested(enc: Encoder, depth: int) -> bytes:
    inner = enc.el(0x00080100, "SH", b"T-1")
    for _ in range(depth):
        inner = enc.sq(0x00082218, enc.item(inner))
    return inner


def crafted() -> dict[str, bytes]:
    """Sound files covering the walk's branches (some left to the Python check: deflated,
    unknown syntaxes, nesting over 64, Number of Frames over 18 digits)."""
    imp, exp, big = Encoder(True), Encoder(False), Encoder(False, little=False)
    files = {}
    for name, enc, syntax in (("implicit", imp, ImplicitVRLittleEndian),
                              ("explicit", exp, ExplicitVRLittleEndian),
                              ("big endian", big, ExplicitVRBigEndian)):
        ref = enc.item(enc.el(0x00081150, "UI", uid(CTImageStorage)))
        body = (header(enc) + enc.sq(0x00081140, ref)  # defined length
                + enc.sq(0x00082218, enc.item(enc.el(0x00080100, "SH", b"T-D1"), True), True)
                + enc.el(0x00090010, "LO", b"PRIVATE ") + enc.el(0x00091001, "OB", ref)
                + enc.el(0x0020000D, "UI", uid("1.2.3.4")) + image(enc))
        files[name] = file_bytes(body, syntax)
    un_items = Encoder(True).item(Encoder(True).el(0x00100020, "LO", b"IN"), True)
    files["UN sequence"] = file_bytes(
        header(exp) + exp.sq(0x00111010, un_items, True, vr="UN") + image(exp),
        ExplicitVRLittleEndian)
    fragments = exp.item(b"") + exp.item(b"\xff\xd8\xff\xd9")
    files["encapsulated"] = file_bytes(
        header(exp) + image(exp, pixels=0)[:-12]
        + exp.el(0x7FE00010, "OB", fragments + exp.tag(0xFFFEE0DD) + b"\0\0\0\0", UNDEFINED),
        JPEGBaseline8Bit)
    files["repeater sequence"] = file_bytes(
        header(imp) + imp.sq(0x50002600, imp.item(imp.el(0x00080100, "SH", b"C1")))
        + imp.el(0x50012600, "OB", b"\x01\x02\x03\x04") + image(imp), ImplicitVRLittleEndian)
    files["nested 30"] = file_bytes(header(imp) + nested(imp, 30), ImplicitVRLittleEndian)
    files["nested 70"] = file_bytes(header(imp) + nested(imp, 70), ImplicitVRLittleEndian)
    for label, frames in (("no frames", None), ("frames blank", b"  "), ("frames 0", b"0 "),
                          ("frames text", b"x2"), ("frames padded", b" 3\0"),
                          ("frames 25 digits", b"1" * 25 + b" ")):
        files[label] = file_bytes(header(exp) + image(exp, frames=frames), ExplicitVRLittleEndian)
    files["subsampled"] = file_bytes(
        header(exp) + image(exp, photometric=b"YBR_FULL_422", pixels=8), ExplicitVRLittleEndian)
    files["short pixels"] = file_bytes(header(big) + image(big, pixels=30), ExplicitVRBigEndian)
    files["empty data set"] = file_bytes(b"", ExplicitVRLittleEndian)
    files["unknown syntax"] = file_bytes(header(exp), "1.2.3.4")
    files["not a syntax"] = file_bytes(header(exp), CTImageStorage)
    files["deflated garbage"] = file_bytes(b"\x01\x02\x03", DeflatedExplicitVRLittleEndian)
    files["undefined UT"] = file_bytes(header(exp) + exp.el(0x00204000, "UT", b"ab", UNDEFINED),
                                       ExplicitVRLittleEndian)
    files["stray Item Delimitation"] = file_bytes(header(imp) + imp.tag(0xFFFEE00D) + bytes(4),
                                                  ImplicitVRLittleEndian)
    files["Sequence Delimitation in defined"] = file_bytes(
        header(exp) + exp.sq(0x00081140, exp.tag(0xFFFEE0DD) + bytes(4)), ExplicitVRLittleEndian)
    files["fragment of undefined length"] = file_bytes(
        header(exp) + exp.el(0x7FE00010, "OB", exp.item(b"", True), UNDEFINED), JPEGBaseline8Bit)
    files["Sequence Delimitation missing"] = file_bytes(
        header(exp) + exp.sq(0x00082218, exp.item(b""), True)[:-8], ExplicitVRLittleEndian)
    good = files["explicit"]
    files["empty file"] = b""
    files["no preamble"] = b"\0" * 131
    files["no DICM"] = good[:128] + b"DICX" + good[132:]
    meta_end = 132 + 12 + struct.unpack("<L", good[140:144])[0]
    files["no File Meta"] = good[:132] + good[meta_end:]
    files["File Meta past the end"] = good[:150]
    files["File Meta header cut"] = good[:meta_end] + b"\x02\x00\x10\x00OB\0\0"
    return files


def mutations(name: str, raw: bytes, count: int, seed: int) -> dict[str, bytes]:
    """Seeded damage to one file: cut at many places, bytes overwritten, lengths changed."""
    rng = random.Random(f"{seed}:{name}")
    out = {}
    size = len(raw)
    head = min(size, 144 + 4000)  # headers live here; and the last 200 bytes
    offsets = sorted({rng.randrange(132, head) for _ in range(count)} |
                     {rng.randrange(max(132, size - 200), size) for _ in range(count // 4)}) \
        if size > 133 else []
    for at in offsets[: count // 2]:
        out[f"{name} cut at {at}"] = raw[:at]
    for at in offsets:
        width = rng.choice((1, 2, 4))
        junk = rng.choice((bytes(rng.randrange(256) for _ in range(width)),
                           b"\xff" * width, b"\0" * width, b"SQ"[:width], b"UN\0\0"[:width]))
        out[f"{name} {junk!r} at {at}"] = raw[:at] + junk + raw[at + len(junk):]
    return out
