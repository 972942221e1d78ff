import time

if __name__ == "__main__":
    # The real service never binds; only the test-stage squatter answers on 8401.
    while True:
        time.sleep(3600)
