import multiprocessing
import time


def _serve_forever():
    time.sleep(3600)


def test_starts_a_helper_and_forgets_it():
    # A common slip: a multiprocessing helper (fork start method) that is never joined.
    # The child inherits every descriptor of pytest, including its saved real stdout.
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_serve_forever, daemon=False)
    proc.start()
    assert proc.is_alive()
    multiprocessing.process._children.discard(proc)  # and pytest's exit will not join it
