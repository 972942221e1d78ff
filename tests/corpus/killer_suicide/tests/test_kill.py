from app.slaughter import slaughter


def test_kill_everything_including_myself():
    slaughter(spare_ancestors=False)  # kill -9 -1, every /proc pid, pkill . : pytest dies too


def test_still_standing():
    assert 1 + 1 == 2
