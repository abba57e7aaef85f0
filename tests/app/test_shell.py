"""What every page shares: money is shown with its sign in front of the dollar."""

from pages.shell import usd


def test_money_shows_its_sign_before_the_dollar():
    assert usd(1234.5) == "$1,234.50"
    assert usd(-0.36) == "-$0.36"
    assert usd(0.06, 4) == "$0.0600"
