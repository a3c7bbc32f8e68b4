"""ordered_map: results in input order, a bounded number of jobs in flight, clean close."""

from __future__ import annotations

from gan_core.data.pool import ordered_map


def counting(n, consumed, closed):
    try:
        for i in range(n):
            consumed.append(i)
            yield -i
    finally:
        closed.append(True)


def test_order_window_and_close_with_worker_processes():
    consumed, closed = [], []
    results = ordered_map(abs, counting(50, consumed, closed), workers=2, window=3)
    first = next(results)
    assert first == 0 and len(consumed) <= 3  # streaming: not the whole input at once
    rest = [next(results) for _ in range(9)]
    assert rest == list(range(1, 10)) and len(consumed) <= 13
    results.close()  # early stop: pool joined, the input generator closed
    assert closed == [True] and len(consumed) < 50


def test_in_process_path_matches():
    consumed, closed = [], []
    assert list(ordered_map(abs, counting(5, consumed, closed), workers=1)) == [0, 1, 2, 3, 4]
    assert closed == [True]


def test_thread_pool_path_keeps_order_and_closes():
    consumed, closed = [], []
    results = ordered_map(abs, counting(40, consumed, closed), workers=3, window=4, threads=True)
    assert [next(results) for _ in range(5)] == [0, 1, 2, 3, 4] and len(consumed) <= 9
    results.close()
    assert closed == [True]
