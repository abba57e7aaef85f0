"""The home page renders on a fresh server and shows the live price catalog."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_home_shows_the_catalog():
    app = AppTest.from_file(APP).run(timeout=30)
    assert not app.exception
    catalog = app.dataframe[0].value
    hailuo = catalog[
        (catalog["model"] == "MiniMax-Hailuo-02")
        & (catalog["options"] == "resolution=1080P, duration=6")
    ]
    assert hailuo["credits"].tolist() == [1100]
    assert app.title[0].value == "Credits back office"
