"""The structural check of a received C-STORE data set, before it is acknowledged: every
element's tag, VR and length, every sequence, item and delimiter, and the end of the data set
exactly where the file ends. Values are not decoded (pixel data least of all); only the few
Image Pixel attributes needed to tell whether native pixel data is as long as Rows x Columns x
... say are read.

pydicom's reader is lenient on purpose and cannot be used for this: at the end of a file it
returns short values without a word, reads an unknown VR as implicit VR, and leaves defined-length
sequences unparsed. A PACS is not lenient: an object it cannot parse is refused on every forward
attempt. So the appliance refuses it while the sender still has it (0xC000, with the reason).

The walk reads the received file through mmap and touches only element headers: about the same
cost for a 0.5 MB CT as for an 18 MB DX (see docs/benchmarks.md). On its way it copies out the
raw values of the top-level elements a caller asks for (the storage index's few attributes), so
they need no second parse of the file.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from pydicom.datadict import dictionary_VR
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_16, EXPLICIT_VR_LENGTH_32

from appliance.core.errors import ApplianceError

_LONG_VRS = frozenset(str(vr).encode() for vr in EXPLICIT_VR_LENGTH_32)
_SHORT_VRS = frozenset(str(vr).encode() for vr in EXPLICIT_VR_LENGTH_16)
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
#: Image Pixel attributes read (US, or IS for Number of Frames) to size native pixel data.
_PIXEL_SIZE_TAGS = {0x00280002: "samples", 0x00280004: "photometric", 0x00280008: "frames",
                    0x00280010: "rows", 0x00280011: "columns", 0x00280100: "bits"}
#: A deflated data set is inflated in memory to be checked; larger ones are refused.
MAX_INFLATED = 256 * 2**20


class MalformedDataSet(ApplianceError, ValueError):
    """A received data set does not parse; the message says where and why."""


def _check_delimiter(kind: str, misplaced: str, delimited: bool, length: int, pos: int) -> None:
    """An Item or Sequence Delimitation Item: only where the length was undefined, length 0."""
    if not delimited:
        raise MalformedDataSet(f"{kind} Delimitation Item {misplaced} at offset {pos}")
    if length != 0:
        raise MalformedDataSet(f"{kind} Delimitation Item with length {length}")


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


class _Walker:
    """Walks one encoded data set (explicit or implicit VR, either byte order)."""

    def __init__(self, buf, implicit: bool, little: bool, native_pixels: bool,
                 wanted: Collection[int] = ()):
        self.buf = buf
        self.wanted = wanted
        self.values: dict[int, bytes] = {}
        self.implicit = implicit
        order = "<" if little else ">"
        self.tag_length = struct.Struct(order + "HHL").unpack_from   # tag + 32-bit length
        self.tag_vr_short = struct.Struct(order + "HH2sH").unpack_from  # explicit, 16-bit
        self.u32 = struct.Struct(order + "L").unpack_from
        self.u16 = struct.Struct(order + "H").unpack_from
        self.native_pixels = native_pixels
        self.pixel_size: dict[str, int] = {}

    def data_set(self, pos: int, limit: int, delimited: bool, implicit: bool,
                 top: bool = False) -> int:
        """Walk elements from `pos`: up to exactly `limit`, or (`delimited`) up to an Item
        Delimitation Item before it. Returns the position after the last byte walked."""
        buf = self.buf
        while True:
            if pos == limit:
                if delimited:
                    raise MalformedDataSet("item of undefined length has no Item "
                                           "Delimitation Item before the end")
                return pos
            if pos + 8 > limit:
                raise MalformedDataSet(f"{limit - pos} stray bytes after the last element "
                                       f"(offset {pos})")
            if implicit:
                group, element, length = self.tag_length(buf, pos)
                vr = None
                value = pos + 8
            else:
                group, element, vr, length = self.tag_vr_short(buf, pos)
                if vr in _LONG_VRS:
                    if pos + 12 > limit:
                        raise MalformedDataSet(f"element header cut at offset {pos}")
                    length = self.u32(buf, pos + 8)[0]
                    value = pos + 12
                elif vr in _SHORT_VRS:
                    value = pos + 8
                elif group == 0xFFFE:
                    length = self.tag_length(buf, pos)[2]
                    value = pos + 8
                else:
                    raise MalformedDataSet(
                        f"element {_tag(group << 16 | element)} at offset {pos} has no valid "
                        f"VR ({vr!r}): not encoded in the transfer syntax's VR encoding")
            tag = group << 16 | element
            if tag == _ITEM_END:
                _check_delimiter("Item", "out of place", delimited, length, pos)
                return value
            if group == 0xFFFE:
                raise MalformedDataSet(f"{_tag(tag)} outside a sequence at offset {pos}")
            if group in (0x0000, 0x0002):
                raise MalformedDataSet(f"command or File Meta element {_tag(tag)} inside "
                                       f"the data set at offset {pos}")
            if length == _UNDEFINED:
                pos = self._undefined(tag, vr, value, limit, implicit)
                continue
            end = value + length
            if end > limit:
                raise MalformedDataSet(
                    f"element {_tag(tag)} at offset {pos} has length {length}, "
                    f"{end - limit} bytes past the end of its "
                    f"{'data set' if top else 'item or sequence'}")
            if vr == b"SQ" or (implicit and vr is None and _is_sequence(tag)):
                self.sequence(value, end, False, implicit, fragments=False)
            elif top:
                self._top_level(tag, vr, value, length, implicit)
            pos = end

    def _undefined(self, tag: int, vr, value: int, limit: int, implicit: bool) -> int:
        """An element of undefined length: a sequence, a UN sequence or encapsulated pixels."""
        if vr == b"UN":  # PS3.5 6.2.2: its items are encoded in implicit VR little endian
            return self.sequence(value, limit, True, True, fragments=False)
        if vr == b"SQ" or (vr is None and tag != _PIXEL_DATA):
            return self.sequence(value, limit, True, implicit, fragments=False)
        if vr in (b"OB", b"OW") or (vr is None and tag == _PIXEL_DATA):
            return self.sequence(value, limit, True, implicit, fragments=True)
        raise MalformedDataSet(f"element {_tag(tag)} ({vr.decode(errors='replace')}) has "
                               f"undefined length, allowed only for SQ, UN and pixel data")

    def sequence(self, pos: int, limit: int, delimited: bool, implicit: bool,
                 fragments: bool) -> int:
        """Walk items (data sets, or opaque `fragments` of encapsulated pixel data)."""
        buf = self.buf
        while True:
            if pos == limit:
                if delimited:
                    raise MalformedDataSet("sequence of undefined length has no Sequence "
                                           "Delimitation Item before the end")
                return pos
            if pos + 8 > limit:
                raise MalformedDataSet(f"item header cut at offset {pos}")
            group, element, length = self.tag_length(buf, pos)
            tag = group << 16 | element
            if tag == _SEQUENCE_END:
                _check_delimiter("Sequence", "in a sequence of defined length", delimited,
                                 length, pos)
                return pos + 8
            if tag != _ITEM:
                raise MalformedDataSet(f"{_tag(tag)} where an item was expected at "
                                       f"offset {pos}")
            start = pos + 8
            if length == _UNDEFINED:
                if fragments:
                    raise MalformedDataSet(f"pixel data fragment of undefined length at "
                                           f"offset {pos}")
                pos = self.data_set(start, limit, True, implicit)
                continue
            end = start + length
            if end > limit:
                raise MalformedDataSet(f"item at offset {pos} has length {length}, "
                                       f"{end - limit} bytes past the end of its sequence")
            if not fragments:
                self.data_set(start, end, False, implicit)
            pos = end

    def _top_level(self, tag: int, vr, value: int, length: int, implicit: bool) -> None:
        """Copy a wanted value; note the Image Pixel sizes and check native pixel data against
        them."""
        if tag in self.wanted:
            self.values[tag] = bytes(self.buf[value:value + length])
        name = _PIXEL_SIZE_TAGS.get(tag)
        if name == "frames":
            text = bytes(self.buf[value:value + length]).strip(b" \0")
            if text.isdigit():
                self.pixel_size[name] = int(text)
        elif name == "photometric":  # 4:2:2 / 4:2:0 subsampled colour is shorter: not sized
            if b"42" in bytes(self.buf[value:value + length]):
                self.pixel_size["subsampled"] = 1
        elif name is not None and length == 2:
            self.pixel_size[name] = self.u16(self.buf, value)[0]
        elif tag == _PIXEL_DATA and self.native_pixels:
            expected = self.expected_pixel_bytes()
            if expected is not None and length < expected:
                raise MalformedDataSet(
                    f"pixel data is {length} bytes, {expected - length} short of the "
                    f"{expected} that Rows, Columns, Samples, Bits Allocated and Frames "
                    f"call for")

    def expected_pixel_bytes(self) -> int | None:
        size = self.pixel_size
        if not {"rows", "columns", "bits"} <= size.keys() or "subsampled" in size:
            return None
        bits = (size["rows"] * size["columns"] * size.get("samples", 1)
                * max(size.get("frames", 1), 1) * size["bits"])
        return (bits + 7) // 8


def _is_sequence(tag: int) -> bool:
    """In implicit VR a defined-length sequence is known only from the data dictionary."""
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False  # a private element: walked as opaque bytes (its length is checked)


def _file_meta_end(buf, size: int) -> tuple[int, str]:
    """Skip the preamble and the File Meta group; returns (data set offset, transfer syntax)."""
    if size < 132 or buf[128:132] != b"DICM":
        raise MalformedDataSet("no DICOM file preamble")
    walker = _Walker(buf, implicit=False, little=True, native_pixels=False)
    pos, syntax = 132, ""
    while pos + 8 <= size and walker.u16(buf, pos)[0] == 0x0002:
        group, element, vr, length = walker.tag_vr_short(buf, pos)
        value = pos + 8
        if vr in _LONG_VRS:
            length, value = walker.u32(buf, pos + 8)[0], pos + 12
        if value + length > size:
            raise MalformedDataSet("File Meta Information runs past the end")
        if element == 0x0010:
            syntax = bytes(buf[value:value + length]).rstrip(b"\0 ").decode("ascii", "replace")
        pos = value + length
    if not syntax:
        raise MalformedDataSet("no Transfer Syntax UID in the File Meta Information")
    return pos, syntax


def _inflate(data) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_INFLATED)
    except zlib.error as exc:
        raise MalformedDataSet(f"deflated data set does not inflate: {exc}") from None
    if inflater.unconsumed_tail:
        raise MalformedDataSet(f"deflated data set inflates to more than "
                               f"{MAX_INFLATED // 2**20} MB")
    if not inflater.eof:
        raise MalformedDataSet("deflated data set is cut short")
    # Bytes after the end of the deflate stream (a pad byte, a gzip trailer some writers
    # leave) are not part of the data set and no reader looks at them.
    return out


@dataclass(frozen=True)
class CheckedFile:
    """What the check learnt of a file that parses: its transfer syntax and the raw values
    (as encoded, padding included) of the wanted top-level elements present."""

    transfer_syntax: str
    values: dict[int, bytes]


def check_received_file(path: str | os.PathLike,
                        wanted: Collection[int] = frozenset()) -> CheckedFile:
    """Raise MalformedDataSet unless the file's data set parses to its very end; the raw
    values of the `wanted` top-level tags (ints, group << 16 | element) found on the way."""
    with open(Path(path), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise MalformedDataSet("empty file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            start, syntax = _file_meta_end(buf, size)
            ts = UID(syntax)
            if not ts.is_transfer_syntax:
                raise MalformedDataSet(f"unknown transfer syntax {syntax}")
            if ts.is_deflated:
                data = _inflate(buf[start:])
                start, size = 0, len(data)
            else:
                data = buf
            walker = _Walker(data, implicit=ts.is_implicit_VR, little=ts.is_little_endian,
                             native_pixels=not ts.is_encapsulated, wanted=wanted)
            try:
                walker.data_set(start, size, False, ts.is_implicit_VR, top=True)
            except RecursionError:
                raise MalformedDataSet("sequences nested too deeply") from None
            except struct.error as exc:  # cannot happen with the bounds checked; be safe
                raise MalformedDataSet(f"cut element: {exc}") from None
    return CheckedFile(syntax, walker.values)
