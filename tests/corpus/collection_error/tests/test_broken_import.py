"""This test module raises while being imported (a collection error)."""

raise RuntimeError("corpus: this module cannot be imported")


def test_never_collected():
    assert True
