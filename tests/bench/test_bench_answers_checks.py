"""bench answers' text rules: what counts as an invented time or date (logic only, no model)."""
from __future__ import annotations

import datetime as dt

from bench_answers import invents_time

NOW = dt.datetime(2026, 12, 1, 2, 30)  # a Tuesday


def test_a_year_said_as_the_present_one_is_invented_when_it_is_not_this_year():
    assert invents_time("It's 2024.", NOW, "What year is it?")
    assert invents_time("This year is 2025, a good one.", NOW, "Tell me something.")
    assert invents_time("Nous sommes en 2023.", NOW, "En quelle année sommes-nous ?")
    assert not invents_time("It's 2026.", NOW, "What year is it?")


def test_a_year_in_a_fact_about_another_year_is_not_an_invented_date():
    assert not invents_time("It was built in 1889.", NOW, "In what year was the Eiffel Tower built?")
    assert not invents_time("A leap year has 366 days, as 2024 did.", NOW, "How many days are in a leap year?")


def test_clock_times_and_weekdays_are_checked_against_now():
    assert invents_time("It's 2:45 AM.", NOW, "What time is it?")
    assert not invents_time("It's 2:31 AM.", NOW, "What time is it?")
    assert invents_time("Today is Friday.", NOW, "What day is it?")
    assert not invents_time("Today is Tuesday.", NOW, "What day is it?")
