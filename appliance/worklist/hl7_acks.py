"""The HL7 acknowledgement for every message: built with the `hl7` package when the message
parses with a complete MSH, else from whatever can be read of its MSH (field separator,
encoding characters, control ID). An interface engine resends a message that gets no answer
forever, so `acknowledgement()` never raises.

MSA-1 is the code (AA, AE, AR), MSA-2 echoes MSH-10, MSA-3 and an ERR segment carry the reason.
"""

from __future__ import annotations

import datetime
import logging
import re

import hl7

log = logging.getLogger(__name__)

APPLICATION = "EDGEBOX"
DEFAULT_VERSION = "2.5"
DEFAULT_ENCODING = "^~\\&"
REASON_MAX = 200
#: HL7 table 0357 (message error condition codes) for ERR-3, by the start of the reason.
ERROR_CODES = (
    ("required segment", "100^Segment sequence error"),
    ("unsupported HL7 version", "203^Unsupported version id"),
    ("unsupported message type", "200^Unsupported message type"),
    ("unsupported order control", "201^Unsupported event code"),
    ("internal error", "207^Application internal error"),
)
_VERSION = re.compile(r"2\.[0-9](\.[0-9])?")
_SAFE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]")


def acknowledgement(text: str, code: str, reason: str, message: hl7.Message | None = None) -> str:
    """The ACK (as text, segments separated by CR) for the message `text` (parsed: `message`)."""
    if message is not None:
        try:
            return _library_ack(message, code, reason)
        except Exception as exc:  # an MSH too short for create_ack: answer from the raw text
            log.debug("ACK from the raw MSH (%s: %s)", type(exc).__name__, exc)
    try:
        return _raw_ack(text, code, reason)
    except Exception:  # never: _raw_ack checks every value it reads; the last resort is here
        log.exception("ACK from the raw MSH failed")
        return _raw_ack("", code, reason)


def _library_ack(message: hl7.Message, code: str, reason: str) -> str:
    msh = message.segment("MSH")
    if len(msh) <= 12:
        raise ValueError("MSH ends before MSH-12")
    ack = message.create_ack(code, application=APPLICATION)
    separators = str(msh[1]), str(msh[2])
    reason = escape(reason, *separators)
    ack.segment("MSA").assign_field(reason, 3)
    text = str(ack).rstrip("\r")
    if code != "AA":
        text += "\r" + _err_segment(reason, *separators)
    return text


def _raw_ack(text: str, code: str, reason: str) -> str:
    head = text.replace("\n", "\r").split("\r", 1)[0] if text.startswith("MSH") else ""
    fs, enc = _separators(head)
    fields = head.split(fs) if head else []

    def field(number: int) -> str:  # MSH-1 is the separator itself: fields[n - 1] is MSH-n
        value = fields[number - 1] if 2 <= number <= len(fields) else ""
        return _SAFE.sub("", value)[:199]

    version = field(12).split(enc[0])[0]
    version = version if _VERSION.fullmatch(version) else DEFAULT_VERSION
    kind = field(9).split(enc[0])
    trigger = kind[1] if len(kind) > 1 and re.fullmatch(r"[A-Z0-9]{3}", kind[1]) else ""
    processing = field(11)[:1] if field(11)[:1] in ("D", "P", "T") else "P"
    stamp = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
    c = enc[0]
    msh = fs.join(["MSH", enc, APPLICATION, "", field(3), field(4), stamp, "",
                   f"ACK{c}{trigger}{c}ACK" if trigger else "ACK",
                   hl7.generate_message_control_id(), processing, version])
    reason = escape(reason, fs, enc)
    msa = fs.join(["MSA", code, field(10), reason])
    segments = [msh, msa] + ([_err_segment(reason, fs, enc)] if code != "AA" else [])
    return "\r".join(segments)


def _separators(head: str) -> tuple[str, str]:
    """(field separator, encoding characters) of an MSH, or the defaults when unusable."""
    fs = head[3] if len(head) > 3 else "|"
    if not _delimiter(fs):
        return "|", DEFAULT_ENCODING
    enc = head[4:].split(fs, 1)[0]
    if 2 <= len(enc) <= 5 and len(set(enc)) == len(enc) and fs not in enc \
            and all(_delimiter(c) for c in enc):
        return fs, enc
    return (fs, DEFAULT_ENCODING) if fs not in DEFAULT_ENCODING else ("|", DEFAULT_ENCODING)


def _delimiter(char: str) -> bool:
    return len(char) == 1 and 0x21 <= ord(char) <= 0x7E and not char.isalnum()


def escape(text: str, fs: str, enc: str) -> str:
    """`text` (its first REASON_MAX characters) as an HL7 ST value under these separators."""
    text = _SAFE.sub(" ", text.replace("\r", " ").replace("\n", " "))[:REASON_MAX]
    if len(enc) >= 3:  # the escape character is the third encoding character
        esc = enc[2]
        names = {esc: "E", fs: "F", enc[0]: "S", enc[1]: "R"}
        if len(enc) >= 4:
            names[enc[3]] = "T"
        text = "".join(f"{esc}{names[c]}{esc}" if c in names else c for c in text)
    else:
        text = "".join(" " if c == fs or c in enc else c for c in text)
    return text


def _err_segment(reason: str, fs: str, enc: str) -> str:
    plain = reason.lower()
    code = next((c for start, c in ERROR_CODES if plain.startswith(start.lower())),
                "207^Application internal error")
    if "not an hl7" in plain or "over the size limit" in plain:
        code = "102^Data type error"
    code = code.replace("^", enc[0]) + f"{enc[0]}HL70357"
    severity = "E"
    # ERR-3 error code, ERR-4 severity, ERR-8 user message (v2.5 layout)
    return fs.join(["ERR", "", "", code, severity, "", "", "", reason])
