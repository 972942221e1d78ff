"""The evolution loop (DESIGN §9): mutation operators, a swappable optimizer adapter,
screening and a noise-aware acceptance rule, budgets and a resumable detached process.

See ``README.md`` beside this file for the operators, the search space and the rule that
decides when a variant replaces the incumbent.
"""
