"""A helper module with a syntax error on line 5."""


def total(values):
    return sum(values for
