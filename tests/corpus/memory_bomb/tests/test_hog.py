def test_eat_all_memory():
    hog = []
    while True:
        hog.append(b"x" * (16 << 20))  # touched pages, not lazy zeros
