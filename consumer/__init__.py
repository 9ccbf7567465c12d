"""kafka-parquet-archiver: archive Kafka topics of JSON objects into rolling Parquet files."""

__version__ = "0.1.0"
