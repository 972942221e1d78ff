"""The engine: campaigns of generations, budgets, control, detached processes."""
