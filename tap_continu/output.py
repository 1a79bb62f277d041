"""Singer message output: msgspec encoding, flushed at each message that is not a RECORD."""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class SingerOutput(MsgSpecWriter):
    """Writer that encodes with msgspec and flushes stdout only at non-RECORD messages.

    The SDK's writers flush after every message, one system call per record. Here RECORD
    lines stay in stdout's buffer until the next SCHEMA or STATE message, or until the
    buffer fills, so a STATE line never reaches the target before the records it covers.
    Records after the last STATE may be lost if the process is killed, but that STATE
    does not cover them, so the next run extracts them again.
    """

    @override
    def write_message(self, message: Message) -> None:
        line = self.format_message(message)
        binary = getattr(sys.stdout, "buffer", None)
        if binary is not None:
            binary.write(line)
        else:
            # A text stream without a buffer, such as io.StringIO in tests.
            sys.stdout.write(line.decode("utf-8"))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()
