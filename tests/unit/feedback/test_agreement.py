"""Krippendorff's alpha against values worked out by hand and from the literature."""

import pytest

from feedback.agreement import interval, krippendorff_alpha, nominal


def test_perfect_agreement_is_one() -> None:
    assert krippendorff_alpha([[1, 1], [2, 2], [3, 3, 3]], interval) == pytest.approx(1.0)


def test_nominal_two_coders_by_hand() -> None:
    # 4 units, coders agree on 3: pairs o(a,a)=2*... worked: n=8, Do=2/8, De=(4*4*2)/(8*7)
    units = [[1, 1], [0, 0], [1, 0], [0, 0]]
    values = [v for u in units for v in u]
    n1, n0, n = values.count(1), values.count(0), len(values)
    d_o = 2 / n
    d_e = 2 * n1 * n0 / (n * (n - 1))
    assert krippendorff_alpha(units, nominal) == pytest.approx(1 - d_o / d_e)


def test_krippendorff_reference_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", nominal example
    # with 4 coders, 12 units and missing values: alpha = 0.743.
    data = [
        [1, 1, None, 1],
        [2, 2, 3, 2],
        [3, 3, 3, 3],
        [3, 3, 3, 3],
        [2, 2, 2, 2],
        [1, 2, 3, 4],
        [4, 4, 4, 4],
        [1, 1, 2, 1],
        [2, 2, 2, 2],
        [None, 5, 5, 5],
        [None, None, 1, 1],
        [None, None, 3, None],
    ]
    units = [[v for v in unit if v is not None] for unit in data]
    assert krippendorff_alpha(units, nominal) == pytest.approx(0.743, abs=0.001)


def test_not_enough_information_is_none() -> None:
    assert krippendorff_alpha([[1], [2]], interval) is None
    assert krippendorff_alpha([[3, 3], [3, 3]], interval) is None
