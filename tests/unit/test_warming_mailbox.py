"""Sorting recipients into mailbox-provider groups and splitting a day's cap between them exactly."""
from __future__ import annotations

import math

import pytest

from warming.errors import SharesError
from warming.mailbox import DEFAULT_SHARES, GROUPS, check_shares, group_of, split_cap


def shares_error_field(shares) -> str:
    with pytest.raises(SharesError) as caught:
        check_shares(shares)
    return caught.value.field


# grouping

@pytest.mark.parametrize("recipient, group", [
    ("alice@gmail.com", "gmail"),
    ("bob@googlemail.com", "gmail"),
    ("carol@Gmail.COM", "gmail"),
    ("dave@gmail.com.", "gmail"),
    ("erin@yahoo.com", "yahoo"),
    ("frank@yahoo.co.uk", "yahoo"),
    ("grace@yahoo.fr", "yahoo"),
    ("heidi@yahoo.com.br", "yahoo"),
    ("ivan@ymail.com", "yahoo"),
    ("judy@rocketmail.com", "yahoo"),
    ("mallory@aol.com", "yahoo"),
    ("niaj@outlook.com", "microsoft"),
    ("olivia@hotmail.com", "microsoft"),
    ("peggy@hotmail.co.uk", "microsoft"),
    ("rupert@live.com", "microsoft"),
    ("sybil@live.fr", "microsoft"),
    ("trent@msn.com", "microsoft"),
    ("victor@example.com", "other"),
    ("walter@icloud.com", "other"),
])
def test_it_sorts_a_recipient_into_its_mailbox_provider_group(recipient, group):
    assert group_of(recipient) == group


def test_it_accepts_a_bare_domain_as_well_as_an_address():
    assert group_of("hotmail.de") == "microsoft"


@pytest.mark.parametrize("lookalike", ["yahoo.example.org", "gmail.com.evil.net", "notgmail.com",
                                       "mail.yahoo-fans.com", "live.stream.io", "outlook.company.travel"])
def test_it_keeps_lookalike_domains_out_of_the_big_providers(lookalike):
    assert group_of(lookalike) == "other"


def test_it_leaves_yahoo_japan_out_of_yahoo_because_it_runs_its_own_mail():
    assert group_of("user@yahoo.co.jp") == "other"


def test_it_lets_the_caller_map_custom_domains_it_knows_are_hosted_by_a_provider():
    overrides = {"acme.com": "microsoft", "gmail.com": "other"}
    assert group_of("alice@ACME.com", overrides) == "microsoft"
    assert group_of("bob@gmail.com", overrides) == "other"
    assert group_of("carol@yahoo.com", overrides) == "yahoo"


# shares

def test_it_accepts_the_default_shares():
    assert check_shares(DEFAULT_SHARES) == dict(DEFAULT_SHARES)
    assert math.isclose(sum(DEFAULT_SHARES.values()), 1)


def test_it_accepts_thirds_typed_as_decimals():
    thirds = {"gmail": 0.333333, "yahoo": 0.333333, "microsoft": 0.333334, "other": 0}
    assert check_shares(thirds) == {**thirds, "other": 0.0}
    assert shares_error_field({**thirds, "microsoft": 0.333}) == "shares"  # 0.999666 is not a rounding of 1


@pytest.mark.parametrize("shares, field", [
    ({"gmail": 0.5, "yahoo": 0.2, "microsoft": 0.2}, "shares.other"),
    ({"gmail": 0.5, "yahoo": 0.2, "microsoft": 0.2, "other": 0.1, "apple": 0.0}, "shares.apple"),
    ({"gmail": 1.2, "yahoo": 0, "microsoft": 0, "other": -0.2}, "shares.gmail"),
    ({"gmail": "0.4", "yahoo": 0.15, "microsoft": 0.25, "other": 0.2}, "shares.gmail"),
    ({"gmail": 0.4, "yahoo": float("nan"), "microsoft": 0.25, "other": 0.2}, "shares.yahoo"),
    ({"gmail": 0.4, "yahoo": 0.2, "microsoft": 0.25, "other": 0.2}, "shares"),
    ([0.4, 0.15, 0.25, 0.2], "shares"),
])
def test_it_names_the_share_that_is_missing_unknown_out_of_range_or_off_the_total(shares, field):
    assert shares_error_field(shares) == field


# splitting a cap

@pytest.mark.parametrize("shares", [
    DEFAULT_SHARES,
    {"gmail": 1 / 3, "yahoo": 1 / 3, "microsoft": 1 / 3, "other": 0.0},
    {"gmail": 0.97, "yahoo": 0.01, "microsoft": 0.01, "other": 0.01},
    {"gmail": 0.0, "yahoo": 0.0, "microsoft": 0.0, "other": 1.0},
])
def test_it_splits_every_cap_into_parts_that_sum_to_exactly_the_cap(shares):
    for total in [*range(0, 301), 2999, 3000, 10_000_000]:
        parts = split_cap(total, shares)
        assert sum(parts.values()) == total, total
        for group in GROUPS:
            assert abs(parts[group] - total * shares[group]) < 1, (total, group)


def test_it_splits_the_default_target_by_the_default_shares_exactly():
    assert split_cap(3000) == {"gmail": 1200, "yahoo": 450, "microsoft": 750, "other": 600}


def test_it_gives_the_leftover_sends_to_the_largest_remainders():
    # 7 * (0.4, 0.15, 0.25, 0.2) = 2.8, 1.05, 1.75, 1.4: floors give 5, and .8 and .75 win the last two
    assert split_cap(7) == {"gmail": 3, "yahoo": 1, "microsoft": 2, "other": 1}


def test_it_breaks_a_tie_between_remainders_in_group_order():
    # 50: yahoo 7.5 and microsoft 12.5 tie for the one leftover send; yahoo comes first in GROUPS
    assert split_cap(50) == {"gmail": 20, "yahoo": 8, "microsoft": 12, "other": 10}


def test_it_gives_a_zero_share_nothing():
    assert split_cap(1000, {"gmail": 0.5, "yahoo": 0.0, "microsoft": 0.5, "other": 0.0})["yahoo"] == 0


def test_it_refuses_a_negative_cap():
    with pytest.raises(ValueError):
        split_cap(-1)
