"""C-FIND responses without rebuilding the same command set for every answer.

pynetdicom builds every DIMSE message's command set from scratch: a pydicom data set of eight
elements, set one by one with validation, encoded once to work out the group length and again
to be sent. For a worklist answer that is about 0.2 ms, as much as building and encoding the
answer itself, and every Pending response to one request has exactly the same command set
(same SOP class, message ID, status and data set type). This module memoises it: the first
response of a kind is built by pynetdicom as usual, its encoded command set is kept (as pydicom
raw elements), and later responses with the same values reuse it; pydicom then copies the bytes
as they are. The bytes sent are the same either way (tests/worklist/test_answers.py compares
them); only the work is saved.

It hooks into pynetdicom 3's table of response message classes (`pynetdicom.dimse.
_RSP_TO_MESSAGE`) for C-FIND only; the messages are still pynetdicom's own `C_FIND_RSP`
objects (event handlers see the usual command set). If that table is not what we expect (a
pynetdicom that works differently), nothing is changed.
"""

from __future__ import annotations

import logging
from io import BytesIO
from typing import Any

from pydicom import Dataset
from pydicom.charset import default_encoding
from pynetdicom import dimse as _dimse
from pynetdicom.dimse_messages import _COMMAND_SET_KEYWORDS, C_FIND_RSP
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.dsutils import decode, encode

log = logging.getLogger(__name__)

#: The command elements pynetdicom fills from a C-FIND response primitive.
FIELDS = tuple(k for k in _COMMAND_SET_KEYWORDS["C-FIND-RSP"]
               if k not in ("CommandGroupLength", "CommandField", "CommandDataSetType"))
CACHE_LIMIT = 256  # kinds of response kept (one per request and status, in practice)

_cache: dict[tuple, dict] = {}
_installed = False


#: What pynetdicom's DIMSEMessage.__init__ sets up (checked by `install`).
MESSAGE_STATE = ("context_id", "encoded_command_set", "data_set", "command_set",
                 "_data_set_path", "_data_set_file")


def response_message() -> C_FIND_RSP:
    """A pynetdicom C-FIND-RSP message whose command set is reused when it can be. Its empty
    command set is made only when pynetdicom has to fill it (setting its eight elements one
    by one costs a quarter of what is saved)."""
    message = C_FIND_RSP.__new__(C_FIND_RSP)
    message.context_id = None
    message.encoded_command_set = BytesIO()
    message.data_set = BytesIO()
    message.command_set = Dataset()
    message._data_set_path = message._data_set_file = None
    message.primitive_to_message = _Converter(message)
    return message


class _Converter:
    """`primitive_to_message` for one message: from the cache, or pynetdicom's own."""

    __slots__ = ("message",)

    def __init__(self, message: C_FIND_RSP):
        self.message = message

    def __call__(self, primitive: C_FIND) -> None:
        message = self.message
        key = _key(primitive)
        elements = _cache.get(key) if key is not None else None
        if elements is None:  # pynetdicom builds it, and we keep it for the next ones
            message.__dict__.update(C_FIND_RSP().__dict__)
            C_FIND_RSP.primitive_to_message(message, primitive)
            if key is not None:
                _remember(key, message.command_set)
            return
        command_set = Dataset(dict(elements))
        # the Command Set is always Implicit VR Little Endian without a character set
        command_set.set_original_encoding(True, True, default_encoding)
        message.command_set = command_set
        message.data_set = primitive.Identifier
        message._data_set_path = None


def _remember(key: tuple, command_set: Dataset) -> None:
    encoded = encode(command_set, True, True)
    if not encoded:
        return
    raw = decode(BytesIO(encoded), True, True)  # elements stay raw until read
    if len(_cache) >= CACHE_LIMIT:
        _cache.clear()
    _cache[key] = {tag: raw.get_item(tag) for tag in raw.keys()}


def _key(primitive: C_FIND) -> tuple | None:
    """What the command set depends on, or None when it cannot be reused (an unhashable or
    unusual value, a data set sent from a file)."""
    if getattr(primitive, "_dataset_path", None) is not None:
        return None
    values: list[Any] = [bool(primitive.Identifier)]
    for keyword in FIELDS:
        value = getattr(primitive, keyword, None)
        if not isinstance(value, str | int | type(None)):
            return None
        values.append(value)
    return tuple(values)


def install() -> None:
    """Let pynetdicom build C-FIND responses through `response_message` (idempotent)."""
    global _installed
    if _installed:
        return
    table = getattr(_dimse, "_RSP_TO_MESSAGE", None)
    if (not isinstance(table, dict) or table.get(C_FIND) is not C_FIND_RSP
            or sorted(C_FIND_RSP().__dict__) != sorted(MESSAGE_STATE)):
        log.info("pynetdicom's response table is not as expected: C-FIND responses are "
                 "built the usual way")
        return
    table[C_FIND] = response_message
    _installed = True
