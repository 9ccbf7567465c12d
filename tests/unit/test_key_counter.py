"""KeyCounter: bounded, decaying key frequencies from sampled rows."""

from __future__ import annotations

from consumer.key_counter import DECAY_ROWS, SAMPLE_ROWS, KeyCounter


class TestKeyCounter:
    def test_counts_rows_carrying_each_key(self) -> None:
        """Each row adds one to the count of each of its keys."""
        counter = KeyCounter(capacity=16)
        counter.observe([{"a": 1, "b": 2}, {"a": None}, {"c": 3}])
        assert [counter.count(key) for key in "abcz"] == [2, 1, 1, 0]
        assert counter.rows == 3
        assert len(counter) == 3

    def test_samples_large_batches(self) -> None:
        """A batch of 4 x SAMPLE_ROWS rows counts only every 4th row."""
        counter = KeyCounter(capacity=16)
        counter.observe([{"a": 1}] * (4 * SAMPLE_ROWS))
        assert counter.rows == SAMPLE_ROWS
        assert counter.count("a") == SAMPLE_ROWS

    def test_keeps_the_most_frequent_keys_past_twice_capacity(self) -> None:
        """Beyond 2 x capacity tracked keys, only the `capacity` most frequent survive."""
        counter = KeyCounter(capacity=4)
        counter.observe([{"hot": 1, "warm": 1}] * 10)
        counter.observe([{f"k{i}": 1} for i in range(8)])
        assert len(counter) == 4
        assert counter.count("hot") == 10
        assert counter.count("warm") == 10

    def test_counts_decay(self) -> None:
        """Past DECAY_ROWS sampled rows, counts and the row total halve and single sightings vanish."""
        counter = KeyCounter(capacity=16)
        counter.observe([{"once": 1}])
        batch = [{"a": 1}] * SAMPLE_ROWS
        while counter.rows + SAMPLE_ROWS <= DECAY_ROWS:
            counter.observe(batch)
        before = counter.count("a")
        assert counter.count("once") == 1
        counter.observe(batch)
        assert counter.count("a") == (before + SAMPLE_ROWS) // 2
        assert counter.rows <= DECAY_ROWS // 2 + SAMPLE_ROWS
        assert counter.count("once") == 0

    def test_rows_alike_count_as_if_read(self) -> None:
        """Told that rows all carry exactly some keys, the counter counts what reading a sample of
        them would, for batches below, at and above the sample size, and for none."""
        keys = ["a", "b", "c"]
        for size in (0, 1, SAMPLE_ROWS - 1, SAMPLE_ROWS, SAMPLE_ROWS + 1, 1000, 5000):
            read, told = KeyCounter(capacity=16), KeyCounter(capacity=16)
            read.observe([dict.fromkeys(keys, 1) for _ in range(size)])
            told.observe_alike(keys, size)
            assert (told.rows, len(told)) == (read.rows, len(read)), size
            assert [told.count(key) for key in keys] == [read.count(key) for key in keys], size
