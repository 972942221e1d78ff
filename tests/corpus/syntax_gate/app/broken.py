"""Never imported by the app or the tests: only the syntax gate can see it."""

VALUE = 1

def oops(:
    return VALUE
