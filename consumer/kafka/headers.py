"""Reading a message's headers without trusting the client with a header key that is not UTF-8.

Producers in some languages can write any bytes as a header key. The client then returns the
headers with a UnicodeDecodeError still set, and on a second call a list holding a NULL. Called
directly, as a method, the interpreter may carry on past that and raise the error later, after
the broken list was kept; called through methodcaller the result is checked at once: the call
raises SystemError and the list is discarded.
"""

from __future__ import annotations

from operator import methodcaller
from typing import cast

import confluent_kafka as ck

from consumer.records import Headers, RawHeaders, UnreadableHeaders

_HEADERS = methodcaller("headers")


def headers_of(message: ck.Message) -> RawHeaders:
    """The message's headers (None when it has none), or UnreadableHeaders; call it once per message."""
    try:
        return cast(Headers | None, _HEADERS(message))
    except SystemError as exc:
        return UnreadableHeaders(f"a header key is not UTF-8: {exc.__cause__}")
