from app.slaughter import slaughter


def test_kill_everything():
    slaughter()


def test_still_standing():
    assert 1 + 1 == 2
