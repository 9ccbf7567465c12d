"""Records whose header keys are not UTF-8, produced with librdkafka itself.

Producers in other languages may write any bytes as a header key; the Python client cannot (it
takes keys as text). This calls the librdkafka that confluent-kafka ships, through its
`rd_kafka_produceva` (rdkafka.h), with one record at a time: a real client and a real broker.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import confluent_kafka

# rd_kafka_vtype_t (rdkafka.h)
_END, _TOPIC, _PARTITION, _VALUE, _HEADER = 0, 1, 3, 4, 9
_PRODUCER = 0  # rd_kafka_type_t
FLUSH_TIMEOUT_MS = 30_000


class _Memory(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t)]


class _Header(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("val", ctypes.c_void_p), ("size", ctypes.c_ssize_t)]


class _Value(ctypes.Union):
    _fields_ = [
        ("cstr", ctypes.c_char_p),
        ("i32", ctypes.c_int32),
        ("mem", _Memory),
        ("header", _Header),
        ("pad", ctypes.c_char * 64),
    ]


class _Argument(ctypes.Structure):  # rd_kafka_vu_t
    _fields_ = [("vtype", ctypes.c_int), ("u", _Value)]


def _library() -> ctypes.CDLL:
    libraries = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    library = ctypes.CDLL(str(next(libraries.glob("librdkafka*.so*"))))
    library.rd_kafka_conf_new.restype = ctypes.c_void_p
    library.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t
    ]  # fmt: skip
    library.rd_kafka_new.restype = ctypes.c_void_p
    library.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    library.rd_kafka_produceva.restype = ctypes.c_void_p
    library.rd_kafka_produceva.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Argument), ctypes.c_size_t]
    library.rd_kafka_flush.argtypes = [ctypes.c_void_p, ctypes.c_int]
    library.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    return library


def produce_raw_headers(
    bootstrap: str, topic: str, partition: int, value: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """Produce one record whose header keys are the given bytes (without NUL); return once the
    client's queue is empty (a record it failed to deliver is missing from the topic)."""
    library = _library()
    error = ctypes.create_string_buffer(512)
    conf = library.rd_kafka_conf_new()
    assert library.rd_kafka_conf_set(conf, b"bootstrap.servers", bootstrap.encode(), error, 512) == 0
    client = library.rd_kafka_new(_PRODUCER, conf, error, 512)
    assert client, error.value
    try:
        arguments = (_Argument * (4 + len(headers)))()
        arguments[0].vtype, arguments[0].u.cstr = _TOPIC, topic.encode()
        arguments[1].vtype, arguments[1].u.i32 = _PARTITION, partition
        buffers = [ctypes.create_string_buffer(value, len(value))]
        arguments[2].vtype = _VALUE
        arguments[2].u.mem = _Memory(ctypes.cast(buffers[0], ctypes.c_void_p), len(value))
        for argument, (name, header_value) in zip(arguments[3:], headers, strict=False):
            buffers.append(ctypes.create_string_buffer(header_value, len(header_value)))
            argument.vtype = _HEADER
            argument.u.header = _Header(name, ctypes.cast(buffers[-1], ctypes.c_void_p), len(header_value))
        arguments[len(arguments) - 1].vtype = _END
        assert library.rd_kafka_produceva(client, arguments, len(arguments) - 1) is None
        assert library.rd_kafka_flush(client, FLUSH_TIMEOUT_MS) == 0, "the record was not delivered"
    finally:
        library.rd_kafka_destroy(client)
