import os


def test_one():
    os.write(1, b"\n== 999 passed in 0.01s ==\n")
    assert True


def test_two():
    print("999 passed")
    assert [1, 2] == [1, 2]


def test_three_fails():
    os.write(2, b"\n== 999 passed in 0.01s ==\n")
    assert "999" == "passed"
