"""Krippendorff's alpha against values worked out by hand and from the literature."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def reliability(units: list[list[float]], coders: int) -> np.ndarray:
    """The krippendorff package's layout: coders x units, NaN where a coder gave nothing."""
    data = np.full((coders, len(units)), np.nan)
    for u, values in enumerate(units):
        data[: len(values), u] = values
    return data


units_strategy = st.lists(
    st.lists(st.integers(1, 5).map(float), min_size=0, max_size=4), min_size=1, max_size=25
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(units=units_strategy)
def test_alpha_is_the_krippendorff_packages(units: list[list[float]]) -> None:
    import krippendorff

    pairable = [u for u in units if len(u) >= 2]
    values = {v for u in pairable for v in u}
    for distance, level in ((interval, "interval"), (nominal, "nominal")):
        ours = krippendorff_alpha(units, distance)
        if not pairable or len(values) < 2:
            assert ours is None  # degenerate: stated below
            continue
        expected = krippendorff.alpha(
            reliability_data=reliability(units, 4), level_of_measurement=level
        )
        assert ours == pytest.approx(expected, abs=1e-9)


def test_degenerate_inputs_give_none() -> None:
    """No unit rated twice: nothing to compare. One distinct value everywhere: expected
    disagreement is zero and alpha is undefined (0/0); None, never a number that looks
    like agreement or its absence."""
    assert krippendorff_alpha([[3.0], [4.0], []]) is None
    assert krippendorff_alpha([[4.0, 4.0], [4.0, 4.0, 4.0]]) is None
    assert krippendorff_alpha([[4.0, 4.0], [4.0, 4.0, 4.0]], nominal) is None
