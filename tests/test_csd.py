from hypothesis import given, strategies as st

from jpq_hw.arith.csd import adding_digits, binary_digits, csd_cost, csd_digits


@given(st.integers(-(1 << 40), 1 << 40))
def test_csd_digits_sum_to_the_constant_and_are_non_adjacent(c):
    digits = csd_digits(c)
    assert sum(d << p for p, d in digits) == c
    positions = [p for p, _ in digits]
    assert all(b - a >= 2 for a, b in zip(positions, positions[1:]))
    assert all(d in (-1, 1) for _, d in digits)


@given(st.integers(-(1 << 16), 1 << 16))
def test_csd_never_has_more_digits_than_binary(c):
    assert len(csd_digits(c)) <= len(binary_digits(c))
    assert sum(d << p for p, d in binary_digits(c)) == c


def test_known_costs():
    assert csd_cost(0) == 0 and csd_cost(1) == 0 and csd_cost(-64) == 0
    assert csd_digits(7) == [(0, -1), (3, 1)]  # 8 - 1: one adder instead of two
    assert csd_cost(105) == 3  # 128 - 32 + 8 + 1
    assert csd_cost(0b0101_0101) == 3


def test_average_adders_for_8bit_odd_constants_matches_the_literature():
    # background.md: 8-bit CSD averages 2.45 adders per odd constant (binary 3.5)
    odd = range(1, 256, 2)
    mean = sum(csd_cost(c) for c in odd) / len(odd)
    assert 2.3 < mean < 2.6


def test_adding_digits_are_exact_and_subtract_only_where_binary_costs_more():
    for c in range(-3000, 3001):
        ds = adding_digits(c)
        assert sum(s << p for p, s in ds) == c
        n_binary, n_csd = len(binary_digits(c)), len(csd_digits(c))
        if n_binary <= n_csd:
            assert len({s for _, s in ds}) <= 1 and len(ds) == n_binary  # one sign: additions only
        else:
            assert ds == csd_digits(c)
    assert adding_digits(7) == csd_digits(7) == [(0, -1), (3, 1)] and adding_digits(5) == [(0, 1), (2, 1)]
    assert adding_digits(3) == [(0, 1), (1, 1)] != csd_digits(3)  # 2 + 1, not 4 - 1
