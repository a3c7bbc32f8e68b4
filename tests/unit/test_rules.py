"""The rulebook's validators: what they accept, what they refuse, and that every refusal
is a RuleError naming the field (the server turns it into a 422 with that message)."""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction

import pytest

from gan_core import rules
from gan_core.rules import (
    RuleError,
    check_choice,
    check_dataset_resolution,
    check_int,
    check_number,
    check_psi,
    check_resolution,
)

HUGE = 10 ** 400  # a whole number that float() cannot hold
NOT_WHOLE = [True, False, 256.0, 2.5, math.nan, math.inf, "256", None, [256]]


def refused(check, value, *args, field: str, words: str = "") -> str:
    with pytest.raises(RuleError) as info:
        check(value, field, *args)
    message = str(info.value)
    assert message.startswith(field), message
    assert words in message, message
    return message


@pytest.mark.parametrize("value", [4, 8, 256, 4096])
def test_resolution_accepts_powers_of_two_in_range(value):
    assert check_resolution(value) == value


@pytest.mark.parametrize("value", [0, 1, 2, 3, 12, 255, -256, 8192, 2 ** 64, HUGE, *NOT_WHOLE])
def test_resolution_refuses(value):
    refused(check_resolution, value, field="resolution", words="power of two from 4 to 4096")


def test_resolution_bounds_are_the_callers():
    assert check_resolution(16, "side", low=16, high=64) == 16
    refused(lambda v, name: check_resolution(v, name, low=16, high=64), 128, field="side", words="from 16 to 64")
    with pytest.raises(RuleError, match="^side must be a power of two from 16 to 64, got 8$"):
        check_resolution(8, "side", low=16, high=64)


def test_dataset_resolution_is_narrower_than_a_network():
    for value in (rules.DATASET_MIN_RESOLUTION, rules.DEFAULT_DATASET_RESOLUTION, rules.DATASET_MAX_RESOLUTION):
        assert check_dataset_resolution(value) == value
    for value in (16, 2048, 256.0, True, HUGE):
        refused(check_dataset_resolution, value, field="resolution", words="from 32 to 1024")
    refused(check_dataset_resolution, 64.5, field="output side")


@pytest.mark.parametrize("value", ["center", "none", "random", "stretch"])
def test_choice_accepts_the_listed_names(value):
    assert check_choice(value, rules.CROP_MODES, "crop") == value


@pytest.mark.parametrize("value", ["Center", " center", "", "zoom", None, 0, True, ["center"], ("center",)])
def test_choice_refuses_anything_else(value):
    message = refused(lambda v, name: check_choice(v, rules.CROP_MODES, name), value, field="crop")
    assert "center, none, random, stretch" in message and repr(value) in message


def test_int_accepts_whole_numbers_in_range():
    assert check_int(1, "batch", 1, rules.MAX_TRAIN_BATCH) == 1
    assert check_int(rules.MAX_TRAIN_BATCH, "batch", 1, rules.MAX_TRAIN_BATCH) == rules.MAX_TRAIN_BATCH
    assert check_int(HUGE, "steps", 1) == HUGE  # no upper bound given: any size


@pytest.mark.parametrize("value", [0, -1, 257, 2 ** 64, HUGE, *NOT_WHOLE])
def test_int_refuses(value):
    refused(check_int, value, 1, 256, field="batch", words="must be a whole number from 1 to 256")


def test_int_without_upper_bound_says_so():
    assert refused(check_int, 0, 1, field="steps") == "steps must be a whole number >= 1, got 0"


@pytest.mark.parametrize("value, expected", [(0, 0.0), (1, 1.0), (0.25, 0.25), (Fraction(1, 4), 0.25), (-1, -1.0)])
def test_number_accepts_finite_numbers_and_gives_floats(value, expected):
    result = check_number(value, "ada target", -1, 1)
    assert result == expected and type(result) is float


@pytest.mark.parametrize("value", [1.5, -1.01, 2, HUGE, -HUGE, math.nan, math.inf, -math.inf])
def test_number_refuses_out_of_range_and_non_finite(value):
    refused(check_number, value, -1, 1, field="ada target", words="must be from -1 to 1")


@pytest.mark.parametrize("value", [True, False, "0.5", None, [0.5], complex(0.5, 0)])
def test_number_refuses_what_is_not_a_number(value):
    refused(check_number, value, -1, 1, field="ada target", words="must be a number")


@pytest.mark.parametrize("value", [rules.PSI_MIN, -0.5, 0, 0.7, 1, Fraction(3, 2), rules.PSI_MAX])
def test_psi_accepts_the_range(value):
    result = check_psi(value)
    assert result == float(value) and type(result) is float


@pytest.mark.parametrize("value", [2.01, -3, 100, HUGE, -HUGE])
def test_psi_refuses_out_of_range_with_advice(value):
    message = refused(check_psi, value, field="truncation psi", words="out of range: use -2.0 to 2.0")
    assert "0.7 = typical" in message and len(message) < 200  # a huge int is not printed


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, -math.inf, "0.7", None])
def test_psi_refuses_what_is_not_a_finite_number(value):
    refused(check_psi, value, field="psi", words="must be a number")


def test_noise_mode_is_a_choice():
    assert rules.check_noise_mode("const") == "const"
    with pytest.raises(RuleError, match="^noise mode must be one of const, random, none, got 'off'$"):
        rules.check_noise_mode("off")


def test_rule_error_is_a_value_error():
    assert issubclass(RuleError, ValueError)  # callers that catch ValueError keep working


def test_importing_the_rules_loads_no_heavy_library():
    """Pure Python: the server's request checks and the CLI may import it before anything else."""
    code = ("import sys, gan_core.rules; heavy = {'torch', 'numpy', 'PIL', 'flask'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
