"""The gate's statistics on losses whose answer is known: better, equal, worse; and the direction."""

from __future__ import annotations

import numpy as np
import pytest

from seqops.promotion.statistics import diebold_mariano, gate


def _losses(seed: int, n: int = 400, shift: float = 0.0, h: int = 24):
    """Champion losses and a challenger's, with MA(h-1)-correlated noise like h-step errors."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0, 1, n + h)
    common = np.convolve(shocks, np.ones(h) / h, mode="valid")[:n]
    champion = 1.0 + 0.3 * np.abs(common) + rng.gamma(2.0, 0.1, n)
    challenger = champion * (1.0 + shift) + rng.normal(0, 0.05, n)
    return champion, challenger


def test_a_clearly_better_challenger_passes_with_a_low_p_value():
    champion, challenger = _losses(0, shift=-0.10)
    result = diebold_mariano(champion, challenger, horizon=24, alternative="better")
    assert (
        result.p_value < 0.001
        and result.statistic < 0
        and result.relative_change == pytest.approx(-0.10, abs=0.01)
    )
    verdict = gate(champion, challenger, horizon=24)
    assert verdict.decision == "pass" and "better" in verdict.reason


def test_a_clearly_worse_challenger_is_stopped_and_its_better_p_value_is_high():
    champion, challenger = _losses(1, shift=+0.10)
    better = diebold_mariano(champion, challenger, horizon=24, alternative="better")
    worse = diebold_mariano(champion, challenger, horizon=24, alternative="worse")
    assert better.p_value > 0.999 and worse.p_value < 0.001  # one-sided: the direction matters
    assert gate(champion, challenger, horizon=24).decision == "stop"


def test_an_equal_challenger_is_inconclusive_and_false_alarms_stay_near_alpha():
    decisions = [gate(*_losses(seed, shift=0.0), horizon=24).decision for seed in range(200)]
    assert decisions.count("pass") == 0  # the 2 % minimum effect guards against tiny "wins"
    assert decisions.count("stop") / len(decisions) <= 0.1  # about alpha = 0.05 under H0
    assert decisions.count("inconclusive") >= 170


def test_a_tiny_significant_gain_does_not_pass_the_minimum_effect():
    champion, challenger = _losses(2, n=5000, shift=-0.005)
    verdict = gate(champion, challenger, horizon=24, min_effect=0.02)
    assert verdict.better.p_value < 0.05 and verdict.decision == "inconclusive"


def test_input_errors_are_named():
    with pytest.raises(ValueError, match="differ in length"):
        diebold_mariano(np.ones(5), np.ones(6))
    with pytest.raises(ValueError, match="at least 3"):
        diebold_mariano(np.ones(2), np.ones(2))


def _canaries(seed: int, shift: float, pairs: int = 48, h: int = 24):
    """Paired live forecasts of one canary: per pair a level error shared by its h steps, plus
    random-walk step errors (h-step forecasts); the challenger's losses ``shift`` higher."""
    rng = np.random.default_rng(seed)
    champion = np.abs(rng.normal(size=(pairs, h)).cumsum(axis=1) * 0.1 + rng.normal(size=(pairs, 1)))
    challenger = np.abs(rng.normal(size=(pairs, h)).cumsum(axis=1) * 0.1 + rng.normal(size=(pairs, 1)))
    return champion, challenger + shift


def _first_interim_stop(champion, challenger, full: int) -> int | None:
    from seqops.promotion.statistics import interim_stop

    for n in range(1, full):  # a look at every new pair, as the canary's wait does
        if interim_stop(champion[:n].ravel(), challenger[:n].ravel(), horizon=24, pairs=n, full=full):
            return n
    return None


def test_watching_a_canary_at_every_new_pair_rarely_stops_an_equal_model_and_catches_a_bad_one():
    stops = [_first_interim_stop(*_canaries(seed, 0.0), full=48) for seed in range(150)]
    false_stops = sum(s is not None for s in stops)
    assert false_stops <= 6  # <= 4% of 150 equal canaries (about 2% expected)
    caught = [_first_interim_stop(*_canaries(1000 + seed, 0.5), full=48) for seed in range(60)]
    assert sum(c is not None for c in caught) >= 45  # >= 75% of canaries 50% worse, before the full 48
    assert all(c >= 12 for c in caught if c is not None)  # never before a quarter of the sample
