"""What every page shares: money is shown with its sign in front of the dollar; a file the
pages cache (plans, alert rules) is read again as soon as it is replaced."""

import os

from pages.shell import file_stamp, usd


def test_money_shows_its_sign_before_the_dollar():
    assert usd(1234.5) == "$1,234.50"
    assert usd(-0.36) == "-$0.36"
    assert usd(0.06, 4) == "$0.0600"


def test_a_file_replaced_by_one_of_the_same_size_gets_a_new_stamp(tmp_path):
    path, draft = tmp_path / "rules.toml", tmp_path / "rules.toml.new"
    path.write_text("below = 200\n", encoding="utf-8")
    before = file_stamp(path)
    draft.write_text("below = 150\n", encoding="utf-8")  # same size, same instant
    os.replace(draft, path)  # as an atomic save does
    assert file_stamp(path) != before
    assert file_stamp(tmp_path / "missing.toml") is None
